import {
  EventBridgeClient,
  EventBridgeServiceException,
  PutEventsCommand,
  type PutEventsRequestEntry,
  type PutEventsResultEntry,
} from '@aws-sdk/client-eventbridge';
// ajv is not a direct dependency (it comes with asl-validator); see the report to the lead.
import { Ajv2020 } from 'ajv/dist/2020';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  EventBridgeSink,
  MAX_ENTRY_BYTES,
  TRUNCATION_MARK,
  entrySizeBytes,
  type EventBridgeSinkOptions,
} from '../lib/aws/eventbridge';
import type { Clock } from '../lib/clock';
import type { Outcome, OutcomeKind, Trigger } from '../lib/domain';
import { EnablerError, type ErrorName } from '../lib/errors';
import { DETAIL_TYPE_ENABLED, DETAIL_TYPE_FAILED } from '../lib/sink';
import { startEventBridgeFake, type EventBridgeFake } from './support/aws-fakes';
import { caught } from './support/errors';

const BUS = 'coc-outcomes';

/** Records sleeps instead of sleeping. */
function recordingClock(random = 0.5) {
  const sleeps: number[] = [];
  const clock: Clock & { sleeps: number[] } = {
    now: () => Date.parse('2026-03-01T12:00:00.000Z'),
    random: () => random,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    sleeps,
  };
  return clock;
}

const taskId = (i: number) => `ST${String(i).padStart(24, '0')}`;

function outcome(i: number, over: Partial<Outcome> = {}): Outcome {
  return {
    taskId: taskId(i),
    approvalId: 'CHG-0042',
    trigger: 'webhook',
    outcome: 'enabled',
    ticketIds: ['CHG-0042'],
    cocRequestId: `req-${i}`,
    attempts: 1,
    durationMs: 12,
    idempotencyKey: `key-${i}`,
    time: '2026-03-01T11:59:59.123Z',
    ...over,
  };
}

function failedOutcome(i: number, message = 'COC says the task does not exist'): Outcome {
  return outcome(i, {
    outcome: 'failed',
    error: { name: 'TaskNotFound', code: 'COC.00014102', message, status: 404, retryable: false },
  });
}

const taskIdOf = (e: PutEventsRequestEntry | undefined) => (JSON.parse(e?.Detail ?? '{}') as Outcome).taskId;

const ebError = (name: string, status: number) =>
  new EventBridgeServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message: name });

// Mock one client instance, not the class, so the real clients used against the fake stay real.
const mockedClient = new EventBridgeClient({ region: 'us-east-1' });
const eb = mockClient(mockedClient);
beforeEach(() => eb.reset());
afterAll(() => eb.restore());

/** A PutEvents mock that answers per entry: `fail(entry, call)` returns an ErrorCode or nothing. */
function answerPerEntry(fail: (e: PutEventsRequestEntry, call: number) => string | undefined) {
  let call = 0;
  eb.on(PutEventsCommand).callsFake(async (input: { Entries: PutEventsRequestEntry[] }) => {
    call += 1;
    const results: PutEventsResultEntry[] = input.Entries.map((e, i) => {
      const code = fail(e, call);
      return code ? { ErrorCode: code, ErrorMessage: 'x' } : { EventId: `ev-${call}-${i}` };
    });
    return { FailedEntryCount: results.filter((r) => r.ErrorCode).length, Entries: results };
  });
}

const sentCalls = () => eb.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries ?? []);

const newSink = (clock = recordingClock(), extra: Partial<EventBridgeSinkOptions> = {}) =>
  new EventBridgeSink({ client: mockedClient, eventBusName: BUS, clock, ...extra });

describe('entrySizeBytes', () => {
  it('counts UTF-8 bytes of Source, DetailType, Detail and Resources, plus 14 for Time', () => {
    const base = { Source: 'abc', DetailType: 'de', Detail: '{"a":1}' };
    expect(entrySizeBytes(base)).toBe(3 + 2 + 7);
    expect(entrySizeBytes({ ...base, Time: new Date() })).toBe(3 + 2 + 7 + 14);
    expect(entrySizeBytes({ ...base, Resources: ['arn:x', 'é'] })).toBe(12 + 5 + 2);
    // é is 2 bytes, € 3, 😀 4 (a surrogate pair: 2 UTF-16 units).
    expect(entrySizeBytes({ Source: 'é', DetailType: '€', Detail: '😀' })).toBe(2 + 3 + 4);
    // EventBusName does not count.
    expect(entrySizeBytes({ ...base, EventBusName: 'a-very-long-bus-name' })).toBe(12);
  });
});

