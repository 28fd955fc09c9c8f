import { describe, expect, it, vi } from 'vitest';
import { CocClient } from '../lib/coc/client';
import { TransportError, type HttpRequest, type HttpResponse, type Transport } from '../lib/coc/transport';
import type { Credentials, CredentialSource } from '../lib/credentials';
import { EnablerError } from '../lib/errors';
import { FakeClock } from './support/fake-clock';
import { registerSecret } from './support/leak-capture';
import { caught as failure } from './support/errors';

const TASK = 'ST0123456789abcdefghijklmn';
const CREDS: Credentials = { ak: 'AKTESTCLIENT00000001', sk: 'sk-client-test-secret', securityToken: 'token-client-test' };
registerSecret({ ak: CREDS.ak, sk: CREDS.sk, 'security token': CREDS.securityToken!, 'rotated ak': 'AKROTATED00000000002', 'rotated sk': 'sk-rotated' });

type Step = Partial<HttpResponse> | TransportError | ((req: HttpRequest, timeoutMs: number) => HttpResponse | TransportError);

/** Answers each send with the next scripted step and records what it was asked. */
class ScriptedTransport implements Transport {
  readonly sent: { req: HttpRequest; timeoutMs: number }[] = [];
  constructor(
    private readonly steps: Step[],
    private readonly clock?: FakeClock,
    private readonly latencyMs = 0,
  ) {}
  async send(req: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
    this.sent.push({ req, timeoutMs });
    this.clock?.advance(Math.min(this.latencyMs, timeoutMs));
    let step = this.steps.shift() ?? { status: 200, body: `{"data":"${TASK}"}` };
    if (typeof step === 'function') step = step(req, timeoutMs);
    if (step instanceof TransportError) throw step;
    return { status: 200, headers: {}, body: `{"data":"${TASK}"}`, ...step };
  }
  close(): void {}
}

const cocError = (status: number, code: string, msg = 'message', headers: Record<string, string> = {}): Partial<HttpResponse> => ({
  status,
  headers: { 'x-request-id': `req-${code}`, ...headers },
  body: JSON.stringify({ error_code: code, error_msg: msg }),
});

function setup(steps: Step[], opts: { latencyMs?: number; source?: CredentialSource; maxAttempts?: number } = {}) {
  const clock = new FakeClock();
  const transport = new ScriptedTransport(steps, clock, opts.latencyMs);
  const source = opts.source ?? { get: vi.fn(async () => CREDS), refresh: vi.fn(async () => CREDS) };
  const client = new CocClient({
    endpoint: new URL('https://coc.myhuaweicloud.com'),
    credentials: source,
    transport,
    clock,
    maxAttempts: opts.maxAttempts ?? 4,
    attemptTimeoutMs: 5000,
    baseDelayMs: 200,
    maxDelayMs: 5000,
    throttleMinDelayMs: 2000,
    deadlineMs: 25000,
  });
  return { clock, transport, client, source };
}

