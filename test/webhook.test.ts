/**
 * The webhook door end to end: API Gateway events (HTTP API 2.0 and REST 1.0) signed per
 * Standard Webhooks with the `standardwebhooks` library itself, the real runtime wiring,
 * and the COC simulator behind it. Every refusal is checked to cost no COC call and no
 * credential fetch; no response or log line may carry a secret.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { handler } from '../functions/webhook';
import { loadConfig } from '../lib/config';
import type { Credentials } from '../lib/credentials';
import type { Outcome } from '../lib/domain';
import { EnablerError } from '../lib/errors';
import { jsonLogger } from '../lib/log';
import { createRuntime, resetRuntime, type Runtime } from '../lib/runtime';
import { MemorySink, type OutcomeSink } from '../lib/sink';
import { idempotencyKey } from '../lib/workflow';
import { localContext } from '../scripts/cli';
import httpApiSample from '../events/webhook-approved.json';
import restApiSample from '../events/webhook-rest-approved.json';
import { registerSecret } from './support/leak-capture';
import { useSimulator } from './support/simulator-fixture';

const KEY = Buffer.from('webhook-door-test-key-0123456789').toString('base64');
const SECRET = `whsec_${KEY}`;
const OTHER_SECRET = `whsec_${Buffer.from('some-other-key-that-forges-0000').toString('base64')}`;
const CREDS: Credentials = { ak: 'AKWEBHOOKDOORTEST001', sk: 'sk-webhook-door-test-secret-value' };
const SECRETS = [SECRET, KEY, CREDS.ak, CREDS.sk];
registerSecret({ 'webhook secret': SECRET, 'webhook key': KEY, 'other webhook secret': OTHER_SECRET, ak: CREDS.ak, sk: CREDS.sk });

const ENABLE = 'ST0000000000000000DEMO0001';
const ALREADY = 'ST0000000000000000DEMO0002';
const MISSING = 'ST0000000000000000DEMO0404';

type Json = Record<string, unknown>;

const approval = (extra: Json = {}): Json => ({
  approval_id: 'CHG-TEST-0001',
  decision: 'APPROVED',
  task_ids: [ENABLE, ALREADY],
  ticket_infos: [{ ticket_id: 'CM0001', ticket_type: 'CHANGE' }],
  ...extra,
});

interface SignOptions {
  date?: Date;
  id?: string;
  secret?: string;
  /** Sign this instead of the body that is sent. */
  signedBody?: string | Buffer;
  /** Header names as the sender spells them. */
  names?: { id: string; timestamp: string; signature: string };
  omit?: 'id' | 'timestamp' | 'signature';
}

const LOWER = { id: 'webhook-id', timestamp: 'webhook-timestamp', signature: 'webhook-signature' };

function signatureHeaders(body: string | Buffer, opts: SignOptions = {}): Record<string, string> {
  const date = opts.date ?? new Date();
  const id = opts.id ?? `msg_${Math.random().toString(36).slice(2)}`;
  const names = opts.names ?? LOWER;
  const headers: Record<string, string> = {
    [names.id]: id,
    [names.timestamp]: String(Math.floor(date.getTime() / 1000)),
    [names.signature]: new Webhook(opts.secret ?? SECRET).sign(id, date, opts.signedBody ?? body),
  };
  if (opts.omit) delete headers[names[opts.omit]];
  return headers;
}

/** The HTTP API sample event with this body, signed (unless unsigned). */
function httpApiEvent(
  body: string,
  opts: SignOptions & { headers?: Record<string, string>; method?: string; base64?: boolean; unsigned?: boolean } = {},
): Json {
  const sample = structuredClone(httpApiSample) as Json & { headers: Record<string, string>; requestContext: { http: Json } };
  const raw = Buffer.from(body, 'utf8');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(sample.headers)) if (!k.startsWith('webhook-')) headers[k] = v;
  headers['content-length'] = String(raw.length);
  Object.assign(headers, opts.unsigned ? {} : signatureHeaders(raw, opts), opts.headers);
  return {
    ...sample,
    headers,
    requestContext: { ...sample.requestContext, http: { ...sample.requestContext.http, method: opts.method ?? 'POST' } },
    body: opts.base64 ? raw.toString('base64') : body,
    isBase64Encoded: opts.base64 ?? false,
  };
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: any;
}

let sink: MemorySink;
let rt: Runtime;
let credentialFetches: number;
let secretReads: number;
let logLines: string[];
let answers: string[];

