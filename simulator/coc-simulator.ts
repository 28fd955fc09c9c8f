/**
 * The local COC simulator (DESIGN.md, "The local COC simulator"): a loopback HTTP/1.1
 * server that behaves like Huawei Cloud COC, behind its API gateway, for the scheduled
 * task operations the enabler uses. Tests, `npm start` and the benchmark all use it.
 *
 * API routes (signed, SDK-HMAC-SHA256):
 *   POST /v1/schedule/task/{task_id}/enable   EnableScheduledTask   200 {"data":"<task id>"}
 *   GET  /v1/schedule/task/{task_id}          ShowScheduledTask     200 {"id","name","enabled"}
 *   POST /v1/schedule/task/{task_id}/disable  DisableScheduledTask  200 {"data":"<task id>"}
 *   anything else                             404 APIGW.0101
 *
 * Order in which a request to an API route is judged (the first that answers wins):
 *   1. body size        413 APIGW.0201 (Content-Length up front, or while reading)
 *   2. rate limit       429 APIGW.0308 + Retry-After (token bucket, when configured)
 *   3. fault rules      in order of injection; latency rules add delay and let later rules
 *                       match too, the first other rule that fires decides the answer
 *   4. route            404 APIGW.0101 (as the gateway does, before authentication)
 *   5. authentication   401 APIGW.0301 (signature, X-Sdk-Date window, AK, security token)
 *   6. business         COC.* codes, task state
 * The signature is verified for every request whose body was read, so each recorded
 * request says whether it was validly signed even when a fault or 429 answered it.
 * Latency (setLatency plus latency faults) delays the answer; steps 5-6 run after it.
 *
 * Control API (unsigned, for a simulator in another process): routes under `/_sim/`, see
 * CONTROL_API_HELP. Control requests are not rate limited, faulted, recorded or counted.
 *
 * No per-request logging, and nothing here ever prints or returns a secret: recorded
 * headers have Authorization and X-Security-Token replaced by '[redacted]'.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { verifySdkHmacSha256 } from './verify-signature';
import type { VerifierCredential, VerifyResult } from './verify-signature';

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

export interface SimCredential {
  ak: string;
  sk: string;
  /** Temporary credentials: requests must carry a matching X-Security-Token. */
  securityToken?: string;
  /** The account id; when set, a request's X-Domain-Id (if any) must equal it. */
  domainId?: string;
}

export interface SimTaskSeed {
  enabled?: boolean;
  requiresTicket?: boolean;
  owner?: 'self' | 'other';
}

export type SimFault =
  | { kind: 'latency'; ms: number }
  | { kind: 'status'; status: 429 | 500 | 502 | 503 | 504; retryAfterSeconds?: number }
  /** Destroy the socket without a response. */
  | { kind: 'reset' }
  /** A non-JSON (HTML) body; status 200 unless given as 502. */
  | { kind: 'garbage'; status?: 200 | 502 }
  /** Never answer (until the client gives up or the simulator closes). */
  | { kind: 'hang' };

export interface SimFaultRule {
  fault: SimFault;
  /** How many requests this rule hits; default 1, Infinity until cleared. */
  times?: number;
  /** Only requests for this task id. */
  taskId?: string;
  /** 0..1, default 1; rolled with the injectable random(). A miss leaves the rule untouched. */
  probability?: number;
}

export interface SimRecordedRequest {
  /** The X-Request-Id the simulator answered with. */
  id: string;
  method: string;
  /** Raw path, without the query. */
  path: string;
  /** Raw query string, without '?'. */
  query: string;
  /** Lowercase names; authorization and x-security-token replaced by '[redacted]'. */
  headers: Record<string, string>;
  body: string;
  taskId?: string;
  /** HTTP status answered; 0 when a reset or hang fault meant no answer. */
  status: number;
  ak?: string;
  signatureValid: boolean;
  receivedAt: number;
}

