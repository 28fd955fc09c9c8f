/**
 * The local COC simulator, exercised with requests signed by Huawei's OFFICIAL signer
 * (@huaweicloud/huaweicloud-sdk-core AKSKSigner), never by the project's own signer, so
 * the simulator's verification is checked against the reference implementation.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { BasicCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials.js';
import { startCocSimulator, DEMO_CREDENTIAL } from '../simulator/coc-simulator';
import type { CocSimulator, SimOptions } from '../simulator/coc-simulator';
import {
  canonicalQuery,
  canonicalUri,
  encodeRfc3986,
  parseAuthorization,
  parseSdkDate,
  verifySdkHmacSha256,
} from '../simulator/verify-signature';
import { registerSecret } from './support/leak-capture';

const AK = 'SIMTESTAK00000000001';
const SK = 'sim-test-secret-key-0123456789';
const TEMP = { ak: 'SIMTEMPAK00000000002', sk: 'temp-secret-key-abcdef', securityToken: 'temp-session-token-xyz' };
const ACCOUNT = { ak: 'SIMACCTAK00000000003', sk: 'acct-secret-key', domainId: 'domain-0001' };
registerSecret({ ak: AK, sk: SK, 'temp ak': TEMP.ak, 'temp sk': TEMP.sk, 'temp token': TEMP.securityToken, 'account ak': ACCOUNT.ak, 'account sk': ACCOUNT.sk });

const TASK = 'STabcdefghijklmnopqrstu001';
const TASK2 = 'STabcdefghijklmnopqrstu002';
const TICKET_TASK = 'STabcdefghijklmnopqrstu003';
const ENABLED_TASK = 'STabcdefghijklmnopqrstu004';
const FOREIGN_TASK = 'STabcdefghijklmnopqrstu005';
const UNKNOWN_TASK = 'STzzzzzzzzzzzzzzzzzzzzzzzz';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
  reusedSocket: boolean;
}

interface SendOptions {
  method?: string;
  path: string;
  /** Signed by the official signer as `data`; sent as JSON.stringify(data), the bytes it hashes. */
  data?: unknown;
  /** Sent instead of JSON.stringify(data) (to tamper with the body after signing). */
  rawBody?: string;
  queryParams?: Record<string, string>;
  /** The query exactly as put on the wire (defaults to the encoded queryParams). */
  wireQuery?: string;
  headers?: Record<string, string>;
  ak?: string;
  sk?: string;
  /** Skip signing entirely. */
  unsigned?: boolean;
  /** Change these headers after signing. */
  after?: Record<string, string | undefined>;
  timeoutMs?: number;
  agent?: http.Agent;
}

let sim: CocSimulator;
let clock: number;
let dice: number;

async function start(extra: SimOptions = {}): Promise<CocSimulator> {
  clock = Date.now();
  dice = 0.5;
  sim = await startCocSimulator({
    credentials: [{ ak: AK, sk: SK }, TEMP, ACCOUNT],
    now: () => clock,
    random: () => dice,
    ...extra,
  });
  sim.seedTask(TASK);
  sim.seedTask(TASK2);
  sim.seedTask(TICKET_TASK, { requiresTicket: true });
  sim.seedTask(ENABLED_TASK, { enabled: true });
  sim.seedTask(FOREIGN_TASK, { owner: 'other' });
  return sim;
}

function officialSign(method: string, url: string, o: SendOptions): Record<string, string> {
  const credential = new BasicCredentials().withAk(o.ak ?? AK).withSk(o.sk ?? SK);
  const headers: Record<string, string> = { 'Content-Type': 'application/json;charset=UTF-8', ...o.headers };
  return AKSKSigner.sign(
    { method, endpoint: url, queryParams: o.queryParams ?? {}, headers, data: o.data },
    credential,
  ) as Record<string, string>;
}

