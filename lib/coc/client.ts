/**
 * COC client: EnableScheduledTask and ShowScheduledTask, signed, over a keep-alive pool,
 * retrying only what is transient within an attempt budget and an overall deadline.
 * Knows nothing of AWS or of the trigger that asked.
 */
import { systemClock, type Clock } from '../clock';
import type { CredentialSource } from '../credentials';
import { validateTaskId, validateTicketInfos, type TicketInfo } from '../domain';
import { EnablerError } from '../errors';
import { ALREADY_ENABLED, errorForAnswer, isCredentialRejection, parseRetryAfter, type CocAnswer } from './errors';
import { parseEndpoint } from './endpoint';
import { sha256Hex, signRequest } from './signer';
import { NodeHttpTransport, TransportError, type HttpResponse, type Transport } from './transport';

export interface CocClientOptions {
  /** scheme://host[:port]; https, or http to a loopback host only. */
  endpoint: string | URL;
  credentials: CredentialSource;
  transport?: Transport;
  clock?: Clock;
  /** Attempts for transient failures (network, timeout, 5xx, 429). Default 4. */
  maxAttempts?: number;
  /** Per attempt. Default 5000 ms. */
  attemptTimeoutMs?: number;
  /** Full-jitter backoff: random in [0, min(maxDelayMs, baseDelayMs * 2^n)]. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Floor for a 429 without Retry-After: Huawei suggests waiting 2-5 s. Default 2000 ms. */
  throttleMinDelayMs?: number;
  /** Overall budget when the caller gives no deadline. Default 25000 ms. */
  deadlineMs?: number;
  /** Called after every attempt: for logs and latency metrics. Carries no secrets. */
  onAttempt?: (report: AttemptReport) => void;
}

export interface AttemptReport {
  operation: 'EnableScheduledTask' | 'ShowScheduledTask';
  taskId: string;
  attempt: number;
  durationMs: number;
  status?: number;
  code?: string;
  requestId?: string;
  error?: string;
}

export interface CallOptions {
  /** Epoch ms by which the call must have ended, retries included. */
  deadline?: number;
}

export interface EnableResult {
  outcome: 'enabled' | 'already_enabled';
  requestId?: string;
  attempts: number;
}

export interface TaskState {
  taskId: string;
  enabled: boolean;
  requestId?: string;
  attempts: number;
}

/** The operations the workflow needs: an interface so doors and tests can substitute. */
export interface CocOperations {
  enableScheduledTask(taskId: string, ticketInfos: TicketInfo[], opts?: CallOptions): Promise<EnableResult>;
  showScheduledTask(taskId: string, opts?: CallOptions): Promise<TaskState>;
}

const CONTENT_TYPE = 'application/json;charset=UTF-8';

interface PreparedBody {
  bytes: Buffer;
  sha256: string;
}

interface Answer extends CocAnswer {
  json?: Record<string, unknown>;
  attempts: number;
}

export class CocClient implements CocOperations {
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly maxAttempts: number;
  private readonly attemptTimeoutMs: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly throttleMinDelayMs: number;
  private readonly deadlineMs: number;
  private readonly endpoint: URL | EnablerError;
  private readonly bodies = new WeakMap<TicketInfo[], PreparedBody>();

  constructor(private readonly opts: CocClientOptions) {
    // A bad endpoint fails each call rather than construction, so every task still gets an outcome.
    this.endpoint = tryParseEndpoint(opts.endpoint);
    this.transport = opts.transport ?? new NodeHttpTransport();
    this.clock = opts.clock ?? systemClock;
    this.maxAttempts = opts.maxAttempts ?? 4;
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 5000;
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 5000;
    this.throttleMinDelayMs = opts.throttleMinDelayMs ?? 2000;
    this.deadlineMs = opts.deadlineMs ?? 25000;
  }

  async enableScheduledTask(taskId: string, ticketInfos: TicketInfo[], opts: CallOptions = {}): Promise<EnableResult> {
    // Validated here too, so no caller can send COC something it would refuse.
    validateTaskId(taskId);
    const body = this.enableBody(ticketInfos);
    const a = await this.call('EnableScheduledTask', 'POST', taskId, `/v1/schedule/task/${taskId}/enable`, body, opts);
    if (a.status >= 200 && a.status < 300) return { outcome: 'enabled', requestId: a.requestId, attempts: a.attempts };
    return { outcome: 'already_enabled', requestId: a.requestId, attempts: a.attempts };
  }

  async showScheduledTask(taskId: string, opts: CallOptions = {}): Promise<TaskState> {
    validateTaskId(taskId);
    const a = await this.call('ShowScheduledTask', 'GET', taskId, `/v1/schedule/task/${taskId}`, undefined, opts);
    const data = a.json?.data;
    const detail = data && typeof data === 'object' ? (data as Record<string, unknown>) : a.json;
    if (typeof detail?.enabled !== 'boolean') {
      throw new EnablerError('CocUnavailable', `ShowScheduledTask for ${taskId} answered without an enabled flag`, {
        status: a.status,
        requestId: a.requestId,
        retryable: false,
      });
    }
    return { taskId, enabled: detail.enabled, requestId: a.requestId, attempts: a.attempts };
  }

  close(): void {
    this.transport.close();
  }

