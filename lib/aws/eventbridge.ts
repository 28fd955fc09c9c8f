/**
 * Outcome events on EventBridge (DESIGN.md "Outcome events").
 *
 * PutEvents is not all-or-nothing: a 200 response can report failed entries, so each entry's
 * result is checked and only the failed ones are sent again. Whole-call throttling, 5xx and
 * network errors are retried the same way. Retries use exponential backoff with full jitter on
 * the injected clock, so tests never sleep. `publish` resolves only when every outcome is on the
 * bus; otherwise it throws EventDeliveryFailed naming the task ids (never other detail contents).
 *
 * Calls are sent sequentially: an approval rarely has more than ten tasks (one call), sequential
 * calls keep the order of events close to the order of outcomes, and they do not pile onto a bus
 * that is already throttling. 1000 tasks = 100 calls, well within a Lambda timeout.
 */
import {
  PutEventsCommand,
  type EventBridgeClient,
  type PutEventsRequestEntry,
  type PutEventsResultEntry,
} from '@aws-sdk/client-eventbridge';
import { systemClock, type Clock } from '../clock';
import type { Outcome } from '../domain';
import { EnablerError } from '../errors';
import { detailTypeOf, type OutcomeSink } from '../sink';
import { awsErrorCode, awsErrorKind } from './secret-cache';

/** PutEvents accepts at most 10 entries per call. */
export const MAX_ENTRIES_PER_CALL = 10;
/** EventBridge's entry size limit (256 KB), also applied to the sum of one call's entries. */
export const MAX_ENTRY_BYTES = 256 * 1024;
export const DEFAULT_EVENT_SOURCE = 'coc.task-enabler';
/** Appended to a shortened error message so consumers can tell it was cut. */
export const TRUNCATION_MARK = '...[truncated]';

/** Per-entry error codes that will not succeed on retry. Any other code (InternalFailure, ThrottlingException, ...) is retried. */
const PERMANENT_ENTRY_CODES = new Set([
  'InvalidArgument',
  'MalformedDetail',
  'AccessDeniedException',
  'NotAuthorizedForSourceException',
  'NotAuthorizedForDetailTypeException',
  'ValidationException',
  'ResourceNotFoundException',
  'EntryTooLarge',
]);

export interface EventBridgeSinkOptions {
  client: EventBridgeClient;
  eventBusName: string;
  /** Event source. Default `coc.task-enabler`. */
  source?: string;
  /** Attempts per entry, including the first. Default 4. */
  maxAttempts?: number;
  /** Backoff before retry n is uniform in [0, min(maxDelayMs, baseDelayMs * 2^(n-1))). Default 100. */
  baseDelayMs?: number;
  /** Default 2000. */
  maxDelayMs?: number;
  /** Entry size limit as EventBridge computes it. Default 256 KB; AWS raised the bus limit to 1 MB in 2026. */
  maxEntryBytes?: number;
  clock?: Clock;
}

/**
 * An entry's size as EventBridge computes it: UTF-8 bytes of Source, DetailType, Detail and each
 * Resource, plus 14 bytes when Time is set. (EventBusName does not count.)
 */
export function entrySizeBytes(entry: PutEventsRequestEntry): number {
  const bytes = (s: string | undefined) => (s ? Buffer.byteLength(s, 'utf8') : 0);
  let size = entry.Time !== undefined ? 14 : 0;
  size += bytes(entry.Source) + bytes(entry.DetailType) + bytes(entry.Detail);
  for (const r of entry.Resources ?? []) size += bytes(r);
  return size;
}

interface Pending {
  taskId: string;
  entry: PutEventsRequestEntry;
  size: number;
}

interface Failure {
  taskId: string;
  code: string;
  retryable: boolean;
}

export class EventBridgeSink implements OutcomeSink {
  private readonly client: EventBridgeClient;
  private readonly eventBusName: string;
  private readonly source: string;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxEntryBytes: number;
  private readonly clock: Clock;

