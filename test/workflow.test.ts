import { describe, expect, it } from 'vitest';
import type { CallOptions, CocOperations, EnableResult, TaskState } from '../lib/coc/client';
import type { EnableRequest, TicketInfo } from '../lib/domain';
import { EnablerError, InvalidApproval } from '../lib/errors';
import { MemorySink, type OutcomeSink } from '../lib/sink';
import { idempotencyKey, mapBounded, RetryableFailure, Workflow, type Policy } from '../lib/workflow';
import { FakeClock } from './support/fake-clock';

const id = (n: number) => `ST${String(n).padStart(24, '0')}`;

/** A COC stand-in keyed by task id: enabled / already / an error to throw. */
class FakeCoc implements CocOperations {
  readonly enabled = new Set<string>();
  readonly calls: { op: string; taskId: string; tickets?: TicketInfo[]; opts?: CallOptions }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly failures: Record<string, EnablerError> = {}) {}
  async enableScheduledTask(taskId: string, tickets: TicketInfo[], opts?: CallOptions): Promise<EnableResult> {
    this.calls.push({ op: 'enable', taskId, tickets, opts });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    const failure = this.failures[taskId];
    if (failure) throw failure;
    const outcome = this.enabled.has(taskId) ? 'already_enabled' : 'enabled';
    this.enabled.add(taskId);
    return { outcome, requestId: `req-${taskId}`, attempts: 1 };
  }
  async showScheduledTask(taskId: string): Promise<TaskState> {
    this.calls.push({ op: 'show', taskId });
    const failure = this.failures[taskId];
    if (failure) throw failure;
    return { taskId, enabled: this.enabled.has(taskId), attempts: 1 };
  }
}

const request = (taskIds: string[], extra: Partial<EnableRequest> = {}): EnableRequest => ({
  approvalId: 'CHG-1',
  taskIds,
  ticketInfos: [{ ticket_id: 'CM1', ticket_type: 'CHANGE' }],
  trigger: 'stepfunctions',
  ...extra,
});

function setup(coc = new FakeCoc(), policy: Partial<Policy> = {}, sink: OutcomeSink = new MemorySink()) {
  const clock = new FakeClock();
  return { coc, sink: sink as MemorySink, clock, workflow: new Workflow({ coc, sink, clock, policy }) };
}