function send(o: SendOptions): Promise<Reply> {
  const method = o.method ?? 'POST';
  const endpoint = `${sim.url}${o.path}`;
  const body = o.rawBody ?? (o.data === undefined ? '' : JSON.stringify(o.data));
  let headers: Record<string, string> = o.unsigned ? { ...o.headers } : officialSign(method, endpoint, o);
  for (const [k, v] of Object.entries(o.after ?? {})) {
    headers = Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== k.toLowerCase()));
    if (v !== undefined) headers[k] = v;
  }
  const query =
    o.wireQuery ??
    Object.entries(o.queryParams ?? {})
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${endpoint}${query ? `?${query}` : ''}`,
      { method, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) }, ...(o.agent && { agent: o.agent }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reusedSocket: req.reusedSocket });
        });
        res.on('error', reject);
      },
    );
    if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const enable = (taskId: string, o: Partial<SendOptions> = {}) => send({ path: `/v1/schedule/task/${taskId}/enable`, ...o });

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    ...(body !== undefined && { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
  return { status: res.status, json: await res.json() };
}

function expectError(r: Reply, status: number, code: string): void {
  expect({ status: r.status, code: r.json?.error_code }).toEqual({ status, code });
  expect(typeof r.json.error_msg).toBe('string');
  expect(r.headers['content-type']).toBe('application/json;charset=UTF-8');
  expect(r.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
}

afterEach(async () => {
  await sim?.close();
});

describe('signed requests (official Huawei signer)', () => {
  beforeEach(async () => {
    await start();
  });

  it('accepts a valid official signature and enables the task', async () => {
    const r = await enable(TASK, { data: { ticket_infos: [{ ticket_id: 'CM202405221739540119523656', ticket_type: 'CHANGE' }] } });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ data: TASK });
    expect(r.headers['content-type']).toBe('application/json;charset=UTF-8');
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(sim.task(TASK)).toEqual({ enabled: true, requiresTicket: false, owner: 'self', enableCount: 1 });

    const [rec] = sim.requests();
    expect(rec).toMatchObject({
      id: r.headers['x-request-id'],
      method: 'POST',
      path: `/v1/schedule/task/${TASK}/enable`,
      query: '',
      taskId: TASK,
      status: 200,
      ak: AK,
      signatureValid: true,
      receivedAt: clock,
    });
    expect(rec!.headers.authorization).toBe('[redacted]');
    expect(rec!.headers['x-sdk-date']).toMatch(/^\d{8}T\d{6}Z$/);
    expect(JSON.parse(rec!.body)).toEqual({ ticket_infos: [{ ticket_id: 'CM202405221739540119523656', ticket_type: 'CHANGE' }] });
    expect(JSON.stringify(sim.requests())).not.toContain(SK);
  });

  it('accepts an enable without a body, and signed query parameters', async () => {
    expect((await enable(TASK)).status).toBe(200);
    const r = await send({
      method: 'GET',
      path: `/v1/schedule/task/${TASK2}`,
      queryParams: { zeta: "it's (a) test*!", alpha: 'x y/z', empty: '' },
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: TASK2, enabled: false });
    expect(typeof r.json.name).toBe('string');
  });

  it('shows, enables and disables a task (ShowScheduledTask / DisableScheduledTask)', async () => {
    const show = () => send({ method: 'GET', path: `/v1/schedule/task/${TASK}` });
    expect((await show()).json.enabled).toBe(false);
    expect((await enable(TASK)).status).toBe(200);
    expect((await show()).json.enabled).toBe(true);
    const off = await send({ path: `/v1/schedule/task/${TASK}/disable` });
    expect(off.status).toBe(200);
    expect(off.json).toEqual({ data: TASK });
    expect(sim.task(TASK)?.enabled).toBe(false);
    expectError(await send({ path: `/v1/schedule/task/${TASK}/disable` }), 400, 'COC.00014104');
  });

  it('answers COC error codes', async () => {
    expectError(await enable(UNKNOWN_TASK), 400, 'COC.00014102');
    expectError(await enable(FOREIGN_TASK), 400, 'COC.00014121');
    expectError(await enable(ENABLED_TASK), 400, 'COC.00014110');
    expectError(await enable('ST123'), 400, 'COC.00010002');
    expectError(await enable('XXabcdefghijklmnopqrstu001'), 400, 'COC.00010002');
    expectError(await enable(TASK, { data: 'not an object' }), 400, 'COC.00014002');
    expectError(await enable(TASK, { data: { ticket_infos: 'CM1' } }), 400, 'COC.00014002');
    expectError(await enable(TASK, { data: { ticket_infos: [{ ticket_type: 'NOPE' }] } }), 400, 'COC.00014002');
    expectError(await enable(TASK, { data: { ticket_infos: [{ scope_id: 'x'.repeat(51) }] } }), 400, 'COC.00014002');
    expectError(await enable(TASK, { data: { ticket_infos: ['CM1'] } }), 400, 'COC.00014002');
    expect(sim.task(TASK)?.enabled).toBe(false);
  });

  it('answers COC.00014002 for a body that is not JSON (signed with X-Sdk-Content-Sha256)', async () => {
    const raw = '{"ticket_infos": [';
    const r = await enable(TASK, {
      rawBody: raw,
      headers: { 'X-Sdk-Content-Sha256': createHash('sha256').update(raw).digest('hex') },
    });
    expectError(r, 400, 'COC.00014002');
    expect(sim.requests()[0]?.signatureValid).toBe(true);
  });

  it('requires an effective ticket for tasks marked so (COC.00014150, a simulator assumption)', async () => {
    expectError(await enable(TICKET_TASK), 400, 'COC.00014150');
    expectError(await enable(TICKET_TASK, { data: { ticket_infos: [] } }), 400, 'COC.00014150');
    expectError(await enable(TICKET_TASK, { data: { ticket_infos: [{ ticket_type: 'CHANGE' }] } }), 400, 'COC.00014150');
    expect(sim.task(TICKET_TASK)?.enabled).toBe(false);
    const ok = await enable(TICKET_TASK, { data: { ticket_infos: [{ ticket_id: 'CM1', ticket_type: 'CHANGE', target_id: 'app', scope_id: 'cn-north-4' }] } });
    expect(ok.status).toBe(200);
    expect(sim.task(TICKET_TASK)).toMatchObject({ enabled: true, enableCount: 1 });
  });

  it('answers 404 APIGW.0101 for unknown routes and wrong methods, before authentication', async () => {
    const unknown = await send({ method: 'GET', path: '/v1/nothing', unsigned: true });
    expectError(unknown, 404, 'APIGW.0101');
    expect(unknown.json.error_msg).toBe('The API does not exist or has not been published in the environment');
    expectError(await send({ method: 'GET', path: `/v1/schedule/task/${TASK}/enable` }), 404, 'APIGW.0101');
    expectError(await send({ method: 'DELETE', path: `/v1/schedule/task/${TASK}` }), 404, 'APIGW.0101');
  });

  it('keeps connections alive', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await enable(TASK, { agent });
      const second = await enable(TASK2, { agent });
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(second.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });
});

describe('authentication failures: 401 APIGW.0301', () => {
  beforeEach(async () => {
    await start();
  });

  const expect401 = (r: Reply, reason: RegExp) => {
    expectError(r, 401, 'APIGW.0301');
    expect(r.json.error_msg).toMatch(/^Incorrect IAM authentication information: /);
    expect(r.json.error_msg).toMatch(reason);
    for (const secret of [SK, TEMP.sk, TEMP.securityToken, 'wrong-secret']) expect(r.text).not.toContain(secret);
  };

  it('rejects a wrong SK', async () => {
    expect401(await enable(TASK, { sk: 'wrong-secret' }), /signature does not match/);
    expect(sim.task(TASK)?.enabled).toBe(false);
    expect(sim.requests()[0]).toMatchObject({ status: 401, signatureValid: false, ak: AK });
  });

  it('rejects an unknown AK', async () => {
    expect401(await enable(TASK, { ak: 'UNKNOWNAK00000000000' }), /access key is unknown/);
  });

  it('rejects a missing or foreign Authorization header', async () => {
    expect401(await enable(TASK, { unsigned: true }), /missing/);
    expect401(await enable(TASK, { after: { Authorization: 'Bearer abc' } }), /SDK-HMAC-SHA256/);
    expect401(await enable(TASK, { after: { Authorization: 'SDK-HMAC-SHA256 Access=x' } }), /malformed/);
  });

  it('rejects an X-Sdk-Date outside the 15 minute window', async () => {
    clock = Date.now() + 16 * 60 * 1000;
    expect401(await enable(TASK), /15 minutes/);
    clock = Date.now() - 16 * 60 * 1000;
    expect401(await enable(TASK), /15 minutes/);
    clock = Date.now() + 14 * 60 * 1000;
    expect((await enable(TASK)).status).toBe(200);
  });

  it('rejects a malformed X-Sdk-Date', async () => {
    // Changing the header after signing would fail the signature anyway; the format check comes first.
    expect401(await enable(TASK, { after: { 'X-Sdk-Date': '2024-01-01T00:00:00Z' } }), /YYYYMMDDTHHMMSSZ/);
  });

  it('requires host and x-sdk-date to be signed', async () => {
    const r = await enable(TASK);
    expect(r.status).toBe(200);
    const auth = officialSign('POST', `${sim.url}/v1/schedule/task/${TASK2}/enable`, { path: '' }).Authorization!;
    const withoutDate = auth.replace('SignedHeaders=content-type;host;x-sdk-date', 'SignedHeaders=content-type;host');
    expect401(await enable(TASK2, { after: { Authorization: withoutDate } }), /x-sdk-date header must be signed/);
    const withoutHost = auth.replace('SignedHeaders=content-type;host;x-sdk-date', 'SignedHeaders=content-type;x-sdk-date');
    expect401(await enable(TASK2, { after: { Authorization: withoutHost } }), /host header must be signed/);
  });

  it('rejects a tampered body, path, query or signed header', async () => {
    expect401(await enable(TICKET_TASK, { data: { ticket_infos: [{ ticket_id: 'CM1' }] }, rawBody: JSON.stringify({ ticket_infos: [{ ticket_id: 'CM2' }] }) }), /signature/);
    // Signed for TASK, sent to TASK2.
    const headers = officialSign('POST', `${sim.url}/v1/schedule/task/${TASK}/enable`, { path: '' });
    expect401(await enable(TASK2, { unsigned: true, headers }), /signature/);
    expect401(await send({ method: 'GET', path: `/v1/schedule/task/${TASK}`, queryParams: { a: '1' }, wireQuery: 'a=2' }), /signature/);
    expect401(await enable(TASK, { after: { 'Content-Type': 'text/plain' } }), /signature/);
    for (const t of [TICKET_TASK, TASK, TASK2]) expect(sim.task(t)?.enabled).toBe(false);
  });

  it('requires the matching X-Security-Token for temporary credentials', async () => {
    const temp = { ak: TEMP.ak, sk: TEMP.sk };
    expect401(await enable(TASK, temp), /X-Security-Token is required/);
    expect401(await enable(TASK, { ...temp, headers: { 'X-Security-Token': 'another-token' } }), /X-Security-Token does not match/);
    const ok = await enable(TASK, { ...temp, headers: { 'X-Security-Token': TEMP.securityToken } });
    expect(ok.status).toBe(200);
    const rec = sim.requests().at(-1)!;
    expect(rec.headers['x-security-token']).toBe('[redacted]');
    expect(JSON.stringify(sim.requests())).not.toContain(TEMP.securityToken);
  });

  it("checks X-Domain-Id against the credential's account", async () => {
    const acct = { ak: ACCOUNT.ak, sk: ACCOUNT.sk };
    expect401(await enable(TASK, { ...acct, headers: { 'X-Domain-Id': 'domain-9999' } }), /X-Domain-Id/);
    expect((await enable(TASK, { ...acct, headers: { 'X-Domain-Id': ACCOUNT.domainId } })).status).toBe(200);
  });
});

describe('faults', () => {
  beforeEach(async () => {
    await start();
  });

  it('status 429 carries Retry-After and APIGW.0308; 5xx carry JSON errors; business logic does not run', async () => {
    sim.injectFault({ fault: { kind: 'status', status: 429, retryAfterSeconds: 3 } });
    sim.injectFault({ fault: { kind: 'status', status: 503 }, times: 2 });
    sim.injectFault({ fault: { kind: 'status', status: 500 } });
    sim.injectFault({ fault: { kind: 'status', status: 504, retryAfterSeconds: 1 } });
    const r429 = await enable(TASK);
    expectError(r429, 429, 'APIGW.0308');
    expect(r429.headers['retry-after']).toBe('3');
    expect(r429.json.error_msg).toBe('The throttling threshold has been reached');
    expectError(await enable(TASK), 503, 'APIGW.0202');
    expectError(await enable(TASK), 503, 'APIGW.0202');
    expectError(await enable(TASK), 500, 'COC.00010001');
    const r504 = await enable(TASK);
    expectError(r504, 504, 'APIGW.0203');
    expect(r504.headers['retry-after']).toBe('1');
    expect(sim.task(TASK)?.enabled).toBe(false);
    // Faults hit signed requests: every one above was validly signed.
    expect(sim.requests().every((r) => r.signatureValid)).toBe(true);
    expect((await enable(TASK)).status).toBe(200); // rules used up
    expect(sim.stats()).toEqual({ requests: 6, byStatus: { '429': 1, '503': 2, '500': 1, '504': 1, '200': 1 } });
  });

  it('garbage answers a non-JSON body (200 by default, or 502)', async () => {
    sim.injectFault({ fault: { kind: 'garbage' } });
    sim.injectFault({ fault: { kind: 'garbage', status: 502 } });
    const a = await enable(TASK);
    expect(a.status).toBe(200);
    expect(a.json).toBeUndefined();
    expect(a.text).toMatch(/^<html>/);
    expect(a.headers['content-type']).toBe('text/html');
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    const b = await enable(TASK);
    expect(b.status).toBe(502);
    expect(b.json).toBeUndefined();
    expect(sim.task(TASK)?.enabled).toBe(false);
  });

  it('reset destroys the socket without an answer', async () => {
    sim.injectFault({ fault: { kind: 'reset' } });
    await expect(enable(TASK)).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(sim.requests()[0]).toMatchObject({ status: 0, signatureValid: true });
    expect(sim.stats().byStatus).toEqual({ reset: 1 });
    expect((await enable(TASK)).status).toBe(200);
  });

  it('hang never answers, and close() still finishes', async () => {
    sim.injectFault({ fault: { kind: 'hang' }, times: 2 });
    await expect(enable(TASK, { timeoutMs: 100 })).rejects.toThrow(/client timeout/);
    const pending = enable(TASK);
    const outcome = pending.then(
      () => 'answered',
      () => 'dropped',
    );
    await vi.waitFor(() => expect(sim.stats().byStatus).toEqual({ hang: 2 }));
    await sim.close();
    expect(await outcome).toBe('dropped');
  });

  it('latency faults delay the answer and let later rules apply', async () => {
    sim.injectFault({ fault: { kind: 'latency', ms: 40 } });
    const t0 = performance.now();
    expect((await enable(TASK)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);

    sim.injectFault({ fault: { kind: 'latency', ms: 30 }, times: Infinity });
    sim.injectFault({ fault: { kind: 'status', status: 502 } });
    const t1 = performance.now();
    expectError(await enable(TASK2), 502, 'APIGW.0202');
    expect(performance.now() - t1).toBeGreaterThanOrEqual(25);
    const t2 = performance.now();
    expect((await enable(TASK2)).status).toBe(200);
    expect(performance.now() - t2).toBeGreaterThanOrEqual(25);
    sim.clearFaults();
    const t3 = performance.now();
    await enable(TASK2);
    expect(performance.now() - t3).toBeLessThan(25);
  });

  it('setLatency delays every answer', async () => {
    sim.setLatency(30);
    const t0 = performance.now();
    expectError(await enable(UNKNOWN_TASK), 400, 'COC.00014102');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('rules can target one task, and fire with a probability', async () => {
    sim.injectFault({ fault: { kind: 'status', status: 503 }, taskId: TASK2, times: Infinity });
    expect((await enable(TASK)).status).toBe(200);
    expect((await enable(TASK2)).status).toBe(503);
    expect((await enable(TASK2)).status).toBe(503);
    sim.clearFaults();

    sim.injectFault({ fault: { kind: 'status', status: 500 }, probability: 0.3 });
    dice = 0.9; // miss: the rule is not consumed
    expect((await enable(TASK2)).status).toBe(200);
    dice = 0.1;
    expect((await send({ path: `/v1/schedule/task/${TASK2}/disable` })).status).toBe(500);
    expect((await send({ path: `/v1/schedule/task/${TASK2}/disable` })).status).toBe(200);
  });

  it('rejects malformed fault rules', () => {
    expect(() => sim.injectFault({ fault: { kind: 'status', status: 418 as 500 } })).toThrow(TypeError);
    expect(() => sim.injectFault({ fault: { kind: 'nope' } as never })).toThrow(TypeError);
    expect(() => sim.injectFault({ fault: { kind: 'reset' }, times: 0 })).toThrow(TypeError);
    expect(() => sim.injectFault({ fault: { kind: 'reset' }, probability: 2 })).toThrow(TypeError);
  });
});

describe('limits', () => {
  it('rate limits with a token bucket: 429 APIGW.0308 with Retry-After', async () => {
    await start({ rateLimitPerSecond: 2 });
    expect((await enable(TASK)).status).toBe(200);
    expect((await enable(TASK2)).status).toBe(200);
    const limited = await enable(UNKNOWN_TASK);
    expectError(limited, 429, 'APIGW.0308');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    clock += 500; // one token back
    expectError(await enable(UNKNOWN_TASK), 400, 'COC.00014102');
    expect((await enable(UNKNOWN_TASK)).status).toBe(429);
    sim.setRateLimit(undefined);
    expect((await enable(UNKNOWN_TASK)).status).toBe(400);
  });

  it('answers 413 APIGW.0201 for bodies over maxBodyBytes', async () => {
    await start({ maxBodyBytes: 64 });
    const r = await enable(TICKET_TASK, { data: { ticket_infos: [{ ticket_id: 'C'.repeat(100) }] } });
    expectError(r, 413, 'APIGW.0201');
    expect(sim.task(TICKET_TASK)?.enabled).toBe(false);
    expect((await enable(TASK, { data: { ticket_infos: [] } })).status).toBe(200);
  });

  it('answers 413 for a chunked body that grows over maxBodyBytes', async () => {
    await start({ maxBodyBytes: 64 });
    const reply = await new Promise<{ status: number; json: any }>((resolve, reject) => {
      const req = http.request(`${sim.url}/v1/schedule/task/${TASK}/enable`, { method: 'POST', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }));
      });
      req.on('error', reject);
      req.write('{"ticket_infos":[');
      req.end(`${'{"ticket_id":"CM1"},'.repeat(10)}{}]}`);
    });
    expect(reply).toEqual({ status: 413, json: { error_code: 'APIGW.0201', error_msg: 'Request entity too large' } });
    expect(sim.requests()[0]).toMatchObject({ status: 413, body: '', signatureValid: false });
  });

  it('can stop recording while still counting', async () => {
    await start({ recordRequests: false });
    await enable(TASK);
    expect(sim.requests()).toEqual([]);
    expect(sim.stats()).toEqual({ requests: 1, byStatus: { '200': 1 } });
  });

  it('accepts the demo credential by default', async () => {
    sim = await startCocSimulator();
    sim.seedTask(TASK);
    expect((await enable(TASK, { ak: DEMO_CREDENTIAL.ak, sk: DEMO_CREDENTIAL.sk })).status).toBe(200);
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}`);
  });

  it('reset() forgets tasks, faults, requests and counts', async () => {
    await start();
    sim.injectFault({ fault: { kind: 'status', status: 503 }, times: Infinity });
    sim.setLatency(60);
    await enable(UNKNOWN_TASK, { timeoutMs: 50 }).catch(() => undefined);
    sim.reset();
    await new Promise((r) => setTimeout(r, 30)); // the delayed 503 must not land in the fresh counts
    expect(sim.task(TASK)).toBeUndefined();
    expect(sim.requests()).toEqual([]);
    expect(sim.stats()).toEqual({ requests: 0, byStatus: {} });
    expectError(await enable(TASK), 400, 'COC.00014102');
  });
});