describe('CocClient.enableScheduledTask', () => {
  it('sends one signed POST with the ticket infos as the exact JSON body', async () => {
    const { client, transport } = setup([{ status: 200, headers: { 'x-request-id': 'r-1' }, body: `{"data":"${TASK}"}` }]);
    const result = await client.enableScheduledTask(TASK, [{ ticket_id: 'CM1', ticket_type: 'CHANGE' }]);
    expect(result).toEqual({ outcome: 'enabled', requestId: 'r-1', attempts: 1 });
    const { req } = transport.sent[0]!;
    expect(req.method).toBe('POST');
    expect(req.target).toBe(`/v1/schedule/task/${TASK}/enable`);
    expect(req.body?.toString()).toBe('{"ticket_infos":[{"ticket_id":"CM1","ticket_type":"CHANGE"}]}');
    expect(req.headers['Content-Type']).toBe('application/json;charset=UTF-8');
    expect(req.headers['X-Security-Token']).toBe(CREDS.securityToken);
    expect(req.headers.Authorization).toMatch(/^SDK-HMAC-SHA256 Access=AKTESTCLIENT00000001, SignedHeaders=content-type;host;x-sdk-date;x-security-token, Signature=[0-9a-f]{64}$/);
  });

  it('sends {} when there are no tickets', async () => {
    const { client, transport } = setup([]);
    await client.enableScheduledTask(TASK, []);
    expect(transport.sent[0]!.req.body?.toString()).toBe('{}');
  });

  it('reports COC.00014110 as already_enabled, a success', async () => {
    const { client } = setup([cocError(400, 'COC.00014110', 'The scheduled task is already enabled')]);
    await expect(client.enableScheduledTask(TASK, [])).resolves.toEqual({
      outcome: 'already_enabled',
      requestId: 'req-COC.00014110',
      attempts: 1,
    });
  });

  it.each([
    ['COC.00014102', 400, 'TaskNotFound'],
    ['COC.00014121', 400, 'TaskNotOwned'],
    ['COC.00014150', 400, 'TicketRejected'],
    ['COC.00010014', 400, 'CocAuthFailed'],
    ['COC.00011013', 400, 'CocAuthFailed'],
    ['COC.00014002', 400, 'InvalidApproval'],
    ['COC.00010002', 400, 'InvalidApproval'],
    ['APIGW.0201', 413, 'InvalidApproval'],
    ['APIGW.0101', 404, 'InvalidConfiguration'],
  ])('maps %s (HTTP %i) to %s without retrying', async (code, status, name) => {
    const { client, transport, clock } = setup([cocError(status, code)]);
    const e = await failure(client.enableScheduledTask(TASK, []));
    expect(e.name).toBe(name);
    expect(e.code).toBe(code);
    expect(e.status).toBe(status);
    expect(e.requestId).toBe(`req-${code}`);
    expect(e.retryable).toBe(false);
    expect(transport.sent).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('reports an unknown refusal as CocRejected, permanent, keeping its code', async () => {
    const { client, transport } = setup([cocError(400, 'COC.00019999', 'The task is being modified')]);
    const e = await failure(client.enableScheduledTask(TASK, []));
    expect(e).toMatchObject({ name: 'CocRejected', code: 'COC.00019999', status: 400, retryable: false });
    expect(e.message).toContain('The task is being modified');
    expect(transport.sent).toHaveLength(1);
  });

  it('treats a refusal that mentions a ticket as TicketRejected', async () => {
    const { client } = setup([cocError(403, 'COC.00099999', 'Ticket is not in effect')]);
    expect((await failure(client.enableScheduledTask(TASK, []))).name).toBe('TicketRejected');
  });

  it('retries 5xx with full-jitter exponential backoff, then succeeds', async () => {
    const { client, transport, clock } = setup([cocError(503, 'APIGW.0503'), cocError(500, 'COC.00010001'), {}]);
    const result = await client.enableScheduledTask(TASK, []);
    expect(result).toMatchObject({ outcome: 'enabled', attempts: 3 });
    expect(transport.sent).toHaveLength(3);
    // random() = 0.5: half of 200 ms, then half of 400 ms.
    expect(clock.sleeps).toEqual([100, 200]);
  });

  it('caps the backoff at maxDelayMs', async () => {
    const clock = new FakeClock(Date.parse('2026-12-04T12:00:00Z'), 0.999);
    const c = new CocClient({
      endpoint: new URL('https://h'),
      credentials: { get: async () => CREDS, refresh: async () => CREDS },
      transport: new ScriptedTransport([cocError(503, 'X'), cocError(503, 'X'), cocError(503, 'X')], clock),
      clock,
      maxAttempts: 4,
      baseDelayMs: 1000,
      maxDelayMs: 1500,
    });
    await c.enableScheduledTask(TASK, []);
    expect(clock.sleeps.every((d) => d <= 1500)).toBe(true);
    // 0.999 x min(1500, 1000 x 2^n): 999, then 1498.5 twice.
    expect(clock.sleeps).toEqual([999, 1498.5, 1498.5]);
  });

  it('gives up after the attempt budget with CocUnavailable, keeping the last code and request id', async () => {
    const { client, transport } = setup(Array.from({ length: 6 }, () => cocError(502, 'APIGW.0502')));
    const e = await failure(client.enableScheduledTask(TASK, []));
    expect(e.name).toBe('CocUnavailable');
    expect(e.retryable).toBe(true);
    expect(e.attempts).toBe(4);
    expect(e.code).toBe('APIGW.0502');
    expect(transport.sent).toHaveLength(4);
  });

  it('honors Retry-After on 429 and ends in CocThrottled after the budget', async () => {
    const throttled = () => cocError(429, 'APIGW.0308', 'The throttling threshold has been reached', { 'retry-after': '3' });
    const { client, clock } = setup([throttled(), throttled(), throttled(), throttled()]);
    const e = await failure(client.enableScheduledTask(TASK, []));
    expect(e.name).toBe('CocThrottled');
    expect(e.retryable).toBe(true);
    expect(clock.sleeps).toEqual([3000, 3000, 3000]);
  });

  it('waits at least 2 s on a 429 without Retry-After (Huawei suggests 2-5 s)', async () => {
    const { client, clock } = setup([cocError(429, 'APIGW.0308'), {}]);
    await client.enableScheduledTask(TASK, []);
    expect(clock.sleeps).toEqual([2000]);
  });

  it('retries network errors and timeouts', async () => {
    const { client, transport } = setup([
      new TransportError('network', 'ECONNRESET: socket hang up'),
      new TransportError('timeout', 'no complete answer within 5000 ms'),
      {},
    ]);
    await expect(client.enableScheduledTask(TASK, [])).resolves.toMatchObject({ outcome: 'enabled', attempts: 3 });
    expect(transport.sent).toHaveLength(3);
  });

  it('retries a 200 whose body is not JSON', async () => {
    const { client } = setup([{ status: 200, body: '<html>gateway</html>' }, {}]);
    await expect(client.enableScheduledTask(TASK, [])).resolves.toMatchObject({ outcome: 'enabled', attempts: 2 });
  });

  it('stops at the deadline: no attempt starts after it and a backoff that would pass it is skipped', async () => {
    const { client, clock, transport } = setup(Array.from({ length: 4 }, () => new TransportError('timeout', 'slow')), { latencyMs: 5000 });
    const deadline = clock.now() + 7000;
    const e = await failure(client.enableScheduledTask(TASK, [], { deadline }));
    expect(e.name).toBe('CocUnavailable');
    expect(clock.now()).toBeLessThanOrEqual(deadline);
    // First attempt gets the full 5 s, the second only what remains before the deadline.
    expect(transport.sent.map((s) => s.timeoutMs)).toEqual([5000, 2000 - clock.sleeps[0]!]);
  });

  it('fails with the deadline error when no time is left at all', async () => {
    const { client, clock, transport } = setup([]);
    const e = await failure(client.enableScheduledTask(TASK, [], { deadline: clock.now() }));
    expect(e).toMatchObject({ name: 'CocUnavailable', code: 'DeadlineExceeded' });
    expect(transport.sent).toHaveLength(0);
  });

  it('on APIGW.0301 asks for fresh credentials once and retries once', async () => {
    const rotated: Credentials = { ak: 'AKROTATED00000000002', sk: 'sk-rotated' };
    const source = { get: vi.fn(async () => CREDS), refresh: vi.fn(async () => rotated) };
    const { client, transport } = setup([cocError(401, 'APIGW.0301', 'Incorrect IAM authentication information'), {}], { source });
    await expect(client.enableScheduledTask(TASK, [])).resolves.toMatchObject({ outcome: 'enabled' });
    expect(source.refresh).toHaveBeenCalledTimes(1);
    expect(transport.sent[1]!.req.headers.Authorization).toContain('Access=AKROTATED00000000002');
  });

  it('ends in CocAuthFailed when fresh credentials are refused too', async () => {
    const denied = () => cocError(401, 'APIGW.0301', 'Incorrect IAM authentication information');
    const { client, transport, source } = setup([denied(), denied(), denied()]);
    const e = await failure(client.enableScheduledTask(TASK, []));
    expect(e).toMatchObject({ name: 'CocAuthFailed', code: 'APIGW.0301', status: 401, retryable: false });
    expect(source.refresh).toHaveBeenCalledTimes(1);
    expect(transport.sent).toHaveLength(2);
  });

  it('rejects an invalid task id or ticket before any network call', async () => {
    const { client, transport } = setup([]);
    expect((await failure(client.enableScheduledTask('ST123', []))).name).toBe('InvalidApproval');
    expect(
      (await failure(client.enableScheduledTask(TASK, [{ ticket_type: 'OTHER' as never }]))).field,
    ).toBe('ticket_infos[0].ticket_type');
    expect(transport.sent).toHaveLength(0);
  });

  it('never puts the AK, SK, token or Authorization header into errors', async () => {
    const { client, transport } = setup([cocError(401, 'APIGW.0301'), cocError(401, 'APIGW.0301')]);
    const e = await failure(client.enableScheduledTask(TASK, []));
    const text = `${e.message} ${JSON.stringify(e)} ${String(e.stack)}`;
    const auth = transport.sent[0]!.req.headers.Authorization!;
    for (const secret of [CREDS.ak, CREDS.sk, CREDS.securityToken!, auth, auth.split('Signature=')[1]!]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('CocClient.showScheduledTask', () => {
  it('reads the enabled flag at the top level or under data', async () => {
    const { client, transport } = setup([
      { status: 200, body: '{"id":"x","enabled":true}' },
      { status: 200, body: '{"data":{"enabled":false}}' },
    ]);
    expect((await client.showScheduledTask(TASK)).enabled).toBe(true);
    expect((await client.showScheduledTask(TASK)).enabled).toBe(false);
    expect(transport.sent[0]!.req.method).toBe('GET');
    expect(transport.sent[0]!.req.body).toBeUndefined();
  });

  it('fails clearly on an answer without the flag', async () => {
    const { client } = setup([{ status: 200, body: '{"data":"?"}' }]);
    expect((await failure(client.showScheduledTask(TASK))).message).toContain('without an enabled flag');
  });
});