function setup(env: Record<string, string> = {}, overrides: { sink?: OutcomeSink; webhookSecret?: () => Promise<string> } = {}) {
  sink = new MemorySink();
  const config = loadConfig({
    COC_ENDPOINT: sim().url,
    WEBHOOK_SECRET: SECRET,
    COC_MAX_ATTEMPTS: '2',
    COC_RETRY_BASE_DELAY_MS: '1',
    COC_RETRY_MAX_DELAY_MS: '1',
    ...env,
  });
  const count = async () => {
    credentialFetches += 1;
    return CREDS;
  };
  rt = createRuntime(config, {
    credentials: { get: count, refresh: count },
    sink: overrides.sink ?? sink,
    log: jsonLogger('debug', (line) => logLines.push(line)),
  });
  const read = overrides.webhookSecret ?? rt.webhookSecret;
  rt.webhookSecret = async () => {
    secretReads += 1;
    return read();
  };
  resetRuntime(rt);
}

/** Like Lambda, every invocation gets its own copy of the event (middlewares rewrite event.body). */
async function invoke(event: unknown): Promise<Answer> {
  const res = (await handler(structuredClone(event) as never, localContext('webhook'))) as { statusCode: number; headers: Record<string, string>; body: string };
  answers.push(JSON.stringify(res));
  const text = res.body;
  return { status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) };
}

const cocCalls = () => sim().requests().length;

/** A refusal: nothing reached COC, no credential was fetched, nothing was published. */
function expectNothingDone() {
  expect(cocCalls()).toBe(0);
  expect(credentialFetches).toBe(0);
  expect(sink.outcomes).toEqual([]);
}

const sim = useSimulator(CREDS, { [ENABLE]: { enabled: false }, [ALREADY]: { enabled: true } });

beforeEach(() => {
  credentialFetches = 0;
  secretReads = 0;
  logLines = [];
  answers = [];
  setup();
});

afterEach(() => {
  // No secret in any answer (status, headers, body) or log line of the test.
  for (const text of [...answers, ...logLines]) {
    for (const secret of SECRETS) expect(text).not.toContain(secret);
  }
  // Never a stack trace in an answer.
  for (const text of answers) expect(text).not.toMatch(/\bat .+\(.*:\d+:\d+\)|node_modules|\.ts:\d+/);
});

