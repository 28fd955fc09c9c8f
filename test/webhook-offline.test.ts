/**
 * The webhook function behind `serverless offline` (serverless-offline 14: API Gateway HTTP API
 * payload 2.0 emulation, the function bundled by serverless-esbuild from serverless.yml's
 * `custom.esbuild`, run in a worker thread with the Lambda environment), answering real HTTP
 * requests on loopback that are signed with the `standardwebhooks` library. The function talks to
 * the COC simulator of this process; its request log shows that nothing but a valid delivery
 * reaches COC.
 *
 * What the emulated gateway does on its own (documented by the tests below):
 *  - the route is `POST /approvals` only, so a GET never reaches the function: 404 from the
 *    gateway, not the function's 405 (real HTTP APIs answer 404 {"message":"Not Found"} as well);
 *  - bodies up to 10 MiB are passed on (the function answers 413 above WEBHOOK_BODY_LIMIT_BYTES,
 *    256 KiB by default); above 10 MiB serverless-offline's server answers 413 itself, as API
 *    Gateway does at its 10 MB limit. Lambda's 6 MB synchronous payload limit is not emulated.
 *
 * How the function is configured: see test/support/offline.ts (serverless.yml cannot express
 * "no Secrets Manager, no event bus" for a stage; the suite's report names the change).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import type { Outcome } from '../lib/domain';
import { startCocSimulator, type CocSimulator } from '../simulator/coc-simulator';
import { captureOutput, registerSecret } from './support/leak-capture';
import { startOffline, type Offline } from './support/offline';

const hex = (n: number) => randomBytes(n).toString('hex');
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OTHER_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const CREDS = { ak: `WHOFF${hex(8).toUpperCase()}`.slice(0, 20), sk: `wh-offline-sk-${hex(16)}` };
const SECRETS = [SECRET, SECRET.slice('whsec_'.length), OTHER_SECRET, CREDS.ak, CREDS.sk];

const ENABLE = 'ST0000000000000000WHOFF001';
const ALREADY = 'ST0000000000000000WHOFF002';
const BODY_LIMIT = 256 * 1024;

type Json = Record<string, unknown>;

const approval = (extra: Json = {}): Json => ({
  approval_id: 'CHG-OFFLINE-0001',
  decision: 'APPROVED',
  task_ids: [ENABLE, ALREADY],
  ticket_infos: [{ ticket_id: 'CM-OFFLINE-1', ticket_type: 'CHANGE' }],
  approver: 'jane.doe@example.com',
  ...extra,
});

interface SignOptions {
  secret?: string;
  date?: Date;
  /** Sign this instead of the body that is sent. */
  signedBody?: string;
}

function signed(body: string, opts: SignOptions = {}): Record<string, string> {
  const id = `msg_${hex(12)}`;
  const date = opts.date ?? new Date();
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
    'webhook-signature': new Webhook(opts.secret ?? SECRET).sign(id, date, opts.signedBody ?? body),
  };
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Json | undefined;
  cocCalls: number;
}

let sim: CocSimulator;
let offline: Offline;
const answers: string[] = [];

async function send(init: { method?: string; body?: string; headers?: Record<string, string> }): Promise<Answer> {
  const before = sim.requests().length;
  const res = await fetch(`${offline.url}/approvals`, {
    method: init.method ?? 'POST',
    headers: init.headers,
    ...(init.body !== undefined && { body: init.body }),
  });
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = undefined;
  }
  const answer = { status: res.status, headers: res.headers, text, json, cocCalls: sim.requests().length - before };
  const record = { status: answer.status, headers: Object.fromEntries(res.headers), body: text.slice(0, 2000) };
  answers.push(JSON.stringify(record));
  captureOutput('webhook-offline response', record);
  return answer;
}

const post = (body: string, opts: SignOptions & { contentType?: string; headers?: Record<string, string> } = {}) =>
  send({ body, headers: { 'content-type': opts.contentType ?? 'application/json', ...signed(body, opts), ...opts.headers } });

beforeAll(async () => {
  registerSecret(SECRET, OTHER_SECRET, { ak: CREDS.ak, sk: CREDS.sk });
  sim = await startCocSimulator({ credentials: [{ ak: CREDS.ak, sk: CREDS.sk }] });
  offline = await startOffline({
    params: { cocEndpoint: sim.url },
    env: {
      HUAWEICLOUD_SDK_AK: CREDS.ak,
      HUAWEICLOUD_SDK_SK: CREDS.sk,
      WEBHOOK_SECRET: SECRET,
      COC_MAX_ATTEMPTS: '2',
      COC_RETRY_BASE_DELAY_MS: '1',
      COC_RETRY_MAX_DELAY_MS: '5',
    },
  });
  console.info(`serverless offline ready in ${offline.startupMs} ms at ${offline.url}`);
}, 120_000);

afterAll(async () => {
  await offline?.stop();
  await sim?.close();
  if (offline) {
    captureOutput('serverless offline output', offline.output());
    // Nothing the function or the emulator printed, and no answer, carries a secret.
    for (const text of [offline.output(), ...answers]) for (const secret of SECRETS) expect(text).not.toContain(secret);
    // Never a stack trace in an answer.
    for (const text of answers) expect(text).not.toMatch(/\bat .+\(.*:\d+:\d+\)|node_modules|\.ts:\d+|\.mjs:\d+/);
  }
}, 30_000);

beforeEach(() => {
  sim.reset();
  sim.seedTask(ENABLE, { enabled: false });
  sim.seedTask(ALREADY, { enabled: true });
});

