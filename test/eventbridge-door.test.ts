/**
 * The EventBridge door end to end against the COC simulator: rule deliveries whose detail
 * is an approval, EventBridge Scheduler input, and a schedule rule without input. Permanent
 * failures return (failure outcomes published); transient ones throw with a catalogue name.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from 'aws-lambda';
import { handler, type EventBridgeResult } from '../functions/eventbridge';
import { loadConfig } from '../lib/config';
import type { Credentials } from '../lib/credentials';
import type { Outcome } from '../lib/domain';
import { EnablerError } from '../lib/errors';
import { jsonLogger } from '../lib/log';
import { createRuntime, resetRuntime } from '../lib/runtime';
import { MemorySink, type OutcomeSink } from '../lib/sink';
import { idempotencyKey, RetryableFailure } from '../lib/workflow';
import { localContext } from '../scripts/cli';
import approvalSample from '../events/eventbridge-approval.json';
import scheduleSample from '../events/schedule.json';
import { registerSecret } from './support/leak-capture';
import { useSimulator } from './support/simulator-fixture';

const CREDS: Credentials = { ak: 'AKEVENTBRIDGEDOOR001', sk: 'sk-eventbridge-door-test-secret' };
const SECRETS = [CREDS.ak, CREDS.sk];
registerSecret({ ak: CREDS.ak, sk: CREDS.sk });

const ENABLE = 'ST0000000000000000DEMO0001';
const ALREADY = 'ST0000000000000000DEMO0002';
const MISSING = 'ST0000000000000000DEMO0404';
const FOREIGN = 'ST0000000000000000DEMO0121';

type Json = Record<string, unknown>;

/** What a schedule rule WITHOUT input delivers. */
const SCHEDULED_EVENT = {
  version: '0',
  id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2026-12-04T12:00:00Z',
  region: 'eu-west-1',
  resources: ['arn:aws:events:eu-west-1:123456789012:rule/enable-nightly-tasks'],
  detail: {},
};

let sink: MemorySink;
let credentialFetches: number;
let logLines: string[];
let results: string[];
let context: Context;

function setup(overrides: { sink?: OutcomeSink } = {}) {
  sink = new MemorySink();
  const count = async () => {
    credentialFetches += 1;
    return CREDS;
  };
  const config = loadConfig({ COC_ENDPOINT: sim().url, COC_MAX_ATTEMPTS: '2', COC_RETRY_BASE_DELAY_MS: '1', COC_RETRY_MAX_DELAY_MS: '1' });
  resetRuntime(
    createRuntime(config, {
      credentials: { get: count, refresh: count },
      sink: overrides.sink ?? sink,
      log: jsonLogger('debug', (line) => logLines.push(line)),
    }),
  );
}

async function invoke(event: unknown): Promise<EventBridgeResult> {
  const result = await handler(structuredClone(event), context);
  results.push(JSON.stringify(result));
  return result;
}

async function thrown(event: unknown): Promise<unknown> {
  return handler(structuredClone(event), context).then(
    (r) => {
      throw new Error(`expected the handler to throw, it returned ${JSON.stringify(r)}`);
    },
    (e: unknown) => {
      results.push(JSON.stringify({ name: (e as Error).name, message: (e as Error).message }));
      return e;
    },
  );
}

const outcomesOf = (r: EventBridgeResult): Outcome[] => {
  if (!('outcomes' in r)) throw new Error(`expected outcomes, got ${JSON.stringify(r)}`);
  return r.outcomes;
};

const rule = (detail: Json, extra: Json = {}) => ({ ...structuredClone(approvalSample), detail, ...extra });

const sim = useSimulator(CREDS, { [ENABLE]: { enabled: false }, [ALREADY]: { enabled: true }, [FOREIGN]: { owner: 'other' } });

beforeEach(() => {
  credentialFetches = 0;
  logLines = [];
  results = [];
  context = localContext('eventbridge');
  setup();
});