describe('webhook door: accepted deliveries', () => {
  it('enables the approved tasks against COC and answers 200 with one outcome per task', async () => {
    const body = JSON.stringify(approval());
    const event = httpApiEvent(body, { id: 'msg_valid_0001' });
    const res = await invoke(event);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json.approvalId).toBe('CHG-TEST-0001');
    expect(res.json.outcomes.map((o: Outcome) => [o.taskId, o.outcome, o.trigger])).toEqual([
      [ENABLE, 'enabled', 'webhook'],
      [ALREADY, 'already_enabled', 'webhook'],
    ]);
    expect(sim().task(ENABLE)).toMatchObject({ enabled: true, enableCount: 1 });
    expect(sim().requests().every((r) => r.signatureValid)).toBe(true);
    expect(sink.outcomes).toEqual(res.json.outcomes);
    // The webhook-id is the delivery id of the idempotency key.
    expect(res.json.outcomes[0].idempotencyKey).toBe(idempotencyKey('CHG-TEST-0001', ENABLE, 'msg_valid_0001'));
    expect(secretReads).toBe(1);
  });

  it('answers 200 with the failed outcome for a permanent per-task failure', async () => {
    const res = await invoke(httpApiEvent(JSON.stringify(approval({ task_ids: [ENABLE, MISSING] }))));
    expect(res.status).toBe(200);
    expect(res.json.outcomes.map((o: Outcome) => [o.taskId, o.outcome, o.error?.name])).toEqual([
      [ENABLE, 'enabled', undefined],
      [MISSING, 'failed', 'TaskNotFound'],
    ]);
  });

  it('verifies the raw body as sent, whitespace and key order included (no re-serialization)', async () => {
    const body = `{\n  "task_ids": ["${ENABLE}"],\n  "decision": "approved",\n  "approval_id": "CHG-TEST-RAW"\n}\n`;
    const res = await invoke(httpApiEvent(body));
    expect(res.status).toBe(200);
    expect(res.json.outcomes[0]).toMatchObject({ taskId: ENABLE, outcome: 'enabled' });
  });

  it('accepts a base64-encoded body, verifying the decoded bytes (non-ASCII included)', async () => {
    const body = JSON.stringify(approval({ task_ids: [ENABLE], approver: 'Zoë Ångström' }));
    const event = httpApiEvent(body, { base64: true });
    expect(event.body).not.toContain('{');
    const res = await invoke(event);
    expect(res.status).toBe(200);
    expect(res.json.outcomes[0]).toMatchObject({ taskId: ENABLE, outcome: 'enabled' });
  });

  it('accepts a REST API (1.0) proxy event with the sender’s header case', async () => {
    const sample = structuredClone(restApiSample) as Json & { headers: Record<string, string>; body: string };
    const names = { id: 'Webhook-Id', timestamp: 'Webhook-Timestamp', signature: 'Webhook-Signature' };
    const signed = signatureHeaders(sample.body, { names });
    const headers = { ...sample.headers, ...signed };
    const event = { ...sample, headers, multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])) };
    expect(Object.keys(event.headers)).toContain('Content-Type');
    const res = await invoke(event);
    expect(res.status).toBe(200);
    expect(res.json.outcomes.map((o: Outcome) => o.outcome)).toEqual(['enabled', 'already_enabled']);
  });

  it('treats header names case-insensitively on an HTTP API event too', async () => {
    const body = JSON.stringify(approval({ task_ids: [ENABLE] }));
    const names = { id: 'WEBHOOK-ID', timestamp: 'Webhook-Timestamp', signature: 'WEBHOOK-SIGNATURE' };
    const event = httpApiEvent(body, { unsigned: true, headers: { ...signatureHeaders(body, { names }), 'CONTENT-TYPE': 'Application/JSON' } });
    delete (event.headers as Json)['content-type'];
    const res = await invoke(event);
    expect(res.status).toBe(200);
  });

  it('accepts any of several signatures (secret rotation on the sender side)', async () => {
    const body = JSON.stringify(approval({ task_ids: [ENABLE] }));
    const good = signatureHeaders(body, { id: 'msg_rot' });
    const forged = new Webhook(OTHER_SECRET).sign('msg_rot', new Date(Number(good['webhook-timestamp']) * 1000), body);
    const res = await invoke(httpApiEvent(body, { unsigned: true, headers: { ...good, 'webhook-signature': `${forged} ${good['webhook-signature']}` } }));
    expect(res.status).toBe(200);
  });

  it.each(['application/json; charset=utf-8', 'application/vnd.approvals+json', 'application/cloudevents+json;charset="UTF-8"'])(
    'accepts the JSON content type %s',
    async (contentType) => {
      const res = await invoke(httpApiEvent(JSON.stringify(approval({ decision: 'REJECTED' })), { headers: { 'content-type': contentType } }));
      expect(res.status).toBe(202);
    },
  );

  it('answers 202 and does nothing for a decision other than APPROVED', async () => {
    const res = await invoke(httpApiEvent(JSON.stringify(approval({ decision: 'rejected' }))));
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ status: 'ignored', decision: 'REJECTED', approvalId: 'CHG-TEST-0001' });
    expectNothingDone();
  });
});

describe('webhook door: refusals before the signature', () => {
  it('answers 405 with allow: POST for a GET', async () => {
    const res = await invoke(httpApiEvent('', { method: 'GET' }));
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(res.headers['content-type']).toBe('application/json');
    expectNothingDone();
    expect(secretReads).toBe(0);
  });

  it('answers 405 for a REST API (1.0) PUT', async () => {
    const sample = structuredClone(restApiSample) as Json;
    const res = await invoke({ ...sample, httpMethod: 'PUT' });
    expect(res.status).toBe(405);
    expect(secretReads).toBe(0);
  });

  it('answers 413 for a body over the limit, even a validly signed one, before reading the secret', async () => {
    const limit = loadConfig({}).webhookBodyLimitBytes;
    const body = JSON.stringify(approval({ approver: 'x'.repeat(limit) }));
    const res = await invoke(httpApiEvent(body));
    expect(res.status).toBe(413);
    expect(res.json.error).toBe('PayloadTooLarge');
    expectNothingDone();
    expect(secretReads).toBe(0);
  });

  it('measures a base64 body decoded, against WEBHOOK_BODY_LIMIT_BYTES', async () => {
    setup({ WEBHOOK_BODY_LIMIT_BYTES: '300' });
    const fits = JSON.stringify(approval({ decision: 'REJECTED', approver: 'a'.repeat(300 - JSON.stringify(approval({ decision: 'REJECTED', approver: '' })).length) }));
    expect(Buffer.byteLength(fits)).toBe(300);
    expect((await invoke(httpApiEvent(fits, { base64: true }))).status).toBe(202);
    expect((await invoke(httpApiEvent(`${fits} `, { base64: true }))).status).toBe(413);
  });

  it.each([['text/plain'], ['application/x-www-form-urlencoded'], ['application/jsonp'], ['application/json; charset=iso-8859-1'], [undefined]])(
    'answers 415 for content type %s',
    async (contentType) => {
      const event = httpApiEvent(JSON.stringify(approval()));
      if (contentType) (event.headers as Json)['content-type'] = contentType;
      else delete (event.headers as Json)['content-type'];
      const res = await invoke(event);
      expect(res.status).toBe(415);
      expect(res.json.error).toBe('UnsupportedMediaType');
      expectNothingDone();
      expect(secretReads).toBe(0);
    },
  );
});