export interface SimOptions {
  host?: '127.0.0.1';
  /** Default 0: an ephemeral port (see CocSimulator.port). */
  port?: number;
  /** Default: [DEMO_CREDENTIAL]. */
  credentials?: SimCredential[];
  /** Clock for the X-Sdk-Date window, the rate limiter and receivedAt; default Date.now. */
  now?: () => number;
  /** For fault probabilities; default Math.random. */
  random?: () => number;
  /** Added to every answer; default 0. */
  latencyMs?: number;
  /** Token bucket (burst = one second's worth); beyond it 429 APIGW.0308 with Retry-After. */
  rateLimitPerSecond?: number;
  /** Default 1 MiB; larger bodies get 413 APIGW.0201. */
  maxBodyBytes?: number;
  /** Default true; a ring buffer of the last MAX_RECORDED_REQUESTS requests. */
  recordRequests?: boolean;
}

export interface SimTaskState {
  enabled: boolean;
  requiresTicket: boolean;
  owner: 'self' | 'other';
  /** Successful EnableScheduledTask calls since the task was seeded. */
  enableCount: number;
}

export interface CocSimulator {
  url: string;
  port: number;
  /** Create or replace a task (enableCount restarts at 0). Defaults: disabled, no ticket, owner self. */
  seedTask(taskId: string, seed?: SimTaskSeed): void;
  task(taskId: string): SimTaskState | undefined;
  /** Throws TypeError when the rule is malformed. */
  injectFault(rule: SimFaultRule): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  setRateLimit(perSecond: number | undefined): void;
  requests(): SimRecordedRequest[];
  clearRequests(): void;
  /** Counts API requests (not control requests). byStatus keys are HTTP statuses, plus 'reset' and 'hang'. */
  stats(): { requests: number; byStatus: Record<string, number> };
  /** Back to as started: no tasks, faults, recorded requests or counts; latency and rate limit from the options. */
  reset(): void;
  /** Stops listening and destroys every connection, idle keep-alive and hanging ones included. */
  close(): Promise<void>;
}

/** Used when SimOptions.credentials is not given, and by the CLI when the env has none. Not a real key. */
export const DEMO_CREDENTIAL: Readonly<SimCredential> = Object.freeze({
  ak: 'DEMOAKEXAMPLE0000000',
  sk: 'demo-secret-key-not-real',
});

/**
 * Tasks the CLI seeds with --demo: one of each interesting state, with the ids the samples
 * in events/ use (ST0000000000000000DEMO0404 is left out: it does not exist).
 */
export const DEMO_TASKS: ReadonlyArray<{ taskId: string; seed: SimTaskSeed; note: string }> = [
  { taskId: 'ST0000000000000000DEMO0001', seed: {}, note: 'disabled; enable succeeds' },
  { taskId: 'ST0000000000000000DEMO0002', seed: { enabled: true }, note: 'already enabled (COC.00014110)' },
  { taskId: 'ST0000000000000000DEMO0003', seed: { requiresTicket: true }, note: 'disabled; needs ticket_infos with a ticket_id' },
  { taskId: 'ST0000000000000000DEMO0121', seed: { owner: 'other' }, note: 'another account (COC.00014121)' },
  { taskId: 'ST0000000000000000DEMO0503', seed: {}, note: 'disabled; enable succeeds' },
];

export const MAX_RECORDED_REQUESTS = 100_000;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export const CONTROL_API_HELP = `Control API (unsigned; JSON in snake_case, answers are the JS API's objects):
  POST   /_sim/tasks        {"tasks":[{"task_id":"ST...","enabled":false,"requires_ticket":false,"owner":"self"}]}
  GET    /_sim/tasks        all tasks
  GET    /_sim/tasks/{id}   {"taskId","enabled","requiresTicket","owner","enableCount"} or 404
  POST   /_sim/faults       {"fault":{"kind":"status","status":503,"retry_after_seconds":2},"times":3,"task_id":"ST...","probability":1}
                            kinds: latency{ms} status{status,retry_after_seconds} reset garbage{status?} hang;
                            "times": a positive integer or "Infinity" (default 1)
  DELETE /_sim/faults       clear all fault rules
  POST   /_sim/latency      {"ms":50}
  POST   /_sim/rate-limit   {"per_second":100}  or {"per_second":null} to switch it off
  GET    /_sim/stats        {"requests":n,"byStatus":{"200":n,...}}
  GET    /_sim/requests     recorded requests (?limit=N for the last N, ?task_id=ST... to filter)
  DELETE /_sim/requests     forget recorded requests
  POST   /_sim/reset        tasks, faults, requests and counts back to as started`;

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