afterEach(() => {
  for (const text of [...results, ...logLines]) for (const secret of SECRETS) expect(text).not.toContain(secret);
});

describe('EventBridge door: rule deliveries', () => {
  it('enables the tasks of an approval in the event detail, the event id being the delivery id', async () => {
    const result = await invoke(approvalSample);
    expect(result).toMatchObject({ approvalId: 'CHG-2026-1204-005' });
    const outcomes = outcomesOf(result);
    expect(outcomes.map((o) => [o.taskId, o.outcome, o.trigger])).toEqual([
      [ENABLE, 'enabled', 'eventbridge'],
      [ALREADY, 'already_enabled', 'eventbridge'],
    ]);
    expect(outcomes[0]!.ticketIds).toEqual(['CM202612040005']);
    expect(outcomes[0]!.idempotencyKey).toBe(idempotencyKey('CHG-2026-1204-005', ENABLE, approvalSample.id));
    expect(sim().task(ENABLE)).toMatchObject({ enabled: true, enableCount: 1 });
    expect(sink.outcomes).toEqual(outcomes);
  });

  it('ignores a decision other than APPROVED without calling COC', async () => {
    const result = await invoke(rule({ ...approvalSample.detail, decision: 'Rejected' }));
    expect(result).toEqual({ status: 'ignored', decision: 'REJECTED', approvalId: 'CHG-2026-1204-005' });
    expect(sim().requests()).toHaveLength(0);
    expect(sink.outcomes).toEqual([]);
  });

  it('returns (does not throw) for an invalid detail, publishing one failure outcome per readable task, with no COC call', async () => {
    const detail = { ...approvalSample.detail, ticket_infos: [{ ticket_id: 'CM1', ticket_type: 'OUTAGE' }] };
    const result = await invoke(rule(detail));
    expect(result).toMatchObject({ approvalId: 'CHG-2026-1204-005', error: { name: 'InvalidApproval', field: 'ticket_infos[0].ticket_type' } });
    expect(outcomesOf(result).map((o) => [o.taskId, o.outcome, o.error?.name, o.trigger])).toEqual([
      [ENABLE, 'failed', 'InvalidApproval', 'eventbridge'],
      [ALREADY, 'failed', 'InvalidApproval', 'eventbridge'],
    ]);
    expect(sink.outcomes).toEqual(outcomesOf(result));
    expect(sim().requests()).toHaveLength(0);
    expect(credentialFetches).toBe(0);
  });

  it('returns for a detail that is not an approval at all', async () => {
    const result = await invoke(rule('approved' as unknown as Json));
    expect(result).toMatchObject({ approvalId: 'unknown', outcomes: [], error: { name: 'InvalidApproval', field: '$' } });
    expect(sim().requests()).toHaveLength(0);
  });

  it('returns with the failed outcome on a permanent COC failure', async () => {
    const result = await invoke(rule({ ...approvalSample.detail, task_ids: [ENABLE, MISSING, FOREIGN] }));
    expect(outcomesOf(result).map((o) => [o.taskId, o.outcome, o.error?.name])).toEqual([
      [ENABLE, 'enabled', undefined],
      [MISSING, 'failed', 'TaskNotFound'],
      [FOREIGN, 'failed', 'TaskNotOwned'],
    ]);
    expect(sink.outcomes).toHaveLength(3);
  });

  it('throws a retryable error named from the catalogue on a transient COC failure, after publishing the others', async () => {
    sim().injectFault({ fault: { kind: 'status', status: 503 }, taskId: ALREADY, times: Infinity });
    const error = await thrown(approvalSample);
    expect(error).toBeInstanceOf(RetryableFailure);
    expect(error).toMatchObject({ name: 'CocUnavailable', retryable: true });
    expect(sink.outcomes.map((o) => [o.taskId, o.outcome])).toEqual([[ENABLE, 'enabled']]);
  });

  it('throws CocThrottled when COC keeps throttling', async () => {
    sim().injectFault({ fault: { kind: 'status', status: 429, retryAfterSeconds: 0 }, times: Infinity });
    const error = await thrown(rule({ ...approvalSample.detail, task_ids: [ENABLE] }));
    expect(error).toMatchObject({ name: 'CocThrottled', retryable: true });
    expect(sink.outcomes).toEqual([]);
  });

  it('throws EventDeliveryFailed when the outcome events cannot be put', async () => {
    setup({
      sink: {
        publish: async () => {
          throw new EnablerError('EventDeliveryFailed', 'EventBridge unavailable');
        },
      },
    });
    expect(await thrown(approvalSample)).toMatchObject({ name: 'EventDeliveryFailed', retryable: true });
  });
});