describe('webhook door: signature', () => {
  const body = JSON.stringify(approval());

  const expectUnauthorized = (res: Answer) => {
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: 'Unauthorized' });
    expect(res.headers['content-type']).toBe('application/json');
    expectNothingDone();
  };

  it('answers 401 for a forged signature (another secret)', async () => {
    expectUnauthorized(await invoke(httpApiEvent(body, { secret: OTHER_SECRET })));
  });

  it('answers 401 for a signature of a different body', async () => {
    const other = JSON.stringify(approval({ task_ids: [ENABLE] }));
    expectUnauthorized(await invoke(httpApiEvent(body, { signedBody: other })));
  });

  it('answers 401 when the body was altered by one byte', async () => {
    const event = httpApiEvent(body);
    expectUnauthorized(await invoke({ ...event, body: body.replace('CHG-TEST-0001', 'CHG-TEST-0002') }));
  });

  it('answers 401 for a timestamp 10 minutes old, without reading the secret', async () => {
    expectUnauthorized(await invoke(httpApiEvent(body, { date: new Date(Date.now() - 10 * 60_000) })));
    expect(secretReads).toBe(0);
  });

  it('answers 401 for a timestamp 10 minutes in the future', async () => {
    expectUnauthorized(await invoke(httpApiEvent(body, { date: new Date(Date.now() + 10 * 60_000) })));
  });

  it('honours WEBHOOK_TOLERANCE_SECONDS', async () => {
    setup({ WEBHOOK_TOLERANCE_SECONDS: '60' });
    const twoMinutesOld = httpApiEvent(JSON.stringify(approval({ decision: 'REJECTED' })), { date: new Date(Date.now() - 120_000) });
    expectUnauthorized(await invoke(twoMinutesOld));
    setup({ WEBHOOK_TOLERANCE_SECONDS: '600' });
    expect((await invoke(twoMinutesOld)).status).toBe(202);
  });

  it.each(['id', 'timestamp', 'signature'] as const)('answers 401 when webhook-%s is missing, without reading the secret', async (omit) => {
    expectUnauthorized(await invoke(httpApiEvent(body, { omit })));
    expect(secretReads).toBe(0);
  });

  it('answers 401 for an unsigned request and a malformed timestamp', async () => {
    expectUnauthorized(await invoke(httpApiEvent(body, { unsigned: true })));
    const event = httpApiEvent(body);
    expectUnauthorized(await invoke({ ...event, headers: { ...(event.headers as Json), 'webhook-timestamp': '17e8' } }));
  });

  it('gives the same answer for every refusal, whatever the reason (logged, not returned)', async () => {
    const texts = new Set<string>();
    for (const event of [
      httpApiEvent(body, { secret: OTHER_SECRET }),
      httpApiEvent(body, { date: new Date(Date.now() - 3600_000) }),
      httpApiEvent(body, { omit: 'signature' }),
    ]) {
      texts.add((await invoke(event)).text);
    }
    expect([...texts]).toEqual(['{"error":"Unauthorized"}']);
    const reasons = logLines.map((l) => JSON.parse(l) as Json).filter((l) => l.status === 401).map((l) => l.reason);
    expect(reasons).toEqual(['no matching signature', expect.stringMatching(/old/), 'missing signature headers']);
  });
});