describe('EventBridgeSink (mocked client)', () => {
  it('sends nothing for no outcomes', async () => {
    await newSink().publish([]);
    expect(eb.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('sends 25 outcomes in 3 calls of at most 10, in order, each entry shaped as documented', async () => {
    answerPerEntry(() => undefined);
    const outcomes = Array.from({ length: 25 }, (_, i) => (i % 4 === 0 ? failedOutcome(i) : outcome(i)));
    await newSink().publish(outcomes);

    const calls = sentCalls();
    expect(calls.map((c) => c.length)).toEqual([10, 10, 5]);
    const entries = calls.flat();
    expect(entries.map(taskIdOf)).toEqual(outcomes.map((o) => o.taskId));
    entries.forEach((e, i) => {
      const o = outcomes[i]!;
      expect(e).toEqual({
        EventBusName: BUS,
        Source: 'coc.task-enabler',
        DetailType: o.outcome === 'failed' ? DETAIL_TYPE_FAILED : DETAIL_TYPE_ENABLED,
        Detail: expect.any(String),
        Resources: [],
        Time: new Date(o.time),
      });
      expect(JSON.parse(e.Detail!)).toEqual(o);
    });
  });

  it('uses a configured source', async () => {
    answerPerEntry(() => undefined);
    await newSink(recordingClock(), { source: 'acme.enabler' }).publish([outcome(1)]);
    expect(sentCalls()[0]![0]!.Source).toBe('acme.enabler');
  });

  it('retries only the failed entries, matched by index, after a jittered backoff', async () => {
    // Three tasks fail on their first two sends, wherever they sit in a call.
    const flaky = new Set([taskId(2), taskId(7), taskId(13)]);
    const sends = new Map<string, number>();
    answerPerEntry((e) => {
      const id = taskIdOf(e);
      sends.set(id, (sends.get(id) ?? 0) + 1);
      return flaky.has(id) && sends.get(id)! <= 2 ? 'InternalFailure' : undefined;
    });
    const clock = recordingClock(0.5);
    await newSink(clock).publish(Array.from({ length: 15 }, (_, i) => outcome(i)));

    expect(sentCalls().map((c) => c.map(taskIdOf))).toEqual([
      Array.from({ length: 10 }, (_, i) => taskId(i)),
      Array.from({ length: 5 }, (_, i) => taskId(i + 10)),
      [taskId(2), taskId(7), taskId(13)], // attempt 2: only the failures, gathered in one call
      [taskId(2), taskId(7), taskId(13)], // attempt 3
    ]);
    // Full jitter with random() = 0.5: half of 100, then half of 200.
    expect(clock.sleeps).toEqual([50, 100]);
  });

  it('throws EventDeliveryFailed after maxAttempts, naming failed task ids and codes, not detail contents', async () => {
    answerPerEntry((e) => (taskIdOf(e) === taskId(1) ? 'InternalFailure' : taskIdOf(e) === taskId(2) ? 'ThrottlingException' : undefined));
    const clock = recordingClock(0.999);
    const secretish = 'approval-marker-7f3a';
    const e = await caught(
      newSink(clock).publish([0, 1, 2].map((i) => outcome(i, { approvalId: secretish, ticketIds: [`${secretish}-t`] }))),
    );
    expect(e).toMatchObject({ name: 'EventDeliveryFailed', retryable: true, attempts: 4 });
    expect(e.message).toContain('2 of 3 outcome events not delivered');
    expect(e.message).toContain('after 4 attempt(s)');
    expect(e.message).toContain(`InternalFailure x1 (${taskId(1)})`);
    expect(e.message).toContain(`ThrottlingException x1 (${taskId(2)})`);
    expect(e.message).not.toContain(taskId(0));
    expect(JSON.stringify(e)).not.toContain(secretish);
    expect(e.message).not.toContain(secretish);
    // The delivered one was sent once; the two failures four times each.
    const sent = sentCalls().flat().map(taskIdOf);
    expect(sent.filter((t) => t === taskId(0))).toHaveLength(1);
    expect(sent.filter((t) => t === taskId(1))).toHaveLength(4);
    // Three waits, capped by 100 * 2^(n-1).
    expect(clock.sleeps).toHaveLength(3);
    clock.sleeps.forEach((ms, i) => {
      expect(ms).toBeLessThan(100 * 2 ** i);
      expect(ms).toBeGreaterThan(0.99 * 100 * 2 ** i);
    });
  });

  it('caps the backoff at maxDelayMs and honours maxAttempts / baseDelayMs', async () => {
    answerPerEntry(() => 'InternalFailure');
    const clock = recordingClock(0.5);
    await caught(newSink(clock, { maxAttempts: 6, baseDelayMs: 1000, maxDelayMs: 3000 }).publish([outcome(1)]));
    expect(clock.sleeps).toEqual([500, 1000, 1500, 1500, 1500]);
    expect(sentCalls()).toHaveLength(6);
  });

  it('does not retry entries with a permanent error code, and says the failure is not retryable', async () => {
    answerPerEntry((e) => (taskIdOf(e) === taskId(1) ? 'InvalidArgument' : undefined));
    const clock = recordingClock();
    const e = await caught(newSink(clock).publish([outcome(0), outcome(1)]));
    expect(e).toMatchObject({ name: 'EventDeliveryFailed', retryable: false, code: 'InvalidArgument' });
    expect(sentCalls()).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('treats a missing result as failed when FailedEntryCount says so', async () => {
    let call = 0;
    eb.on(PutEventsCommand).callsFake(async (input: { Entries: PutEventsRequestEntry[] }) => {
      call += 1;
      if (call === 1) return { FailedEntryCount: 1, Entries: [{ EventId: 'a' }] };
      return { FailedEntryCount: 0, Entries: input.Entries.map((_, i) => ({ EventId: `b${i}` })) };
    });
    await newSink().publish([outcome(0), outcome(1)]);
    expect(sentCalls().map((c) => c.map(taskIdOf))).toEqual([[taskId(0), taskId(1)], [taskId(1)]]);
  });

  it('retries a whole-call throttling, 5xx or network error', async () => {
    eb.on(PutEventsCommand)
      .rejectsOnce(ebError('ThrottlingException', 400))
      .rejectsOnce(ebError('InternalException', 500))
      .rejectsOnce(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: '1' }, { EventId: '2' }] });
    const clock = recordingClock();
    await newSink(clock).publish([outcome(0), outcome(1)]);
    expect(sentCalls()).toHaveLength(4);
    expect(sentCalls()[3]!.map(taskIdOf)).toEqual([taskId(0), taskId(1)]);
    expect(clock.sleeps).toHaveLength(3);
  });

  it('gives up on a whole-call throttle after maxAttempts with a retryable error', async () => {
    eb.on(PutEventsCommand).rejects(ebError('ThrottlingException', 400));
    const e = await caught(newSink().publish([outcome(0)]));
    expect(e).toMatchObject({ name: 'EventDeliveryFailed', retryable: true, code: 'ThrottlingException', attempts: 4 });
    expect(e.cause).toBeInstanceOf(EventBridgeServiceException);
    expect(sentCalls()).toHaveLength(4);
  });

  it('does not retry a permanent whole-call error (missing bus, access denied)', async () => {
    eb.on(PutEventsCommand).rejects(ebError('ResourceNotFoundException', 400));
    const e = await caught(newSink().publish([outcome(0), outcome(1)]));
    expect(e).toMatchObject({ name: 'EventDeliveryFailed', retryable: false, code: 'ResourceNotFoundException' });
    expect(e.message).toContain(`ResourceNotFoundException x2 (${taskId(0)}, ${taskId(1)})`);
    expect(sentCalls()).toHaveLength(1);
  });

  describe('entry size', () => {
    it('shortens a too-long error message so the entry fits, keeping its start', async () => {
      answerPerEntry(() => undefined);
      const long = `COC said: ${'x'.repeat(300 * 1024)}`;
      await newSink().publish([failedOutcome(1, long), outcome(2)]);
      const [entry, other] = sentCalls().flat();
      expect(entrySizeBytes(entry!)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
      expect(entrySizeBytes(entry!)).toBeGreaterThan(MAX_ENTRY_BYTES - 8); // the longest prefix that fits
      const detail = JSON.parse(entry!.Detail!) as Outcome;
      expect(detail.error!.message.startsWith('COC said: xxx')).toBe(true);
      expect(detail.error!.message.endsWith(TRUNCATION_MARK)).toBe(true);
      expect({ ...detail, error: { ...detail.error, message: '' } }).toEqual({
        ...failedOutcome(1),
        error: { ...failedOutcome(1).error, message: '' },
      });
      expect(taskIdOf(other)).toBe(taskId(2));
      // Two entries near 256 KB + a small one: the big one goes alone, under the per-call limit.
      expect(sentCalls().map((c) => c.length)).toEqual([1, 1]);
    });

    it('accepts an entry of exactly the limit and shortens one byte more', async () => {
      answerPerEntry(() => undefined);
      const limit = 2000;
      const probe = failedOutcome(1, '');
      const sizeWith = (msg: string) =>
        entrySizeBytes({ Source: 'coc.task-enabler', DetailType: DETAIL_TYPE_FAILED, Detail: JSON.stringify({ ...probe, error: { ...probe.error!, message: msg } }), Time: new Date() });
      const exact = 'm'.repeat(limit - sizeWith(''));
      expect(sizeWith(exact)).toBe(limit);
      const sink = newSink(recordingClock(), { maxEntryBytes: limit });
      await sink.publish([failedOutcome(1, exact)]);
      await sink.publish([failedOutcome(2, `${exact}m`)]);
      const [a, b] = sentCalls().flat().map((e) => (JSON.parse(e.Detail!) as Outcome).error!.message);
      expect(a).toBe(exact);
      // The longest prefix that fits with the mark: exactly the limit again.
      expect(b).toBe('m'.repeat(exact.length - TRUNCATION_MARK.length) + TRUNCATION_MARK);
    });

    it('never produces an entry over the limit nor splits a character (property)', async () => {
      answerPerEntry(() => undefined);
      const limit = 1500;
      const sink = newSink(recordingClock(), { maxEntryBytes: limit });
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'grapheme', minLength: 0, maxLength: 1500 }), async (message) => {
          eb.resetHistory();
          await sink.publish([failedOutcome(1, message)]);
          const entry = sentCalls().flat()[0]!;
          expect(entrySizeBytes(entry)).toBeLessThanOrEqual(limit);
          const sent = (JSON.parse(entry.Detail!) as Outcome).error!.message;
          if (sent !== message) {
            expect(sent.endsWith(TRUNCATION_MARK)).toBe(true);
            const kept = sent.slice(0, -TRUNCATION_MARK.length);
            expect(message.startsWith(kept)).toBe(true);
            expect(kept).not.toMatch(/[\ud800-\udbff]$/); // no dangling high surrogate
          }
        }),
        { numRuns: 60 },
      );
    });

    it('throws EventDeliveryFailed naming the task when the entry cannot fit, after sending the others', async () => {
      answerPerEntry(() => undefined);
      const huge = outcome(9, { ticketIds: Array.from({ length: 1200 }, (_, i) => `TICKET-${i}-${'t'.repeat(240)}`) });
      const e = await caught(newSink().publish([outcome(1), huge, outcome(2)]));
      expect(e).toMatchObject({ name: 'EventDeliveryFailed', retryable: false, code: 'EntryTooLarge' });
      expect(e.message).toContain(`EntryTooLarge x1 (${taskId(9)})`);
      expect(e.message).toContain('1 of 3');
      expect(e.message).not.toContain('TICKET-');
      expect(sentCalls().flat().map(taskIdOf)).toEqual([taskId(1), taskId(2)]);
    });

    it('packs calls by total size as well as by count', async () => {
      answerPerEntry(() => undefined);
      const limit = 3000;
      // Each entry ~1 KB: at most 2 fit in one 3000-byte call.
      const outcomes = Array.from({ length: 5 }, (_, i) => failedOutcome(i, 'e'.repeat(800)));
      await newSink(recordingClock(), { maxEntryBytes: limit }).publish(outcomes);
      const calls = sentCalls();
      expect(calls.map((c) => c.length)).toEqual([2, 2, 1]);
      for (const c of calls) expect(c.reduce((n, e) => n + entrySizeBytes(e), 0)).toBeLessThanOrEqual(limit);
    });
  });
});