describe('control API (/_sim/)', () => {
  beforeEach(async () => {
    await start();
  });

  it('seeds and reads tasks', async () => {
    const seeded = await control('POST', '/_sim/tasks', {
      tasks: [
        { task_id: 'STcontrol00000000000000001', enabled: false, requires_ticket: true, owner: 'self' },
        { task_id: 'STcontrol00000000000000002', enabled: true },
      ],
    });
    expect(seeded).toEqual({ status: 200, json: { seeded: 2 } });
    expect(await control('GET', '/_sim/tasks/STcontrol00000000000000002')).toEqual({
      status: 200,
      json: { taskId: 'STcontrol00000000000000002', enabled: true, requiresTicket: false, owner: 'self', enableCount: 0 },
    });
    expect((await control('GET', '/_sim/tasks/STnope')).status).toBe(404);
    expect((await control('POST', '/_sim/tasks', { tasks: [{ task_id: 'ST1', owner: 'someone' }] })).status).toBe(400);
    expect((await control('GET', '/_sim/tasks')).json.tasks).toHaveLength(7);
  });

  it('injects and clears faults, sets latency and rate limit', async () => {
    expect((await control('POST', '/_sim/faults', { fault: { kind: 'status', status: 429, retry_after_seconds: 4 }, times: 1, task_id: TASK2 })).status).toBe(200);
    expect((await enable(TASK)).status).toBe(200);
    const limited = await enable(TASK2);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('4');

    await control('POST', '/_sim/faults', { fault: { kind: 'status', status: 502 }, times: 'Infinity' });
    expect((await enable(TASK2)).status).toBe(502);
    expect((await enable(TASK2)).status).toBe(502);
    expect(await control('DELETE', '/_sim/faults')).toMatchObject({ status: 200 });
    expect((await enable(TASK2)).status).toBe(200);
    expect((await control('POST', '/_sim/faults', { fault: { kind: 'bogus' } })).status).toBe(400);

    await control('POST', '/_sim/latency', { ms: 30 });
    const t0 = performance.now();
    await send({ method: 'GET', path: `/v1/schedule/task/${TASK}` });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    await control('POST', '/_sim/latency', { ms: 0 });

    await control('POST', '/_sim/rate-limit', { per_second: 1 });
    expect((await enable(UNKNOWN_TASK)).status).toBe(400);
    expect((await enable(UNKNOWN_TASK)).status).toBe(429);
    await control('POST', '/_sim/rate-limit', { per_second: null });
    expect((await enable(UNKNOWN_TASK)).status).toBe(400);
  });

  it('reports stats and recorded requests, and resets', async () => {
    await enable(TASK);
    await enable(TASK);
    const stats = await control('GET', '/_sim/stats');
    expect(stats.json).toEqual({ requests: 2, byStatus: { '200': 1, '400': 1 } });
    const recorded = await control('GET', '/_sim/requests');
    expect(recorded.json.requests).toHaveLength(2);
    expect(recorded.json.requests[0].headers.authorization).toBe('[redacted]');
    expect((await control('GET', '/_sim/requests?limit=1')).json.requests).toHaveLength(1);
    expect(await control('POST', '/_sim/reset')).toMatchObject({ status: 200 });
    expect(sim.task(TASK)).toBeUndefined();
    expect((await control('GET', '/_sim/stats')).json).toEqual({ requests: 0, byStatus: {} });
    expect((await control('GET', '/_sim/whatever')).status).toBe(404);
  });
});

