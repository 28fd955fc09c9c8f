/**
 * The enable workflow, shared by every door: guard rails, then for each task (bounded
 * concurrency) call COC and decide exactly one outcome, then publish the outcomes.
 *
 * A task whose failure is retryable (throttling, COC or Secrets Manager unavailable) gets
 * no outcome event: the workflow publishes the others and throws, handing the approval
 * back to the trigger's retry and dead-letter queue. A retry re-reports finished tasks as
 * already_enabled under the same idempotency key, which consumers drop as duplicates.
 */
import { createHash } from 'node:crypto';
import { systemClock, type Clock } from './clock';
import type { CocOperations } from './coc/client';
import type { EnableRequest, Outcome, OutcomeKind, Trigger } from './domain';
import { asEnablerError, EnablerError, InvalidApproval } from './errors';
import { silentLogger, type Logger } from './log';
import type { OutcomeSink } from './sink';

export interface Policy {
  concurrency: number;
  /** Task ids, or prefixes ending in `*`; empty allows any. */
  taskAllowList: string[];
  /** 0 = no limit. */
  maxApprovalAgeMs: number;
  dryRun: boolean;
  verifyAfterEnable: boolean;
}

export const DEFAULT_POLICY: Policy = {
  concurrency: 8,
  taskAllowList: [],
  maxApprovalAgeMs: 0,
  dryRun: false,
  verifyAfterEnable: false,
};

export interface WorkflowDeps {
  coc: CocOperations;
  sink: OutcomeSink;
  policy?: Partial<Policy>;
  clock?: Clock;
  log?: Logger;
  /** Called with each batch of outcomes once published: metrics. */
  onPublished?: (outcomes: Outcome[]) => void;
}

export interface EnableOptions {
  /** Epoch ms by which COC calls must end (Lambda: remaining time minus a margin). */
  deadline?: number;
}

/** Thrown when some tasks hit transient failures: the others' outcomes are already published. */
export class RetryableFailure extends EnablerError {
  /** `failures`: the held-back outcomes, at least one; the first names the error. */
  constructor(readonly failures: Outcome[]) {
    const first = failures[0]!.error!;
    super(
      first.name as EnablerError['name'],
      `${failures.length} task(s) hit a transient failure and are handed back for retry: ${failures.map((f) => f.taskId).join(', ')}; first: ${first.message}`,
      { code: first.code, status: first.status, requestId: failures[0]!.cocRequestId, retryable: true },
    );
  }
}

export function idempotencyKey(approvalId: string, taskId: string, deliveryId = ''): string {
  return createHash('sha256').update(`${approvalId}\n${taskId}\n${deliveryId}`).digest('hex').slice(0, 32);
}

const ticketIdsOf = (r: Pick<EnableRequest, 'ticketInfos'>) =>
  r.ticketInfos.map((t) => t.ticket_id).filter((t): t is string => typeof t === 'string');

export function isAllowed(taskId: string, allowList: string[]): boolean {
  if (allowList.length === 0) return true;
  return allowList.some((entry) => (entry.endsWith('*') ? taskId.startsWith(entry.slice(0, -1)) : taskId === entry));
}

/** Guard rails checked before any COC call; a violation refuses the whole approval. */
function checkGuardRails(request: EnableRequest, policy: Policy, now: number): InvalidApproval | undefined {
  const outside = request.taskIds.filter((t) => !isAllowed(t, policy.taskAllowList));
  if (outside.length > 0) {
    return new InvalidApproval(`task(s) outside this deployment's allow-list: ${outside.join(', ')}`, { field: 'task_ids', code: 'NotAllowed' });
  }
  if (request.decidedAt && policy.maxApprovalAgeMs > 0) {
    const age = now - Date.parse(request.decidedAt);
    if (age > policy.maxApprovalAgeMs) {
      return new InvalidApproval(
        `approval is stale: decided ${Math.round(age / 1000)} s ago, the limit is ${policy.maxApprovalAgeMs / 1000} s`,
        { field: 'decided_at', code: 'Stale' },
      );
    }
  }
  return undefined;
}

export class Workflow {
  private readonly policy: Policy;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(private readonly deps: WorkflowDeps) {
    this.policy = { ...DEFAULT_POLICY, ...deps.policy };
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log ?? silentLogger;
  }

  /**
   * Enables every task of an approved request; returns one outcome per task. Throws
   * InvalidApproval (outcomes published) when a guard rail refuses the approval, and
   * RetryableFailure when tasks hit transient failures.
   */
  async enable(request: EnableRequest, opts: EnableOptions = {}): Promise<Outcome[]> {
    const refused = checkGuardRails(request, this.policy, this.clock.now());
    if (refused) {
      // Refused like invalid input (422, Catch, no retry), with the failure outcomes already out.
      refused.outcomes = await this.reject(refused, request);
      throw refused;
    }

    // Outcomes are published in chunks as tasks finish, so event delivery overlaps the COC
    // calls of a large approval instead of following them.
    const publisher = new ChunkedPublisher((chunk) => this.publish(chunk));
    const outcomes = await mapBounded(request.taskIds, this.policy.concurrency, async (taskId) => {
      const o = await this.enableOne(request, taskId, opts);
      if (!o.error?.retryable) await publisher.add(o);
      return o;
    });
    // Throws the first delivery failure, once every chunk has been tried.
    await publisher.finish();
    this.summarize(request, outcomes);
    const transient = outcomes.filter((o) => o.error?.retryable);
    if (transient.length > 0) throw new RetryableFailure(transient);
    return outcomes;
  }