  /**
   * The request body and its hash, validated and built once per ticket list: every task of an
   * approval sends the same bytes. Keyed by the (not copied) array the caller passes.
   */
  private enableBody(ticketInfos: TicketInfo[]): PreparedBody {
    let prepared = this.bodies.get(ticketInfos);
    if (!prepared) {
      const tickets = validateTicketInfos(ticketInfos);
      const bytes = Buffer.from(JSON.stringify(tickets.length > 0 ? { ticket_infos: tickets } : {}));
      prepared = { bytes, sha256: sha256Hex(bytes) };
      this.bodies.set(ticketInfos, prepared);
    }
    return prepared;
  }

  /** Sends until success, a permanent error, the attempt budget or the deadline. */
  private async call(
    operation: AttemptReport['operation'],
    method: string,
    taskId: string,
    path: string,
    body: PreparedBody | undefined,
    opts: CallOptions,
  ): Promise<Answer> {
    if (this.endpoint instanceof EnablerError) throw this.endpoint;
    const endpoint = this.endpoint;
    const deadline = opts.deadline ?? this.clock.now() + this.deadlineMs;
    if (deadline <= this.clock.now()) throw deadlineReached(taskId, 0);
    let credentials = await this.beforeDeadline(this.opts.credentials.get(), deadline);
    let refreshed = false;
    let lastError: EnablerError | undefined;
    let attempt = 0;
    let transientAttempts = 0;

    while (transientAttempts < this.maxAttempts) {
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) break;
      attempt++;
      transientAttempts++;
      const signed = signRequest(
        {
          method,
          origin: endpoint,
          path,
          headers: body ? { 'Content-Type': CONTENT_TYPE } : {},
          ...(body && { body: body.bytes, bodySha256: body.sha256 }),
        },
        credentials,
        new Date(this.clock.now()),
      );
      const started = this.clock.now();
      let answer: Answer;
      try {
        const res = await this.transport.send(
          { method, origin: endpoint, target: signed.target, headers: signed.headers, body: body?.bytes },
          Math.min(this.attemptTimeoutMs, remaining),
        );
        answer = readAnswer(res, attempt, this.clock.now());
      } catch (e) {
        const reason = e instanceof TransportError ? e.message : 'unexpected transport failure';
        this.report({ operation, taskId, attempt, durationMs: this.clock.now() - started, error: reason });
        lastError = new EnablerError('CocUnavailable', `COC unreachable for ${taskId}: ${reason}`, { code: e instanceof TransportError ? e.kind : undefined });
        if (!(await this.backoff(transientAttempts, undefined, deadline))) break;
        continue;
      }
      this.report({
        operation,
        taskId,
        attempt,
        durationMs: this.clock.now() - started,
        status: answer.status,
        code: answer.code,
        requestId: answer.requestId,
      });

      if (answer.status >= 200 && answer.status < 300 && !answer.malformed) return answer;
      if (operation === 'EnableScheduledTask' && answer.code === ALREADY_ENABLED) return answer;

      // A rotated or expired credential: ask the source once for fresh ones and retry once.
      if (isCredentialRejection(answer) && !refreshed) {
        refreshed = true;
        credentials = await this.beforeDeadline(this.opts.credentials.refresh(), deadline);
        transientAttempts--;
        continue;
      }
      lastError = errorForAnswer(answer, taskId);
      if (!lastError.retryable) break;
      if (!(await this.backoff(transientAttempts, answer, deadline))) break;
    }

    const error = lastError ?? deadlineReached(taskId, attempt);
    error.attempts = attempt;
    throw error;
  }

  /** Waits before the next attempt; false when no further attempt fits before the deadline. */
  private async backoff(n: number, answer: CocAnswer | undefined, deadline: number): Promise<boolean> {
    if (n >= this.maxAttempts) return false;
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (n - 1));
    let delay = this.clock.random() * ceiling;
    if (answer?.retryAfterMs !== undefined) delay = Math.max(delay, answer.retryAfterMs);
    else if (answer && (answer.status === 429 || answer.code === 'APIGW.0308')) delay = Math.max(delay, this.throttleMinDelayMs);
    if (this.clock.now() + delay >= deadline) return false;
    await this.clock.sleep(delay);
    return true;
  }

  /**
   * Credentials are read within the same deadline as the COC call: a slow secret store must
   * not run the invocation past Lambda's timeout, where no outcome could be published.
   */
  private async beforeDeadline<T>(pending: Promise<T>, deadline: number): Promise<T> {
    const remaining = deadline - this.clock.now();
    const late = () =>
      new EnablerError('CredentialsUnavailable', 'deadline reached before the credentials could be read', {
        code: 'DeadlineExceeded',
        retryable: true,
      });
    if (remaining <= 0) {
      pending.catch(() => undefined);
      throw late();
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(late()), remaining);
    });
    try {
      return await Promise.race([pending, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private report(r: AttemptReport): void {
    this.opts.onAttempt?.(r);
  }
}

const deadlineReached = (taskId: string, attempts: number) =>
  new EnablerError('CocUnavailable', `deadline reached before COC answered for ${taskId}`, { code: 'DeadlineExceeded', attempts });

function tryParseEndpoint(endpoint: string | URL): URL | EnablerError {
  try {
    return parseEndpoint(String(endpoint));
  } catch (e) {
    return e as EnablerError;
  }
}

function readAnswer(res: HttpResponse, attempts: number, now: number): Answer {
  const header = (name: string) => {
    const v = res.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(res.body);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    status: res.status,
    code: str(json?.error_code),
    message: str(json?.error_msg),
    requestId: header('x-request-id') ?? str(json?.request_id),
    retryAfterMs: parseRetryAfter(header('retry-after'), now),
    malformed: json === undefined,
    json,
    attempts,
  };
}