describe('serverless offline: the configuration it runs', () => {
  it('is serverless.yml with the offline plugin, the webhook on POST /approvals, and no secret ids or bus', () => {
    expect(offline.config.plugins).toEqual(expect.arrayContaining(['serverless-esbuild', 'serverless-offline']));
    expect(offline.config.functions.webhook.events).toEqual([{ httpApi: { method: 'POST', path: '/approvals' } }]);
    expect(offline.config.provider.environment).not.toHaveProperty('HUAWEI_CREDENTIALS_SECRET_ID');
    expect(offline.config.provider.environment).not.toHaveProperty('EVENT_BUS_NAME');
    expect(offline.config.functions.webhook.environment ?? {}).not.toHaveProperty('WEBHOOK_SECRET_ID');
    expect(offline.output()).toContain('POST | http://127.0.0.1:');
  });
});

describe('webhook behind serverless offline (HTTP API)', () => {
  it('valid: 200 with one outcome per task, the task enabled in COC with a valid signature', async () => {
    const res = await post(JSON.stringify(approval()));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.json?.approvalId).toBe('CHG-OFFLINE-0001');
    expect((res.json?.outcomes as Outcome[]).map((o) => [o.taskId, o.outcome, o.trigger])).toEqual([
      [ENABLE, 'enabled', 'webhook'],
      [ALREADY, 'already_enabled', 'webhook'],
    ]);
    expect(sim.task(ENABLE)).toMatchObject({ enabled: true, enableCount: 1 });
    expect(res.cocCalls).toBe(2);
    expect(sim.requests().every((r) => r.signatureValid && r.ak === CREDS.ak)).toBe(true);
  });

  it('the raw body is verified as sent: whitespace and key order survive the emulated gateway', async () => {
    const body = `{\n  "task_ids": ["${ENABLE}"],\n  "decision": "approved",\n  "approval_id": "CHG-OFFLINE-RAW", "approver": "Zoë Ångström ‏שלום"\n}\n`;
    const res = await post(body);
    expect(res.status).toBe(200);
    expect(res.cocCalls).toBe(1);
  });

  it('a decision other than APPROVED: 202, no COC call', async () => {
    const res = await post(JSON.stringify(approval({ decision: 'REJECTED' })));
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ status: 'ignored', decision: 'REJECTED', approvalId: 'CHG-OFFLINE-0001' });
    expect(res.cocCalls).toBe(0);
  });

  it('an invalid approval: 422 naming the field, no COC call', async () => {
    const res = await post(JSON.stringify(approval({ task_ids: [ENABLE, 'ST-short'] })));
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ error: 'InvalidApproval', field: 'task_ids[1]' });
    expect(res.cocCalls).toBe(0);
  });

  it.each([
    ['a forged signature (another secret)', { secret: OTHER_SECRET }],
    ['an expired timestamp (10 minutes old, tolerance 5)', { date: new Date(Date.now() - 600_000) }],
    ['a timestamp 10 minutes in the future', { date: new Date(Date.now() + 600_000) }],
    ['a signature for a different body', { signedBody: JSON.stringify(approval({ task_ids: [ALREADY] })) }],
  ])('%s: 401 with the generic body, no COC call', async (_, opts: SignOptions) => {
    const res = await post(JSON.stringify(approval()), opts);
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: 'Unauthorized' });
    expect(res.cocCalls).toBe(0);
  });

  it('no signature headers at all: 401, no COC call', async () => {
    const res = await send({ body: JSON.stringify(approval()), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.cocCalls).toBe(0);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=iso-8859-1'])(
    'wrong content type %s (validly signed): 415, no COC call',
    async (contentType) => {
      const res = await post(JSON.stringify(approval()), { contentType });
      expect(res.status).toBe(415);
      expect(res.json).toMatchObject({ error: 'UnsupportedMediaType' });
      expect(res.cocCalls).toBe(0);
    },
  );

  it('broken JSON (validly signed): 400, no COC call', async () => {
    const res = await post('{"approval_id": "CHG-OFFLINE-0001", "decision": "APPROVED", "task_ids": [');
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'BadRequest', message: 'the body is not valid JSON' });
    expect(res.cocCalls).toBe(0);
  });

  it('a body over WEBHOOK_BODY_LIMIT_BYTES (validly signed): 413 from the function, no COC call', async () => {
    const body = JSON.stringify(approval({ approver: 'x'.repeat(BODY_LIMIT) }));
    const res = await post(body);
    expect(res.status).toBe(413);
    expect(res.json).toEqual({ error: 'PayloadTooLarge', message: `the body must be at most ${BODY_LIMIT} bytes` });
    expect(res.cocCalls).toBe(0);
  });

  it('a body over the gateway limit (10 MiB + 1): 413 from the emulated gateway itself, no COC call', async () => {
    const body = JSON.stringify(approval({ approver: 'x'.repeat(10 * 1024 * 1024) }));
    const res = await post(body);
    expect(res.status).toBe(413);
    // Not the function's answer: the emulator's own (hapi) 413.
    expect(res.json?.error).not.toBe('PayloadTooLarge');
    expect(res.cocCalls).toBe(0);
  });

  it('a GET: 404 from the gateway (no GET route; the function and its 405 are never reached), no COC call', async () => {
    const res = await send({ method: 'GET' });
    expect(res.status).toBe(404);
    expect(res.cocCalls).toBe(0);
    // A PUT is routed nowhere either.
    expect((await send({ method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(404);
  });
});