  constructor(opts: EventBridgeSinkOptions) {
    this.client = opts.client;
    this.eventBusName = opts.eventBusName;
    this.source = opts.source ?? DEFAULT_EVENT_SOURCE;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 4);
    this.baseDelayMs = opts.baseDelayMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 2000;
    this.maxEntryBytes = opts.maxEntryBytes ?? MAX_ENTRY_BYTES;
    this.clock = opts.clock ?? systemClock;
  }

  async publish(outcomes: Outcome[]): Promise<void> {
    const failures: Failure[] = [];
    let pending: Pending[] = [];
    for (const o of outcomes) {
      const entry = this.fittedEntry(o);
      if (entry) pending.push({ taskId: o.taskId, entry, size: entrySizeBytes(entry) });
      // Too large even with the error message cut: still send the others, then fail loudly.
      else failures.push({ taskId: o.taskId, code: 'EntryTooLarge', retryable: false });
    }

    let attempts = 0;
    let lastCallError: unknown;
    while (pending.length > 0) {
      attempts += 1;
      const failed: (Failure & { item: Pending })[] = [];
      for (const chunk of this.chunks(pending)) {
        try {
          const res = await this.client.send(new PutEventsCommand({ Entries: chunk.map((p) => p.entry) }));
          failed.push(...failedEntries(chunk, res.FailedEntryCount, res.Entries));
        } catch (e) {
          // The whole call failed: every entry in it failed the same way.
          lastCallError = e;
          const code = awsErrorCode(e);
          const retryable = awsErrorKind(e) !== 'permanent';
          failed.push(...chunk.map((item) => ({ item, taskId: item.taskId, code, retryable })));
        }
      }
      failures.push(...failed.filter((f) => !f.retryable));
      const retry = failed.filter((f) => f.retryable);
      if (retry.length > 0 && attempts >= this.maxAttempts) {
        failures.push(...retry);
        break;
      }
      if (retry.length > 0) await this.clock.sleep(this.backoff(attempts));
      pending = retry.map((f) => f.item);
    }

    if (failures.length > 0) throw this.deliveryError(failures, outcomes.length, attempts, lastCallError);
  }

  private entryOf(o: Outcome): PutEventsRequestEntry {
    const time = new Date(o.time);
    return {
      EventBusName: this.eventBusName,
      Source: this.source,
      DetailType: detailTypeOf(o),
      Detail: JSON.stringify(o),
      Resources: [],
      Time: Number.isNaN(time.getTime()) ? new Date(this.clock.now()) : time,
    };
  }

  /**
   * The entry, shortening `error.message` (the only unbounded free text) if the entry is too big;
   * undefined if it cannot fit. Binary search over code points keeps the longest prefix that fits
   * without splitting a surrogate pair.
   */
  private fittedEntry(o: Outcome): PutEventsRequestEntry | undefined {
    const entry = this.entryOf(o);
    if (entrySizeBytes(entry) <= this.maxEntryBytes) return entry;
    const error = o.error;
    if (!error?.message) return undefined;
    const chars = Array.from(error.message);
    const attempt = (n: number) => {
      const e = this.entryOf({ ...o, error: { ...error, message: chars.slice(0, n).join('') + TRUNCATION_MARK } });
      return entrySizeBytes(e) <= this.maxEntryBytes ? e : undefined;
    };
    let best = attempt(0);
    if (!best) return undefined;
    let lo = 1;
    let hi = chars.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = attempt(mid);
      if (e) {
        best = e;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return best;
  }

  /** At most 10 entries per call, and no more than the size limit in total, in order. */
  private *chunks(items: Pending[]): Generator<Pending[]> {
    let chunk: Pending[] = [];
    let bytes = 0;
    for (const item of items) {
      if (chunk.length === MAX_ENTRIES_PER_CALL || (chunk.length > 0 && bytes + item.size > this.maxEntryBytes)) {
        yield chunk;
        chunk = [];
        bytes = 0;
      }
      chunk.push(item);
      bytes += item.size;
    }
    if (chunk.length > 0) yield chunk;
  }

  /** Full jitter: uniform in [0, min(max, base * 2^(attempt-1))). */
  private backoff(attempt: number): number {
    return this.clock.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
  }

  private deliveryError(failures: Failure[], total: number, attempts: number, cause: unknown): EnablerError {
    const byCode = new Map<string, string[]>();
    for (const f of failures) byCode.set(f.code, [...(byCode.get(f.code) ?? []), f.taskId]);
    const MAX_IDS = 10;
    const parts = [...byCode].map(([code, ids]) => {
      const shown = ids.slice(0, MAX_IDS).join(', ') + (ids.length > MAX_IDS ? `, +${ids.length - MAX_IDS} more` : '');
      return `${code} x${ids.length} (${shown})`;
    });
    const [mainCode] = [...byCode].sort((a, b) => b[1].length - a[1].length)[0]!;
    return new EnablerError(
      'EventDeliveryFailed',
      `${failures.length} of ${total} outcome events not delivered to event bus ${this.eventBusName}` +
        `${attempts > 0 ? ` after ${attempts} attempt(s)` : ''}: ${parts.join('; ')}`,
      {
        code: mainCode,
        attempts,
        // Retrying the invocation helps only if every failure was transient.
        retryable: failures.every((f) => f.retryable),
        ...(cause !== undefined && { cause }),
      },
    );
  }
}

/**
 * Failed entries of one call, matched by index: Entries[i] answers request entry i. An entry is
 * failed when its result has an ErrorCode, or when the count says something failed and the
 * result is missing or has no EventId.
 */
function failedEntries(
  chunk: Pending[],
  failedCount: number | undefined,
  results: PutEventsResultEntry[] | undefined,
): (Failure & { item: Pending })[] {
  const anyError = results?.some((r) => r.ErrorCode) ?? false;
  if (!failedCount && !anyError) return [];
  const out: (Failure & { item: Pending })[] = [];
  chunk.forEach((item, i) => {
    const r = results?.[i];
    if (r?.ErrorCode || !r?.EventId) {
      const code = r?.ErrorCode ?? 'UnknownFailure';
      out.push({ item, taskId: item.taskId, code, retryable: !PERMANENT_ENTRY_CODES.has(code) });
    }
  });
  return out;
}