  /**
   * Input that failed validation or a guard rail: one failure outcome per task id that
   * could be read, published, and returned. No COC call.
   */
  async reject(
    error: InvalidApproval,
    context: Pick<EnableRequest, 'trigger' | 'taskIds'> & Partial<Pick<EnableRequest, 'approvalId' | 'deliveryId' | 'ticketInfos'>>,
  ): Promise<Outcome[]> {
    const taskIds = context.taskIds.length > 0 ? context.taskIds : error.taskIds;
    const approvalId = context.approvalId ?? 'unknown';
    const outcomes = taskIds.map((taskId) =>
      this.outcome({ approvalId, trigger: context.trigger, deliveryId: context.deliveryId, ticketInfos: context.ticketInfos ?? [] }, taskId, 'failed', {
        error,
        attempts: 0,
        durationMs: 0,
      }),
    );
    await this.publish(outcomes);
    return outcomes;
  }

  private async enableOne(request: EnableRequest, taskId: string, opts: EnableOptions): Promise<Outcome> {
    const started = this.clock.now();
    const call = { deadline: opts.deadline };
    try {
      if (this.policy.dryRun) {
        const state = await this.deps.coc.showScheduledTask(taskId, call);
        return this.outcome(request, taskId, state.enabled ? 'already_enabled' : 'would_enable', {
          requestId: state.requestId,
          attempts: state.attempts,
          durationMs: this.clock.now() - started,
          dryRun: true,
        });
      }
      const result = await this.deps.coc.enableScheduledTask(taskId, request.ticketInfos, call);
      const verified = this.policy.verifyAfterEnable ? await this.readBack(request, taskId, call) : undefined;
      return this.outcome(request, taskId, result.outcome, {
        requestId: result.requestId,
        attempts: result.attempts,
        durationMs: this.clock.now() - started,
        ...(verified !== undefined && { verified }),
      });
    } catch (e) {
      const error = asEnablerError(e);
      return this.outcome(request, taskId, 'failed', {
        error,
        requestId: error.requestId,
        attempts: error.attempts ?? 0,
        durationMs: this.clock.now() - started,
      });
    }
  }

  /** ShowScheduledTask after enabling; a failed read-back is reported, not fatal. */
  private async readBack(request: EnableRequest, taskId: string, call: EnableOptions): Promise<boolean> {
    try {
      const state = await this.deps.coc.showScheduledTask(taskId, call);
      if (!state.enabled) this.log.warn('read-back shows the task still disabled', { approvalId: request.approvalId, taskId });
      return state.enabled;
    } catch (e) {
      this.log.warn('read-back failed', { approvalId: request.approvalId, taskId, error: asEnablerError(e).toJSON() });
      return false;
    }
  }

  private outcome(
    request: { approvalId: string; trigger: Trigger; deliveryId?: string; ticketInfos: EnableRequest['ticketInfos'] },
    taskId: string,
    kind: OutcomeKind,
    extra: { error?: EnablerError; requestId?: string; attempts: number; durationMs: number; dryRun?: boolean; verified?: boolean },
  ): Outcome {
    const { error, requestId, ...rest } = extra;
    return {
      taskId,
      approvalId: request.approvalId,
      trigger: request.trigger,
      outcome: kind,
      ticketIds: ticketIdsOf(request),
      ...(requestId && { cocRequestId: requestId }),
      ...(error && {
        error: {
          name: error.name,
          message: error.message,
          retryable: error.retryable,
          ...(error.code && { code: error.code }),
          ...(error.status && { status: error.status }),
        },
      }),
      ...rest,
      idempotencyKey: idempotencyKey(request.approvalId, taskId, request.deliveryId),
      time: new Date(this.clock.now()).toISOString(),
    };
  }

  private async publish(outcomes: Outcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    // Failures one line each; successes are in the outcome events and the approval's summary
    // line (a 1,000-task approval would otherwise log 1,000 lines).
    for (const o of outcomes) {
      if (o.outcome !== 'failed') continue;
      this.log.warn('task not enabled', { approvalId: o.approvalId, taskId: o.taskId, attempts: o.attempts, durationMs: o.durationMs, cocRequestId: o.cocRequestId, error: o.error });
    }
    await this.deps.sink.publish(outcomes);
    this.deps.onPublished?.(outcomes);
  }

  /** One line per approval with the counts. */
  private summarize(request: EnableRequest, outcomes: Outcome[]): void {
    const counts: Record<string, number> = {};
    for (const o of outcomes) counts[o.outcome] = (counts[o.outcome] ?? 0) + 1;
    this.log.info('approval processed', { approvalId: request.approvalId, trigger: request.trigger, tasks: outcomes.length, ...counts });
  }
}

/**
 * Publishes outcomes in chunks of EventBridge's PutEvents size, a few chunks in flight at
 * once; the last, partial chunk on finish(). The first failure is reported by finish().
 */
class ChunkedPublisher {
  private pending: Outcome[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly publish: (chunk: Outcome[]) => Promise<void>,
    private readonly chunkSize = 10,
    private readonly maxInFlight = 4,
  ) {}

  /** Never rejects: a failed chunk is reported by finish(). */
  async add(o: Outcome): Promise<void> {
    this.pending.push(o);
    if (this.pending.length < this.chunkSize) return;
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
    this.send();
  }

  async finish(): Promise<void> {
    this.send();
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }

  private send(): void {
    if (this.pending.length === 0) return;
    const chunk = this.pending;
    this.pending = [];
    const p: Promise<void> = this.publish(chunk)
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }
}

/** Runs fn over items with at most `limit` in flight, keeping input order in the result. */
export async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