const TASK_ID = /^ST[A-Za-z0-9]{24}$/;
const API_ROUTE = /^\/v1\/schedule\/task\/([^/]+)(?:\/(enable|disable))?$/;
const TICKET_TYPES = new Set(['CHANGE', 'INCIDENT', 'WARROOM', 'ALARM']);
const MAX_TICKET_INFOS = 1000;

type Answer = { status: number; body: string; headers?: Record<string, string> };

const errorBody = (code: string, msg: string): string => JSON.stringify({ error_code: code, error_msg: msg });
const fail = (status: number, code: string, msg: string): Answer => ({ status, body: errorBody(code, msg) });

const NOT_FOUND = fail(404, 'APIGW.0101', 'The API does not exist or has not been published in the environment');
const TOO_LARGE = fail(413, 'APIGW.0201', 'Request entity too large');
const throttled = (retryAfterSeconds: number): Answer => ({
  ...fail(429, 'APIGW.0308', 'The throttling threshold has been reached'),
  headers: { 'Retry-After': String(retryAfterSeconds) },
});

/** 5xx bodies are simulator choices modelled on the gateway's published codes (APIG.0202/0203) and COC's system error. */
function serverError(status: 500 | 502 | 503 | 504): Answer {
  switch (status) {
    case 500:
      return fail(500, 'COC.00010001', 'System error, please try again later');
    case 502:
    case 503:
      return fail(status, 'APIGW.0202', 'Backend unavailable');
    case 504:
      return fail(504, 'APIGW.0203', 'Backend timeout');
  }
}

const GARBAGE_BODY =
  '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>';

// ---------------------------------------------------------------------------------------
// Validation of fault rules (shared by injectFault and the control API)
// ---------------------------------------------------------------------------------------

const FAULT_STATUSES = new Set([429, 500, 502, 503, 504]);
const isNonNegativeFinite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

function checkFault(fault: unknown): SimFault {
  if (typeof fault !== 'object' || fault === null) throw new TypeError('fault must be an object with a kind');
  const f = fault as Record<string, unknown>;
  switch (f.kind) {
    case 'latency':
      if (!isNonNegativeFinite(f.ms)) throw new TypeError('latency fault needs ms >= 0');
      return { kind: 'latency', ms: f.ms };
    case 'status': {
      if (typeof f.status !== 'number' || !FAULT_STATUSES.has(f.status)) {
        throw new TypeError('status fault needs status 429, 500, 502, 503 or 504');
      }
      const retry = f.retryAfterSeconds ?? f.retry_after_seconds;
      if (retry !== undefined && !isNonNegativeFinite(retry)) throw new TypeError('retryAfterSeconds must be >= 0');
      return {
        kind: 'status',
        status: f.status as 429 | 500 | 502 | 503 | 504,
        ...(retry !== undefined && { retryAfterSeconds: retry }),
      };
    }
    case 'garbage':
      if (f.status !== undefined && f.status !== 200 && f.status !== 502) throw new TypeError('garbage fault status must be 200 or 502');
      return f.status === undefined ? { kind: 'garbage' } : { kind: 'garbage', status: f.status };
    case 'reset':
    case 'hang':
      return { kind: f.kind };
    default:
      throw new TypeError('fault kind must be latency, status, reset, garbage or hang');
  }
}

interface ActiveRule {
  fault: SimFault;
  remaining: number;
  taskId?: string;
  probability: number;
}