describe('EventBridge door: schedules', () => {
  it('enables the tasks named by the schedule input', async () => {
    const result = await invoke(scheduleSample);
    const outcomes = outcomesOf(result);
    expect(result).toMatchObject({ approvalId: 'CHG-2026-1204-006' });
    expect(outcomes.map((o) => [o.taskId, o.outcome, o.trigger])).toEqual([
      [ENABLE, 'enabled', 'schedule'],
      [ALREADY, 'already_enabled', 'schedule'],
    ]);
    expect(outcomes[0]!.idempotencyKey).toBe(idempotencyKey('CHG-2026-1204-006', ENABLE, context.awsRequestId));
    expect(sim().task(ENABLE)?.enabled).toBe(true);
  });

  it('gives each scheduled run its own idempotency keys, but keeps them across retries of one run', async () => {
    const first = outcomesOf(await invoke(scheduleSample));
    const retry = outcomesOf(await invoke(scheduleSample));
    context = localContext('eventbridge');
    const nextRun = outcomesOf(await invoke(scheduleSample));
    expect(retry[0]!.idempotencyKey).toBe(first[0]!.idempotencyKey);
    expect(nextRun[0]!.idempotencyKey).not.toBe(first[0]!.idempotencyKey);
  });

  it('accepts a single task_id and names the approval after the schedule when none is given', async () => {
    const result = await invoke({ task_id: ENABLE });
    expect(result).toMatchObject({ approvalId: `schedule:${ENABLE}` });
    expect(outcomesOf(result)[0]).toMatchObject({ taskId: ENABLE, outcome: 'enabled', trigger: 'schedule' });
  });

  it('refuses a schedule rule without input ("Scheduled Event"): returns with a clear error, no COC call', async () => {
    const result = await invoke(SCHEDULED_EVENT);
    expect(result).toMatchObject({ outcomes: [], error: { name: 'InvalidApproval', retryable: false } });
    expect((result as unknown as { error: { message: string } }).error.message).toContain("configure the schedule's input");
    expect(sim().requests()).toHaveLength(0);
    expect(credentialFetches).toBe(0);
    const logged = logLines.map((l) => JSON.parse(l) as Json).find((l) => l.level === 'ERROR');
    expect(JSON.stringify(logged)).toContain("configure the schedule's input");
  });

  it('returns with failure outcomes for an invalid schedule input, with no COC call', async () => {
    const result = await invoke({ ...scheduleSample, task_ids: [ENABLE, 'ST-too-short'] });
    expect(result).toMatchObject({ approvalId: 'CHG-2026-1204-006', error: { name: 'InvalidApproval', field: 'task_ids[1]' } });
    expect(outcomesOf(result).map((o) => [o.taskId, o.outcome, o.trigger])).toEqual([
      [ENABLE, 'failed', 'schedule'],
      ['ST-too-short', 'failed', 'schedule'],
    ]);
    expect(sim().requests()).toHaveLength(0);
  });

  it('throws on a transient failure of a scheduled run', async () => {
    sim().injectFault({ fault: { kind: 'reset' }, times: Infinity });
    expect(await thrown({ task_id: ENABLE })).toMatchObject({ name: 'CocUnavailable', retryable: true });
  });
});