describe('verify-signature (independent implementation)', () => {
  it('encodes as RFC 3986, like the official signer', () => {
    expect(encodeRfc3986("!'()*")).toBe('%21%27%28%29%2A');
    expect(encodeRfc3986('a-b_c.d~e f/g')).toBe('a-b_c.d~e%20f%2Fg');
    const official = (AKSKSigner as unknown as { urlEncode(s: string): string }).urlEncode.bind(AKSKSigner);
    let all = '';
    for (let c = 0; c < 0x300; c++) all += String.fromCharCode(c);
    all += '\u20ac\u4e2d\u{1f600}';
    for (const ch of [...all]) expect(encodeRfc3986(ch)).toBe(official(ch));
  });

  it('builds canonical URIs and queries', () => {
    expect(canonicalUri('/v1/schedule/task/ST1/enable')).toBe('/v1/schedule/task/ST1/enable/');
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('/a%20b/c')).toBe('/a%2520b/c/');
    expect(canonicalQuery('')).toBe('');
    expect(canonicalQuery('b=2&a=x%20y&a=1&c')).toBe('a=1&a=x%20y&b=2&c=');
  });

  it('parses the Authorization header and X-Sdk-Date strictly', () => {
    expect(parseAuthorization('SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=ab')).toEqual({
      ak: 'AK',
      signedHeaders: ['host', 'x-sdk-date'],
      signature: 'ab',
    });
    expect(parseAuthorization('SDK-HMAC-SHA256 Access=AK')).toBeUndefined();
    expect(parseSdkDate('20240131T235959Z')).toBe(Date.UTC(2024, 0, 31, 23, 59, 59));
    expect(parseSdkDate('20240230T000000Z')).toBeUndefined();
    expect(parseSdkDate('20241301T000000Z')).toBeUndefined();
    expect(parseSdkDate('20240101T000000')).toBeUndefined();
  });

  it('verifies an official signature in-process, and rejects unsorted SignedHeaders', () => {
    const headers = AKSKSigner.sign(
      { method: 'POST', endpoint: 'http://127.0.0.1:9/v1/schedule/task/ST1/enable', queryParams: { q: 'a b' }, headers: { 'X-Project-Id': 'p1' }, data: { x: 1 } },
      new BasicCredentials().withAk(AK).withSk(SK),
    ) as Record<string, string>;
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const req = { method: 'POST', rawUrl: '/v1/schedule/task/ST1/enable?q=a%20b', headers: lower, body: Buffer.from('{"x":1}') };
    const lookup = (ak: string) => (ak === AK ? { sk: SK } : undefined);
    expect(verifySdkHmacSha256(req, lookup, Date.now())).toMatchObject({ ok: true, ak: AK });
    const unsorted = { ...lower, authorization: lower.authorization!.replace('host;x-project-id;x-sdk-date', 'x-project-id;host;x-sdk-date') };
    expect(verifySdkHmacSha256({ ...req, headers: unsorted }, lookup, Date.now())).toMatchObject({ ok: false, reason: expect.stringMatching(/sorted/) });
    expect(verifySdkHmacSha256({ ...req, body: Buffer.from('{"x":2}') }, lookup, Date.now())).toMatchObject({ ok: false });
  });
});