describe('against the loopback EventBridge fake (real SDK client)', () => {
  let fake: EventBridgeFake;
  const client = (maxAttempts = 1) =>
    new EventBridgeClient({
      endpoint: fake.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts,
    });
  const sink = (clock = recordingClock(), sdkAttempts = 1, extra: Partial<EventBridgeSinkOptions> = {}) =>
    new EventBridgeSink({ client: client(sdkAttempts), eventBusName: BUS, clock, ...extra });
  const many = (n: number) => Array.from({ length: n }, (_, i) => (i % 3 === 0 ? failedOutcome(i) : outcome(i)));

  beforeAll(async () => {
    fake = await startEventBridgeFake();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('delivers 25 outcomes in 3 calls; entries round-trip through the wire', async () => {
    const outcomes = many(25);
    await sink().publish(outcomes);
    expect(fake.calls()).toBe(3);
    const entries = fake.entries();
    expect(entries.map(taskIdOf)).toEqual(outcomes.map((o) => o.taskId));
    entries.forEach((e, i) => {
      expect(e).toMatchObject({ EventBusName: BUS, Source: 'coc.task-enabler', Resources: [] });
      expect(e.Time?.toISOString()).toBe(outcomes[i]!.time);
      expect(JSON.parse(e.Detail!)).toEqual(outcomes[i]);
    });
  });

  it('the fake is strict: more than 10 entries in one call is a ValidationException', async () => {
    const Entries = Array.from({ length: 11 }, () => ({ Source: 's', DetailType: 'd', Detail: '{}' }));
    await expect(client().send(new PutEventsCommand({ Entries }))).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('retries failed entries until every outcome is accepted exactly once', async () => {
    fake.failEntries(3);
    const clock = recordingClock();
    await sink(clock).publish(many(25));
    expect(fake.calls()).toBe(4);
    const ids = fake.entries().map(taskIdOf);
    expect(ids).toHaveLength(25);
    expect(new Set(ids).size).toBe(25);
    expect(clock.sleeps).toHaveLength(1);
  });

  it('retries whole-call throttling itself when the SDK does not', async () => {
    fake.throttleNext(2);
    await sink().publish(many(12));
    expect(fake.calls()).toBe(2 + 2);
    expect(fake.entries()).toHaveLength(12);
  });

  it('retries 500 InternalException and a dropped connection', async () => {
    fake.failNext(1, 'InternalException');
    fake.dropNext(1);
    await sink().publish(many(3));
    expect(fake.calls()).toBe(3);
    expect(fake.entries()).toHaveLength(3);
  });

  it('fails with a retryable EventDeliveryFailed when the throttling outlasts maxAttempts', async () => {
    fake.throttleNext(100);
    const e = await caught(sink().publish(many(2)));
    expect(e).toMatchObject({ name: 'EventDeliveryFailed', retryable: true, code: 'ThrottlingException', attempts: 4 });
    expect(e.message).toContain(`ThrottlingException x2 (${taskId(0)}, ${taskId(1)})`);
    expect(fake.calls()).toBe(4);
  });

  it('reports entries the service rejects (MalformedDetail) without retrying them', async () => {
    fake.failEntries(1, 'MalformedDetail');
    const e = await caught(sink().publish(many(2)));
    expect(e).toMatchObject({ retryable: false, code: 'MalformedDetail' });
    expect(fake.entries().map(taskIdOf)).toEqual([taskId(1)]);
    expect(fake.calls()).toBe(1);
  });

  it("the SDK's own retry strategy recovers from a single throttle", async () => {
    fake.throttleNext(1);
    await sink(recordingClock(), 2, { maxAttempts: 1 }).publish(many(2));
    expect(fake.calls()).toBe(2);
    expect(fake.entries()).toHaveLength(2);
  });

  it('an entry near the size limit passes the real service-side check', async () => {
    await sink().publish([failedOutcome(1, 'y'.repeat(400 * 1024)), ...many(3)]);
    expect(fake.entries()).toHaveLength(4);
  });
});

describe('schema/outcome-event.schema.json', () => {
  const schema = JSON.parse(readFileSync(new URL('../schema/outcome-event.schema.json', import.meta.url), 'utf8')) as {
    properties: Record<string, { enum?: string[]; properties?: Record<string, { enum?: string[] }> }>;
    required: string[];
  };
  // Formats are not validated (ajv-formats is not a dependency); `time` is checked by hand below.
  const validate = new Ajv2020({ strict: true, strictRequired: false, allErrors: true, validateFormats: false }).compile(schema);
  const valid = (detail: unknown) => {
    const ok = validate(detail);
    return ok ? 'valid' : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ');
  };

  // Compile-time exhaustive lists: adding a Trigger, OutcomeKind or ErrorName without updating the schema fails here.
  const TRIGGERS: Record<Trigger, true> = { webhook: true, eventbridge: true, schedule: true, stepfunctions: true, cli: true };
  const KINDS: Record<OutcomeKind, true> = { enabled: true, already_enabled: true, failed: true, would_enable: true };
  const NAMES: Record<ErrorName, true> = {
    InvalidApproval: true,
    TaskNotFound: true,
    TaskNotOwned: true,
    TicketRejected: true,
    CocAuthFailed: true,
    CocThrottled: true,
    CocUnavailable: true,
    CocRejected: true,
    CredentialsUnavailable: true,
    EventDeliveryFailed: true,
    InvalidConfiguration: true,
  };

  it('enumerates exactly the domain types', () => {
    expect(schema.properties.trigger!.enum!.slice().sort()).toEqual(Object.keys(TRIGGERS).sort());
    expect(schema.properties.outcome!.enum!.slice().sort()).toEqual(Object.keys(KINDS).sort());
    expect(schema.properties.error!.properties!.name!.enum!.slice().sort()).toEqual(Object.keys(NAMES).sort());
  });

  it('accepts real outcomes, including every optional field', () => {
    expect(valid(outcome(1))).toBe('valid');
    expect(valid(failedOutcome(2))).toBe('valid');
    expect(valid(outcome(3, { outcome: 'already_enabled', ticketIds: [], cocRequestId: undefined }))).toBe('valid');
    expect(valid(outcome(4, { outcome: 'would_enable', dryRun: true, attempts: 0, durationMs: 0.5 }))).toBe('valid');
    expect(valid(outcome(5, { verified: true, trigger: 'stepfunctions' }))).toBe('valid');
    expect(valid(JSON.parse(JSON.stringify(failedOutcome(6, 'x'.repeat(10)))))).toBe('valid');
  });

  it('accepts what actually went on the wire', async () => {
    const fake = await startEventBridgeFake();
    try {
      const client = new EventBridgeClient({ endpoint: fake.url, region: 'us-east-1', credentials: { accessKeyId: 't', secretAccessKey: 't' } });
      await new EventBridgeSink({ client, eventBusName: BUS, clock: recordingClock() }).publish([outcome(1), failedOutcome(2, 'z'.repeat(300_000))]);
      const details = fake.entries().map((e) => JSON.parse(e.Detail!) as Outcome);
      expect(details).toHaveLength(2);
      for (const d of details) {
        expect(valid(d)).toBe('valid');
        expect(new Date(d.time).toISOString()).toBe(d.time);
      }
    } finally {
      await fake.close();
    }
  });

  const invalid: [string, unknown][] = [
    ['a failed outcome without error', { ...failedOutcome(1), error: undefined }],
    ['an enabled outcome with an error', { ...outcome(1), error: failedOutcome(1).error }],
    ['an unknown outcome', { ...outcome(1), outcome: 'maybe' }],
    ['an unknown trigger', { ...outcome(1), trigger: 'email' }],
    ['an unknown error name', { ...failedOutcome(1), error: { ...failedOutcome(1).error, name: 'Oops' } }],
    ['an error without retryable', { ...failedOutcome(1), error: { name: 'TaskNotFound', message: 'm' } }],
    ['negative attempts', { ...outcome(1), attempts: -1 }],
    ['fractional attempts', { ...outcome(1), attempts: 1.5 }],
    ['ticket ids that are not strings', { ...outcome(1), ticketIds: [1] }],
    ['an unknown property', { ...outcome(1), extra: true }],
  ];
  for (const [what, detail] of invalid) {
    it(`rejects ${what}`, () => {
      expect(valid(JSON.parse(JSON.stringify(detail)))).not.toBe('valid');
    });
  }

  it('rejects each missing required property', () => {
    expect(schema.required.slice().sort()).toEqual(
      ['taskId', 'approvalId', 'trigger', 'outcome', 'ticketIds', 'attempts', 'durationMs', 'idempotencyKey', 'time'].sort(),
    );
    for (const key of schema.required) {
      const o: Record<string, unknown> = { ...outcome(1) };
      delete o[key];
      expect(valid(o), key).toContain(`must have required property '${key}'`);
    }
  });
});