describe('Workflow.enable', () => {
  it('produces and publishes exactly one outcome per task, in request order', async () => {
    const coc = new FakeCoc({ [id(3)]: new EnablerError('TaskNotFound', 'gone', { code: 'COC.00014102', attempts: 1 }) });
    coc.enabled.add(id(2));
    const { workflow, sink } = setup(coc);
    const outcomes = await workflow.enable(request([id(1), id(2), id(3)]));
    expect(outcomes.map((o) => [o.taskId, o.outcome, o.error?.name])).toEqual([
      [id(1), 'enabled', undefined],
      [id(2), 'already_enabled', undefined],
      [id(3), 'failed', 'TaskNotFound'],
    ]);
    expect(sink.outcomes).toEqual(outcomes);
    expect(outcomes[0]).toMatchObject({ approvalId: 'CHG-1', trigger: 'stepfunctions', ticketIds: ['CM1'], cocRequestId: `req-${id(1)}`, attempts: 1 });
    expect(outcomes[2]!.error).toEqual({ name: 'TaskNotFound', code: 'COC.00014102', message: 'gone', retryable: false });
  });

  it('passes the tickets and the deadline to COC', async () => {
    const { workflow, coc } = setup();
    await workflow.enable(request([id(1)]), { deadline: 12345 });
    expect(coc.calls[0]).toMatchObject({ tickets: [{ ticket_id: 'CM1', ticket_type: 'CHANGE' }], opts: { deadline: 12345 } });
  });

  it('bounds concurrency', async () => {
    const { workflow, coc } = setup(new FakeCoc(), { concurrency: 3 });
    const outcomes = await workflow.enable(request(Array.from({ length: 20 }, (_, i) => id(i))));
    expect(outcomes).toHaveLength(20);
    expect(coc.maxInFlight).toBe(3);
  });

  it('holds back transient failures: publishes the rest, then throws a retryable error named from the catalogue', async () => {
    const coc = new FakeCoc({ [id(2)]: new EnablerError('CocThrottled', 'slow down', { code: 'APIGW.0308', attempts: 4 }) });
    const { workflow, sink } = setup(coc);
    const error = await workflow.enable(request([id(1), id(2)])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableFailure);
    expect(error).toMatchObject({ name: 'CocThrottled', retryable: true });
    expect((error as RetryableFailure).failures.map((f) => f.taskId)).toEqual([id(2)]);
    expect(sink.outcomes.map((o) => o.taskId)).toEqual([id(1)]);
  });

  it('a retry after a transient failure reports finished tasks under the same idempotency key', async () => {
    const coc = new FakeCoc();
    const { workflow, sink } = setup(coc);
    await workflow.enable(request([id(1)], { deliveryId: 'msg_1' }));
    await workflow.enable(request([id(1)], { deliveryId: 'msg_1' }));
    expect(sink.outcomes.map((o) => o.outcome)).toEqual(['enabled', 'already_enabled']);
    expect(sink.outcomes[0]!.idempotencyKey).toBe(sink.outcomes[1]!.idempotencyKey);
    expect(sink.outcomes[0]!.idempotencyKey).toBe(idempotencyKey('CHG-1', id(1), 'msg_1'));
    expect(idempotencyKey('CHG-1', id(1), 'msg_2')).not.toBe(idempotencyKey('CHG-1', id(1), 'msg_1'));
  });

  it('refuses tasks outside the allow-list without calling COC', async () => {
    const { workflow, coc, sink } = setup(new FakeCoc(), { taskAllowList: [id(1), 'ST00000000000000000000009*'] });
    expect((await workflow.enable(request([id(1), id(90)]))).every((o) => o.outcome !== 'failed')).toBe(true);
    const refused = await workflow.enable(request([id(1), id(2)])).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidApproval);
    const outcomes = (refused as InvalidApproval).outcomes!;
    expect(outcomes.map((o) => o.error?.name)).toEqual(['InvalidApproval', 'InvalidApproval']);
    expect(outcomes[0]!.error?.message).toContain(id(2));
    expect(coc.calls.map((c) => c.taskId)).toEqual([id(1), id(90)]);
    expect(sink.outcomes).toHaveLength(4);
  });

  it('refuses a stale approval at execution time', async () => {
    const { workflow, coc, clock } = setup(new FakeCoc(), { maxApprovalAgeMs: 3600_000 });
    const decidedAt = new Date(clock.now() - 3601_000).toISOString();
    const refused = await workflow.enable(request([id(1)], { decidedAt })).catch((e: unknown) => e);
    expect(refused).toMatchObject({ name: 'InvalidApproval', code: 'Stale' });
    const [o] = (refused as InvalidApproval).outcomes!;
    expect(o).toMatchObject({ outcome: 'failed', error: { name: 'InvalidApproval', code: 'Stale' } });
    expect(coc.calls).toHaveLength(0);
    const fresh = new Date(clock.now() - 3599_000).toISOString();
    expect((await workflow.enable(request([id(1)], { decidedAt: fresh })))[0]!.outcome).toBe('enabled');
  });

  it('dry run reports what would happen using ShowScheduledTask only', async () => {
    const coc = new FakeCoc();
    coc.enabled.add(id(2));
    const { workflow } = setup(coc, { dryRun: true });
    const outcomes = await workflow.enable(request([id(1), id(2)]));
    expect(outcomes.map((o) => [o.outcome, o.dryRun])).toEqual([
      ['would_enable', true],
      ['already_enabled', true],
    ]);
    expect(coc.calls.every((c) => c.op === 'show')).toBe(true);
  });

  it('reads the task back after enabling when configured', async () => {
    const { workflow, coc } = setup(new FakeCoc(), { verifyAfterEnable: true });
    const [o] = await workflow.enable(request([id(1)]));
    expect(o).toMatchObject({ outcome: 'enabled', verified: true });
    expect(coc.calls.map((c) => c.op)).toEqual(['enable', 'show']);
  });

  it('publishes a large approval in chunks of at most 10 while tasks are still running, each outcome once', async () => {
    const chunks: string[][] = [];
    const callsAtFirstPublish: number[] = [];
    const coc = new FakeCoc();
    const sink: OutcomeSink = {
      publish: async (o) => {
        callsAtFirstPublish.push(coc.calls.length);
        chunks.push(o.map((x) => x.taskId));
      },
    };
    const { workflow } = setup(coc, { concurrency: 4 }, sink);
    const ids = Array.from({ length: 25 }, (_, i) => id(i));
    await workflow.enable(request(ids));
    expect(chunks.every((c) => c.length <= 10)).toBe(true);
    expect(chunks.flat().sort()).toEqual([...ids].sort());
    // The first chunk went out before the last task was enabled.
    expect(chunks[0]).toHaveLength(10);
    expect(callsAtFirstPublish[0]).toBeLessThan(25);
  });

  it('fails the invocation when any chunk cannot be delivered, after the others were tried', async () => {
    let calls = 0;
    const sink: OutcomeSink = {
      publish: async () => {
        calls++;
        if (calls === 2) throw new EnablerError('EventDeliveryFailed', 'bus down');
      },
    };
    const { workflow } = setup(new FakeCoc(), { concurrency: 2 }, sink);
    await expect(workflow.enable(request(Array.from({ length: 25 }, (_, i) => id(i))))).rejects.toMatchObject({ name: 'EventDeliveryFailed' });
    expect(calls).toBe(3);
  });

  it('fails the invocation when outcomes cannot be delivered', async () => {
    const failing: OutcomeSink = {
      publish: async () => {
        throw new EnablerError('EventDeliveryFailed', 'bus down');
      },
    };
    const { workflow } = setup(new FakeCoc(), {}, failing);
    await expect(workflow.enable(request([id(1)]))).rejects.toMatchObject({ name: 'EventDeliveryFailed' });
  });
});

describe('Workflow.reject', () => {
  it('publishes one InvalidApproval outcome per readable task id, with no COC call', async () => {
    const { workflow, coc, sink } = setup();
    const error = new InvalidApproval('ticket_infos must be an array', { field: 'ticket_infos', taskIds: [id(1), 'bad'] });
    const outcomes = await workflow.reject(error, { trigger: 'webhook', taskIds: error.taskIds, approvalId: 'CHG-2' });
    expect(outcomes.map((o) => [o.taskId, o.outcome, o.error?.name])).toEqual([
      [id(1), 'failed', 'InvalidApproval'],
      ['bad', 'failed', 'InvalidApproval'],
    ]);
    expect(sink.outcomes).toHaveLength(2);
    expect(coc.calls).toHaveLength(0);
  });
});

describe('mapBounded', () => {
  it('keeps order and handles fewer items than the limit', async () => {
    expect(await mapBounded([3, 1, 2], 8, async (n) => n * 2)).toEqual([6, 2, 4]);
    expect(await mapBounded([], 4, async (n) => n)).toEqual([]);
  });
});