describe('webhook door: after the signature', () => {
  it('answers 400 for a signed body that is not JSON, before any COC call', async () => {
    const res = await invoke(httpApiEvent('{"approval_id": "CHG-1", "decision": '));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'BadRequest', message: 'the body is not valid JSON' });
    expectNothingDone();
  });

  it('answers 400 for a signed empty body', async () => {
    const res = await invoke(httpApiEvent(''));
    expect(res.status).toBe(400);
    expectNothingDone();
  });

  it('answers 400 for a signed body that is not UTF-8', async () => {
    const raw = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    const event = httpApiEvent('', { unsigned: true, headers: signatureHeaders(raw) });
    const res = await invoke({ ...event, body: raw.toString('base64'), isBase64Encoded: true });
    expect(res.status).toBe(400);
    expectNothingDone();
  });

  it('answers 422 naming the field for an invalid approval, with one failure outcome per readable task and no COC call', async () => {
    const body = JSON.stringify(approval({ task_ids: [ENABLE, 'not-a-task-id'] }));
    const res = await invoke(httpApiEvent(body, { id: 'msg_invalid_1' }));
    expect(res.status).toBe(422);
    expect(res.json).toEqual({ error: 'InvalidApproval', message: expect.stringContaining('task_ids[1]'), field: 'task_ids[1]' });
    expect(cocCalls()).toBe(0);
    expect(credentialFetches).toBe(0);
    expect(sink.outcomes.map((o) => [o.taskId, o.outcome, o.error?.name, o.approvalId, o.trigger])).toEqual([
      [ENABLE, 'failed', 'InvalidApproval', 'CHG-TEST-0001', 'webhook'],
      ['not-a-task-id', 'failed', 'InvalidApproval', 'CHG-TEST-0001', 'webhook'],
    ]);
    expect(sink.outcomes[0]!.idempotencyKey).toBe(idempotencyKey('CHG-TEST-0001', ENABLE, 'msg_invalid_1'));
  });

  it('answers 422 for a JSON body that is not an object', async () => {
    const res = await invoke(httpApiEvent('[1,2,3]'));
    expect(res.status).toBe(422);
    expect(res.json.field).toBe('$');
    expect(cocCalls()).toBe(0);
  });

  it('answers 503 with retry-after on a transient COC failure; a redelivery of the same webhook-id keeps the idempotency keys', async () => {
    sim().injectFault({ fault: { kind: 'status', status: 503 }, taskId: ALREADY, times: Infinity });
    const event = httpApiEvent(JSON.stringify(approval({ task_ids: [ENABLE, ALREADY] })), { id: 'msg_transient_1' });
    const res = await invoke(event);
    expect(res.status).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.json).toMatchObject({ error: 'CocUnavailable', retryable: true });
    expect(res.text).not.toContain(ALREADY);
    // The task that worked is published; the transient one is held back for the redelivery.
    expect(sink.outcomes.map((o) => [o.taskId, o.outcome])).toEqual([[ENABLE, 'enabled']]);

    sim().clearFaults();
    const again = await invoke(event);
    expect(again.status).toBe(200);
    expect(again.json.outcomes.map((o: Outcome) => [o.taskId, o.outcome])).toEqual([
      [ENABLE, 'already_enabled'],
      [ALREADY, 'already_enabled'],
    ]);
    expect(again.json.outcomes[0].idempotencyKey).toBe(sink.outcomes[0]!.idempotencyKey);
  });

  it('answers 503 when the outcome events cannot be delivered', async () => {
    const failing: OutcomeSink = {
      publish: async () => {
        throw new EnablerError('EventDeliveryFailed', 'EventBridge unavailable');
      },
    };
    setup({}, { sink: failing });
    const res = await invoke(httpApiEvent(JSON.stringify(approval({ task_ids: [ENABLE] }))));
    expect(res.status).toBe(503);
    expect(res.json.error).toBe('EventDeliveryFailed');
  });

  it('answers 503 when the webhook secret cannot be read for now (Secrets Manager throttled)', async () => {
    setup({}, {
      webhookSecret: async () => {
        throw new EnablerError('CredentialsUnavailable', 'Secrets Manager throttled reading secret webhook', { retryable: true });
      },
    });
    const res = await invoke(httpApiEvent(JSON.stringify(approval())));
    expect(res.status).toBe(503);
    expectNothingDone();
  });

  it('answers 500 with a generic body when no webhook secret is configured', async () => {
    setup({ WEBHOOK_SECRET: '' });
    const res = await invoke(httpApiEvent(JSON.stringify(approval())));
    expect(res.status).toBe(500);
    expect(res.json).toEqual({ error: 'InternalServerError' });
    expectNothingDone();
    expect(logLines.some((l) => l.includes('InvalidConfiguration'))).toBe(true);
  });

  it('answers 500 with a generic body on an unexpected error, logging it', async () => {
    const broken: OutcomeSink = {
      publish: async () => {
        throw new TypeError('cannot read properties of undefined (reading "detail")');
      },
    };
    setup({}, { sink: broken });
    const res = await invoke(httpApiEvent(JSON.stringify(approval({ task_ids: [ENABLE] }))));
    expect(res.status).toBe(500);
    expect(res.text).toBe('{"error":"InternalServerError"}');
    const logged = logLines.map((l) => JSON.parse(l) as Json).find((l) => l.status === 500);
    expect(logged).toMatchObject({ level: 'ERROR', error: { name: 'TypeError' } });
  });
});