function checkRule(rule: SimFaultRule): ActiveRule {
  if (typeof rule !== 'object' || rule === null) throw new TypeError('a fault rule must be an object');
  const fault = checkFault(rule.fault);
  const times = rule.times ?? 1;
  if (typeof times !== 'number' || !(times === Infinity || (Number.isInteger(times) && times > 0))) {
    throw new TypeError('times must be a positive integer or Infinity');
  }
  const probability = rule.probability ?? 1;
  if (typeof probability !== 'number' || !(probability >= 0 && probability <= 1)) {
    throw new TypeError('probability must be between 0 and 1');
  }
  if (rule.taskId !== undefined && (typeof rule.taskId !== 'string' || rule.taskId === '')) {
    throw new TypeError('taskId must be a non-empty string');
  }
  return { fault, remaining: times, probability, ...(rule.taskId !== undefined && { taskId: rule.taskId }) };
}

// ---------------------------------------------------------------------------------------
// Enable request body (ticket_infos) validation
// ---------------------------------------------------------------------------------------

const TICKET_FIELD_LIMITS: Record<string, number> = { ticket_id: 255, target_id: 255, scope_id: 50 };

/** The ticket_infos of an enable body, or an error message for COC.00014002. */
function readTicketInfos(body: Buffer): { tickets: Array<Record<string, unknown>> } | { error: string } {
  if (body.length === 0) return { tickets: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { error: 'the request body is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { error: 'the request body must be a JSON object' };
  const infos = (parsed as Record<string, unknown>).ticket_infos;
  if (infos === undefined || infos === null) return { tickets: [] };
  if (!Array.isArray(infos)) return { error: 'ticket_infos must be an array' };
  if (infos.length > MAX_TICKET_INFOS) return { error: `ticket_infos has more than ${MAX_TICKET_INFOS} items` };
  for (let i = 0; i < infos.length; i++) {
    const item: unknown = infos[i];
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return { error: `ticket_infos[${i}] must be an object` };
    for (const [key, value] of Object.entries(item)) {
      const limit = TICKET_FIELD_LIMITS[key];
      if (limit !== undefined) {
        if (typeof value !== 'string' || value.length > limit) return { error: `ticket_infos[${i}].${key} must be a string of at most ${limit} characters` };
      } else if (key === 'ticket_type') {
        if (typeof value !== 'string' || !TICKET_TYPES.has(value)) return { error: `ticket_infos[${i}].ticket_type is not a known ticket type` };
      }
      // Unknown fields are ignored, as a lenient JSON binding would.
    }
  }
  return { tickets: infos as Array<Record<string, unknown>> };
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

interface Route {
  op: 'enable' | 'disable' | 'show';
  taskId: string;
}

interface Pending {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  path: string;
  query: string;
  taskId: string | undefined;
  route: Route | undefined;
  receivedAt: number;
  /** reset() bumps the generation: answers still pending from before it are not counted or recorded. */
  generation: number;
}

const newRequestId = (): string => randomUUID().replace(/-/g, '');

function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = req.headers;
  for (const name in raw) {
    const v = raw[name];
    if (v === undefined) continue;
    out[name] = name === 'authorization' || name === 'x-security-token' ? '[redacted]' : Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function splitUrl(rawUrl: string): { path: string; query: string } {
  const q = rawUrl.indexOf('?');
  return q === -1 ? { path: rawUrl, query: '' } : { path: rawUrl.slice(0, q), query: rawUrl.slice(q + 1) };
}

function matchRoute(method: string, path: string): { taskId: string | undefined; route: Route | undefined } {
  const m = API_ROUTE.exec(path);
  if (!m) return { taskId: undefined, route: undefined };
  const taskId = m[1]!;
  const action = m[2];
  if (action === undefined) return { taskId, route: method === 'GET' ? { op: 'show', taskId } : undefined };
  return { taskId, route: method === 'POST' ? { op: action as 'enable' | 'disable', taskId } : undefined };
}

export async function startCocSimulator(options: SimOptions = {}): Promise<CocSimulator> {
  const host = options.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') throw new TypeError('the simulator binds 127.0.0.1 only');
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const recording = options.recordRequests ?? true;

  const credentials = new Map<string, SimCredential>();
  for (const c of options.credentials ?? [DEMO_CREDENTIAL]) {
    if (!c.ak || !c.sk) throw new TypeError('every simulator credential needs an ak and an sk');
    credentials.set(c.ak, { ...c });
  }
  const lookup = (ak: string): VerifierCredential | undefined => credentials.get(ak);

  // Mutable state -----------------------------------------------------------------------
  const tasks = new Map<string, SimTaskState>();
  let rules: ActiveRule[] = [];
  let latencyMs = 0;
  let ratePerSecond: number | undefined;
  let tokens = 0;
  let tokensAt = 0;
  let recorded: SimRecordedRequest[] = [];
  let recordedNext = 0; // ring buffer write position once full
  let requestCount = 0;
  let byStatus: Record<string, number> = {};
  let generation = 0;
  const timers = new Set<NodeJS.Timeout>();
  let closing: Promise<void> | undefined;

  const setLatency = (ms: number): void => {
    if (!isNonNegativeFinite(ms)) throw new TypeError('latency must be a number of milliseconds >= 0');
    latencyMs = ms;
  };
  const setRateLimit = (perSecond: number | undefined): void => {
    if (perSecond !== undefined && !(typeof perSecond === 'number' && Number.isFinite(perSecond) && perSecond > 0)) {
      throw new TypeError('rate limit must be a positive number of requests per second, or undefined');
    }
    ratePerSecond = perSecond;
    tokens = perSecond === undefined ? 0 : Math.max(1, perSecond);
    tokensAt = now();
  };
  const restoreOptions = (): void => {
    setLatency(options.latencyMs ?? 0);
    setRateLimit(options.rateLimitPerSecond);
  };
  restoreOptions();

  /** Token bucket: undefined when the request may pass, else the Retry-After seconds. */
  function takeToken(at: number): number | undefined {
    if (ratePerSecond === undefined) return undefined;
    const capacity = Math.max(1, ratePerSecond);
    const elapsed = Math.max(0, at - tokensAt);
    tokensAt = Math.max(tokensAt, at);
    tokens = Math.min(capacity, tokens + (elapsed / 1000) * ratePerSecond);
    if (tokens >= 1) {
      tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - tokens) / ratePerSecond));
  }

  /** Consume the fault rules that hit this request: total added latency, and the deciding fault if any. */
  function pickFaults(taskId: string | undefined): { delay: number; fault: SimFault | undefined } {
    let delay = 0;
    let fault: SimFault | undefined;
    if (rules.length === 0) return { delay, fault };
    let spent = false;
    for (const rule of rules) {
      if (rule.taskId !== undefined && rule.taskId !== taskId) continue;
      if (rule.probability < 1 && !(random() < rule.probability)) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) spent = true;
      if (rule.fault.kind === 'latency') {
        delay += rule.fault.ms;
        continue;
      }
      fault = rule.fault;
      break;
    }
    if (spent) rules = rules.filter((r) => r.remaining > 0);
    return { delay, fault };
  }

  function record(p: Pending, status: number | 'reset' | 'hang', body: Buffer, auth: VerifyResult | undefined): void {
    if (p.generation !== generation) return;
    requestCount += 1;
    const key = String(status);
    byStatus[key] = (byStatus[key] ?? 0) + 1;
    if (!recording) return;
    const entry: SimRecordedRequest = {
      id: p.requestId,
      method: p.req.method ?? '',
      path: p.path,
      query: p.query,
      headers: headerRecord(p.req),
      body: body.toString('utf8'),
      status: typeof status === 'number' ? status : 0,
      signatureValid: auth?.ok === true,
      receivedAt: p.receivedAt,
      ...(p.taskId !== undefined && { taskId: p.taskId }),
      ...(auth?.ak !== undefined && { ak: auth.ak }),
    };
    if (recorded.length < MAX_RECORDED_REQUESTS) {
      recorded.push(entry);
    } else {
      recorded[recordedNext] = entry;
      recordedNext = (recordedNext + 1) % MAX_RECORDED_REQUESTS;
    }
  }

  function write(res: ServerResponse, requestId: string, answer: Answer, contentType = 'application/json;charset=UTF-8'): void {
    if (res.destroyed || res.headersSent) return;
    res.writeHead(answer.status, {
      'Content-Type': contentType,
      'Content-Length': Buffer.byteLength(answer.body),
      'X-Request-Id': requestId,
      ...answer.headers,
    });
    res.end(answer.body);
  }

  function later(ms: number, fn: () => void): void {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closing) fn();
    }, ms);
    timers.add(t);
  }

  // Business logic ----------------------------------------------------------------------
  function business(route: Route, body: Buffer): Answer {
    const { taskId } = route;
    if (!TASK_ID.test(taskId)) {
      return fail(400, 'COC.00010002', 'Invalid parameter: task_id must be a string of 26 characters starting with ST');
    }
    let tickets: Array<Record<string, unknown>> = [];
    if (route.op === 'enable') {
      const read = readTicketInfos(body);
      if ('error' in read) return fail(400, 'COC.00014002', `Invalid parameter: ${read.error}`);
      tickets = read.tickets;
    }
    const task = tasks.get(taskId);
    if (!task) return fail(400, 'COC.00014102', 'The scheduled task does not exist');
    if (task.owner === 'other') return fail(400, 'COC.00014121', 'The scheduled task does not belong to the current account');
    switch (route.op) {
      case 'show':
        return { status: 200, body: JSON.stringify({ id: taskId, name: `simulated-task-${taskId.slice(-6)}`, enabled: task.enabled }) };
      case 'disable':
        if (!task.enabled) return fail(400, 'COC.00014104', 'The scheduled task is already disabled');
        task.enabled = false;
        return { status: 200, body: JSON.stringify({ data: taskId }) };
      case 'enable':
        // COC.00014150 is a SIMULATOR ASSUMPTION: COC's public reference documents that
        // ticket_infos becomes mandatory when ticket authorization is switched on, but not
        // the code it answers with. The ticket check comes before the already-enabled check
        // (authorization before state), so a task needing a ticket never reports
        // COC.00014110 to a caller without one.
        if (task.requiresTicket && !tickets.some((t) => typeof t.ticket_id === 'string' && t.ticket_id !== '')) {
          return fail(400, 'COC.00014150', 'ticket authorization required: ticket_infos missing or not effective');
        }
        if (task.enabled) return fail(400, 'COC.00014110', 'The scheduled task is already enabled');
        task.enabled = true;
        task.enableCount += 1;
        return { status: 200, body: JSON.stringify({ data: taskId }) };
    }
  }

  function authenticate(req: IncomingMessage, body: Buffer): VerifyResult {
    const result = verifySdkHmacSha256({ method: req.method ?? '', rawUrl: req.url ?? '/', headers: req.headers, body }, lookup, now());
    if (!result.ok) return result;
    const domainId = credentials.get(result.ak)?.domainId;
    const given = req.headers['x-domain-id'];
    if (domainId !== undefined && given !== undefined && given !== domainId) {
      return { ok: false, reason: "X-Domain-Id does not match the access key's account", ak: result.ak };
    }
    return result;
  }

  // Per-request path --------------------------------------------------------------------
  function handleApi(req: IncomingMessage, res: ServerResponse): void {
    const rawUrl = req.url ?? '/';
    const { path, query } = splitUrl(rawUrl);
    const { taskId, route } = matchRoute(req.method ?? '', path);
    const p: Pending = { req, res, requestId: newRequestId(), path, query, taskId, route, receivedAt: now(), generation };

    const tooLarge = (): void => {
      record(p, 413, Buffer.alloc(0), undefined);
      write(res, p.requestId, { ...TOO_LARGE, headers: { Connection: 'close' } });
    };
    const declared = Number(req.headers['content-length']);
    if (declared > maxBodyBytes) {
      tooLarge();
      req.resume();
      return;
    }

    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    req.on('data', (chunk: Buffer) => {
      if (overflow) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        overflow = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (overflow || closing) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      judge(p, body);
    });
  }

  function judge(p: Pending, body: Buffer): void {
    const { req, res, requestId } = p;
    const auth = authenticate(req, body);
    const retryAfter = takeToken(p.receivedAt);
    const { delay, fault } = retryAfter === undefined ? pickFaults(p.taskId) : { delay: 0, fault: undefined };

    if (fault?.kind === 'hang') {
      record(p, 'hang', body, auth);
      return; // the socket stays open until the client gives up or close() destroys it
    }

    later(latencyMs + delay, () => {
      if (retryAfter !== undefined) {
        record(p, 429, body, auth);
        return write(res, requestId, throttled(retryAfter));
      }
      if (fault) {
        switch (fault.kind) {
          case 'reset':
            record(p, 'reset', body, auth);
            req.socket.destroy();
            return;
          case 'garbage': {
            const status = fault.status ?? 200;
            record(p, status, body, auth);
            return write(res, requestId, { status, body: GARBAGE_BODY }, 'text/html');
          }
          case 'status': {
            const answer = fault.status === 429 ? throttled(fault.retryAfterSeconds ?? 1) : serverError(fault.status);
            if (fault.status !== 429 && fault.retryAfterSeconds !== undefined) {
              answer.headers = { 'Retry-After': String(fault.retryAfterSeconds) };
            }
            record(p, fault.status, body, auth);
            return write(res, requestId, answer);
          }
          default:
            break; // latency rules never decide, hang answered above
        }
      }
      let answer: Answer;
      if (!p.route) answer = NOT_FOUND;
      else if (!auth.ok) answer = fail(401, 'APIGW.0301', `Incorrect IAM authentication information: ${auth.reason}`);
      else answer = business(p.route, body);
      record(p, answer.status, body, auth);
      write(res, requestId, answer);
    });
  }

  // Control API -------------------------------------------------------------------------
  function handleControl(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) overflow = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      const requestId = newRequestId();
      const reply = (status: number, value: unknown): void => write(res, requestId, { status, body: JSON.stringify(value) });
      if (overflow) return reply(413, { error: 'request entity too large' });
      let answer: { status: number; value: unknown };
      try {
        answer = control(req.method ?? '', req.url ?? '/', Buffer.concat(chunks, size));
      } catch (e) {
        answer = { status: 400, value: { error: e instanceof Error ? e.message : String(e) } };
      }
      reply(answer.status, answer.value);
    });
  }

  function control(method: string, rawUrl: string, raw: Buffer): { status: number; value: unknown } {
    const { path, query } = splitUrl(rawUrl);
    const json = (): Record<string, unknown> => {
      let v: unknown;
      try {
        v = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
      } catch {
        throw new TypeError('body is not valid JSON');
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError('body must be a JSON object');
      return v as Record<string, unknown>;
    };
    const ok = { status: 200, value: { ok: true } };
    const route = `${method} ${path}`;

    if (route === 'POST /_sim/tasks') {
      const list = json().tasks;
      if (!Array.isArray(list)) throw new TypeError('tasks must be an array');
      const seeds = list.map((t: unknown, i) => {
        if (typeof t !== 'object' || t === null) throw new TypeError(`tasks[${i}] must be an object`);
        const o = t as Record<string, unknown>;
        if (typeof o.task_id !== 'string' || o.task_id === '') throw new TypeError(`tasks[${i}].task_id must be a string`);
        if (o.enabled !== undefined && typeof o.enabled !== 'boolean') throw new TypeError(`tasks[${i}].enabled must be a boolean`);
        if (o.requires_ticket !== undefined && typeof o.requires_ticket !== 'boolean') throw new TypeError(`tasks[${i}].requires_ticket must be a boolean`);
        if (o.owner !== undefined && o.owner !== 'self' && o.owner !== 'other') throw new TypeError(`tasks[${i}].owner must be "self" or "other"`);
        return { taskId: o.task_id, seed: { enabled: o.enabled, requiresTicket: o.requires_ticket, owner: o.owner } as SimTaskSeed };
      });
      for (const s of seeds) sim.seedTask(s.taskId, s.seed);
      return { status: 200, value: { seeded: seeds.length } };
    }
    if (route === 'GET /_sim/tasks') {
      return { status: 200, value: { tasks: [...tasks.keys()].map((id) => ({ taskId: id, ...sim.task(id) })) } };
    }
    if (method === 'GET' && path.startsWith('/_sim/tasks/')) {
      const id = decodeURIComponent(path.slice('/_sim/tasks/'.length));
      const t = sim.task(id);
      return t ? { status: 200, value: { taskId: id, ...t } } : { status: 404, value: { error: 'no such task' } };
    }
    if (route === 'POST /_sim/faults') {
      const b = json();
      const times = b.times === 'Infinity' || b.times === 'infinity' ? Infinity : b.times ?? undefined;
      const taskId = b.task_id ?? b.taskId;
      sim.injectFault({
        fault: b.fault as SimFault,
        ...(times !== undefined && { times: times as number }),
        ...(taskId !== undefined && { taskId: taskId as string }),
        ...(b.probability !== undefined && { probability: b.probability as number }),
      });
      return { status: 200, value: { ok: true, rules: rules.length } };
    }
    if (route === 'DELETE /_sim/faults') {
      sim.clearFaults();
      return ok;
    }
    if (route === 'POST /_sim/latency') {
      sim.setLatency(json().ms as number);
      return ok;
    }
    if (route === 'POST /_sim/rate-limit') {
      const b = json();
      if (!('per_second' in b)) throw new TypeError('per_second is required (a number, or null for no limit)');
      sim.setRateLimit(b.per_second === null ? undefined : (b.per_second as number));
      return ok;
    }
    if (route === 'GET /_sim/stats') return { status: 200, value: sim.stats() };
    if (route === 'GET /_sim/requests') {
      const params = new URLSearchParams(query);
      let list = sim.requests();
      const taskId = params.get('task_id');
      if (taskId) list = list.filter((r) => r.taskId === taskId);
      const limit = Number(params.get('limit') ?? NaN);
      if (Number.isInteger(limit) && limit >= 0) list = limit === 0 ? [] : list.slice(-limit);
      return { status: 200, value: { requests: list } };
    }
    if (route === 'DELETE /_sim/requests') {
      sim.clearRequests();
      return ok;
    }
    if (route === 'POST /_sim/reset') {
      sim.reset();
      return ok;
    }
    return { status: 404, value: { error: `no control route ${method} ${path}`, help: CONTROL_API_HELP } };
  }

  // Server ------------------------------------------------------------------------------
  const server = http.createServer((req, res) => {
    if (req.url !== undefined && req.url.startsWith('/_sim/')) handleControl(req, res);
    else handleApi(req, res);
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000; // must exceed keepAliveTimeout
  server.requestTimeout = 0; // a hanging answer is the point of the 'hang' fault
  server.on('connection', (socket: Socket) => socket.setNoDelay(true));

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen({ host, port: options.port ?? 0 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const sim: CocSimulator = {
    url: `http://${host}:${port}`,
    port,
    seedTask(taskId, seed = {}) {
      if (typeof taskId !== 'string' || taskId === '') throw new TypeError('taskId must be a non-empty string');
      tasks.set(taskId, {
        enabled: seed.enabled ?? false,
        requiresTicket: seed.requiresTicket ?? false,
        owner: seed.owner ?? 'self',
        enableCount: 0,
      });
    },
    task(taskId) {
      const t = tasks.get(taskId);
      return t && { ...t };
    },
    injectFault(rule) {
      rules.push(checkRule(rule));
    },
    clearFaults() {
      rules = [];
    },
    setLatency,
    setRateLimit,
    requests() {
      return recordedNext === 0 ? recorded.slice() : [...recorded.slice(recordedNext), ...recorded.slice(0, recordedNext)];
    },
    clearRequests() {
      recorded = [];
      recordedNext = 0;
    },
    stats() {
      return { requests: requestCount, byStatus: { ...byStatus } };
    },
    reset() {
      tasks.clear();
      rules = [];
      sim.clearRequests();
      requestCount = 0;
      byStatus = {};
      generation += 1;
      restoreOptions();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
  return sim;
}
