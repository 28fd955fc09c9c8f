/**
 * Property-based fuzzing of the three doors with fast-check, at least 10,000 generated inputs
 * per door (FUZZ_RUNS overrides; FUZZ_SEED replays a run), through the real handlers and the
 * runtime createRuntime builds from configuration, with one substitution: the two operations of
 * its COC client (the CocOperations seam the workflow calls) are a recording fake's, so a run
 * costs microseconds and every COC call is counted exactly. Nothing here sleeps or touches the
 * network.
 *
 * Inputs: random JSON; near-valid approvals / task inputs (a valid one with 1-3 mutations:
 * dropped and duplicated keys, wrong types, boundary lengths 0/1/255/256 (scope_id 0/1/50/51,
 * approval_id 0/1/128/129, approver 256/257), task ids of 24/25/26/27 characters, 0/1000/1001
 * task ids and ticket_infos, unicode with lone surrogates, RTL and control characters, huge and
 * odd number literals (1e400, -0, 2^53+1, 30 digits), nested arrays); and own keys `__proto__`,
 * `constructor`, `prototype` (the JSON text is built by hand and parsed with JSON.parse, so they
 * are own keys, as a parsed request body has them).
 *
 * Every input is judged by an independent model of the documented contract (DESIGN.md and the
 * validation rules of lib/domain.ts, written out again here) and the door must agree with it:
 *  - stepfunctions: returns { approvalId, outcomes } or throws an EnablerError with a catalogue name;
 *  - eventbridge: returns (outcomes, `ignored`, or outcomes + error for a refused input) or throws
 *    a catalogue error;
 *  - webhook (each body signed with `standardwebhooks`, or deliberately not): exactly the status
 *    the documented order of checks gives (405, 413, 415, 401, 400, 422, 202, 200): never a 5xx
 *    for a client's mistake, never a stack trace;
 *  - no COC call unless the model says the input is valid (and not stale); then one call per
 *    distinct task id;
 *  - a refused input yields one failure outcome per readable task id (readableTaskIds), no more;
 *  - Object.prototype and Array.prototype are untouched afterwards, ({}).polluted is undefined.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { handler as eventbridgeHandler } from '../functions/eventbridge';
import { handler as stepfunctionsHandler } from '../functions/stepfunctions';
import { handler as webhookHandler } from '../functions/webhook';
import type { CallOptions, CocOperations, EnableResult, TaskState } from '../lib/coc/client';
import { loadConfig } from '../lib/config';
import type { Credentials } from '../lib/credentials';
import { readableTaskIds, type Outcome, type TicketInfo } from '../lib/domain';
import { EnablerError, type ErrorName } from '../lib/errors';
import { silentLogger } from '../lib/log';
import { createRuntime, resetRuntime, type Runtime } from '../lib/runtime';
import { MemorySink } from '../lib/sink';
import { localContext } from '../scripts/cli';
import httpApiSample from '../events/webhook-approved.json';
import { captureOutput, registerSecret } from './support/leak-capture';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const fcParams = <T>(): fc.Parameters<T> => ({ numRuns: RUNS, ...(SEED !== undefined && { seed: SEED }), endOnFailure: false });

const CATALOGUE: ErrorName[] = [
  'InvalidApproval',
  'TaskNotFound',
  'TaskNotOwned',
  'TicketRejected',
  'CocAuthFailed',
  'CocThrottled',
  'CocUnavailable',
  'CocRejected',
  'CredentialsUnavailable',
  'EventDeliveryFailed',
  'InvalidConfiguration',
];

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const FORGER = `whsec_${randomBytes(32).toString('base64')}`;
const CREDS: Credentials = { ak: `FUZZ${randomBytes(8).toString('hex').toUpperCase()}`.slice(0, 20), sk: `fuzz-sk-${randomBytes(16).toString('hex')}` };
const BODY_LIMIT = 256 * 1024;
const MAX_AGE_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------
// The recording COC and the runtime

/** Task ids ending in 0 do not exist; ending in 1 are already enabled; the rest get enabled. */
class RecordingCoc implements CocOperations {
  calls: string[] = [];
  async enableScheduledTask(taskId: string, _tickets: TicketInfo[], _opts?: CallOptions): Promise<EnableResult> {
    this.calls.push(taskId);
    if (taskId.endsWith('0')) throw new EnablerError('TaskNotFound', `task ${taskId} does not exist`, { code: 'COC.00014102', status: 404 });
    return { outcome: taskId.endsWith('1') ? 'already_enabled' : 'enabled', attempts: 1, requestId: `req-${this.calls.length}` };
  }
  async showScheduledTask(taskId: string): Promise<TaskState> {
    this.calls.push(`show:${taskId}`);
    return { taskId, enabled: false, attempts: 1 };
  }
}

const coc = new RecordingCoc();
const sink = new MemorySink();

/**
 * The runtime exactly as createRuntime builds it from configuration, except that its COC client's
 * two operations (the CocOperations seam the workflow calls) are the recording fake's.
 */
function installRuntime(): Runtime {
  const config = loadConfig({ COC_ENDPOINT: 'http://127.0.0.1:9', WEBHOOK_SECRET: SECRET, MAX_APPROVAL_AGE_SECONDS: String(MAX_AGE_MS / 1000) });
  const credentials = { get: async () => CREDS, refresh: async () => CREDS };
  const rt = createRuntime(config, { credentials, sink, log: silentLogger });
  const client = rt.coc as unknown as CocOperations;
  client.enableScheduledTask = coc.enableScheduledTask.bind(coc);
  client.showScheduledTask = coc.showScheduledTask.bind(coc);
  resetRuntime(rt);
  return rt;
}

function resetRun(): void {
  coc.calls.length = 0;
  sink.outcomes.length = 0;
}

// ---------------------------------------------------------------------------------------------
// Prototype pollution guard

/** The own keys of a prototype with each property's value, getter and setter (by identity). */
type Snapshot = Array<[PropertyKey, unknown, unknown, unknown]>;
const snapshot = (o: object): Snapshot =>
  Reflect.ownKeys(o).map((k) => {
    const d = Object.getOwnPropertyDescriptor(o, k)!;
    return [k, d.value, d.get, d.set];
  });
const sameSnapshot = (a: Snapshot, b: Snapshot) => a.length === b.length && a.every((x, i) => x.every((v, j) => v === b[i]![j]));
let objectProto: Snapshot;
let arrayProto: Snapshot;

/** Cheap assertions for the hot path (fast-check reports the input that broke one). */
function check(ok: boolean, what: string, detail?: unknown): void {
  if (!ok) throw new Error(`${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)?.slice(0, 2000)}`}`);
}
const same = (actual: unknown, expected: unknown, what: string) => {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  check(a === e, what, { actual: a?.slice(0, 1000), expected: e?.slice(0, 1000) });
};

function checkNoPollution(): void {
  check(({} as Record<string, unknown>).polluted === undefined, '({}).polluted is defined');
  check(([] as unknown as Record<string, unknown>).polluted === undefined, '[].polluted is defined');
  check(Object.getPrototypeOf({}) === Object.prototype, 'the prototype of {} changed');
  check(sameSnapshot(snapshot(Object.prototype), objectProto), 'Object.prototype changed');
  check(sameSnapshot(snapshot(Array.prototype), arrayProto), 'Array.prototype changed');
}

function expectNoPollution(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  expect(sameSnapshot(snapshot(Object.prototype), objectProto)).toBe(true);
  expect(sameSnapshot(snapshot(Array.prototype), arrayProto)).toBe(true);
}

// ---------------------------------------------------------------------------------------------
// JSON text built by hand: duplicate keys, own __proto__ keys and raw number literals survive.

class Raw {
  constructor(readonly text: string) {}
}
class Obj {
  constructor(readonly entries: Array<[string, Val]>) {}
}
type Val = null | boolean | number | string | Raw | Obj | Val[];

function toText(v: Val): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Obj) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${toText(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(toText).join(',')}]`;
  return JSON.stringify(v);
}

/** Set (replace every occurrence) or add a key. */
const setKey = (o: Obj, key: string, value: Val): Obj => {
  const has = o.entries.some(([k]) => k === key);
  return new Obj(has ? o.entries.map(([k, x]) => [k, k === key ? value : x]) : [...o.entries, [key, value]]);
};
const dropKey = (o: Obj, key: string): Obj => new Obj(o.entries.filter(([k]) => k !== key));
const dupKey = (o: Obj, key: string, value: Val): Obj => new Obj([...o.entries, [key, value]]);
const getKey = (o: Obj, key: string): Val | undefined => o.entries.filter(([k]) => k === key).at(-1)?.[1];

const fromJson = (v: unknown): Val => {
  if (Array.isArray(v)) return v.map(fromJson);
  if (typeof v === 'object' && v !== null) return new Obj(Object.entries(v).map(([k, x]) => [k, fromJson(x)]));
  if (typeof v === 'number' && !Number.isFinite(v)) return null;
  return v as Val;
};

// ---------------------------------------------------------------------------------------------
// Arbitraries

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const alnum = (n: number) => fc.string({ unit: fc.constantFrom(...ALNUM), minLength: n, maxLength: n });
const validTaskId = alnum(24).map((s) => `ST${s}`);
const VALID_IDS_1000 = Array.from({ length: 1001 }, (_, i) => `ST${String(i).padStart(24, 'F')}`);

const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff', 'a\ud800b', '\udc00\ud800'];
const ODD_TEXT = [
  ...LONE_SURROGATES,
  '\u202eDEVORPPA', // RTL override
  'שלום',
  'مرحبا',
  '\u200f\u200e',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u2028\u2029',
  '\ufeff',
  'é',
  'e\u0301',
  '😀',
  '\ud83d\ude00',
  'ＡＰＰＲＯＶＥＤ',
  '٣',
  ' ',
  '',
];
const oddText = fc.oneof(
  fc.constantFrom(...ODD_TEXT),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.array(fc.constantFrom(...ODD_TEXT), { maxLength: 4 }).map((a) => a.join('')),
);
const RAW_NUMBERS = ['1e400', '-1e400', '-0', '9007199254740993', '123456789012345678901234567890', '1e-400', '0.1e1', '-123.456e-7', '1E+2'].map(
  (t) => new Raw(t),
);
const nestedArray: fc.Arbitrary<Val> = fc.integer({ min: 1, max: 40 }).map((depth) => {
  let v: Val = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
});
/** Objects whose own keys are the classic pollution vectors. */
const pollutionObject: fc.Arbitrary<Val> = fc
  .tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.boolean())
  .map(([key, deep]): Val => {
    const payload = new Obj([['polluted', true], ['toString', 'x'], ['ticket_infos', [new Obj([['ticket_id', 'P']])]]]);
    return new Obj([[key, deep ? new Obj([['prototype', payload], ['__proto__', payload]]) : payload]]);
  });

const sized = (n: number, ch = 'x') => ch.repeat(n);
const boundaryString = fc.constantFrom(0, 1, 24, 25, 26, 27, 50, 51, 64, 65, 128, 129, 255, 256, 257).map((n) => sized(n));

/** Any scalar-ish odd value. */
const weirdValue: fc.Arbitrary<Val> = fc.oneof(
  fc.constantFrom<Val>(null, true, false, 0, -1, 1.5, '', 'APPROVED', 'approved', [], new Obj([]), [[[]]]),
  fc.constantFrom(...RAW_NUMBERS),
  fc.double().filter(Number.isFinite),
  fc.integer(),
  oddText,
  boundaryString,
  nestedArray,
  pollutionObject,
  fc.jsonValue({ maxDepth: 2 }).map(fromJson),
);

const taskIdVariant: fc.Arbitrary<Val> = fc.oneof(
  { weight: 12, arbitrary: validTaskId },
  { weight: 3, arbitrary: fc.constantFrom(22, 23, 25, 26).chain((n) => alnum(n).map((s) => `ST${s}`)) }, // 24/25/27/28 characters in all
  { weight: 1, arbitrary: validTaskId.map((t) => t.toLowerCase()) },
  { weight: 1, arbitrary: validTaskId.map((t) => `${t}\n`) },
  { weight: 1, arbitrary: validTaskId.map((t) => ` ${t}`) },
  { weight: 1, arbitrary: fc.tuple(alnum(23), fc.constantFrom('-', '_', '٣', 'Ａ', '\ud800', '\u202e', 'é', '😀')).map(([s, c]) => `ST${s}${c}`) },
  { weight: 1, arbitrary: weirdValue },
);

const ticketInfo = (): fc.Arbitrary<Val> =>
  fc
    .record(
      {
        ticket_id: fc.oneof(alnum(8), boundaryString, oddText),
        ticket_type: fc.constantFrom<Val>('CHANGE', 'INCIDENT', 'WARROOM', 'ALARM', 'change', 'OUTAGE', '', 1, null),
        target_id: fc.oneof(alnum(6), fc.constantFrom(0, 1, 255, 256).map((n) => sized(n, 't'))),
        scope_id: fc.oneof(alnum(6), fc.constantFrom(0, 1, 50, 51).map((n) => sized(n, 's'))),
        extra: fc.constantFrom('unknown', '__proto__', 'constructor', 'prototype', 'ticketId'),
      },
      { requiredKeys: [] },
    )
    .map((r): Val => new Obj(Object.entries(r).map(([k, v]) => (k === 'extra' ? [v as string, 'x'] : [k, v as Val]))));

/** A valid TicketInfo (every field optional). */
const validTicket: fc.Arbitrary<Val> = fc
  .record(
    {
      ticket_id: fc.oneof(alnum(8), fc.constantFrom(1, 255).map((n) => sized(n, 'T'))),
      ticket_type: fc.constantFrom('CHANGE', 'INCIDENT', 'WARROOM', 'ALARM'),
      target_id: fc.oneof(alnum(6), fc.constant(sized(255, 't'))),
      scope_id: fc.oneof(alnum(6), fc.constant(sized(50, 's'))),
    },
    { requiredKeys: [] },
  )
  .map((r): Val => new Obj(Object.entries(r)));

const ticketInfosVariant: fc.Arbitrary<Val> = fc.oneof(
  { weight: 3, arbitrary: fc.array(validTicket, { maxLength: 3 }) },
  { weight: 6, arbitrary: fc.array(ticketInfo(), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(1000, 1001).map((n) => Array.from({ length: n }, (): Val => new Obj([]))) },
  { weight: 1, arbitrary: fc.constantFrom(999, 1000, 1001).map((n) => Array.from({ length: n }, (): Val => new Obj([['ticket_type', 'CHANGE']]))) },
  { weight: 2, arbitrary: weirdValue },
  { weight: 1, arbitrary: fc.array(weirdValue, { maxLength: 3 }) },
);

const taskIdsVariant: fc.Arbitrary<Val> = fc.oneof(
  { weight: 6, arbitrary: fc.array(taskIdVariant, { minLength: 1, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constant<Val>([]) },
  { weight: 1, arbitrary: fc.constantFrom(1000, 1001).map((n): Val => VALID_IDS_1000.slice(0, n)) },
  { weight: 1, arbitrary: validTaskId.map((t): Val => [t, t, t]) },
  { weight: 1, arbitrary: fc.constantFrom(1000, 1001).map((n): Val => Array.from({ length: n }, (_, i) => (i % 2 ? 'ST-bad' : VALID_IDS_1000[0]!))) },
  { weight: 2, arbitrary: weirdValue },
);

const approvalIdVariant: fc.Arbitrary<Val> = fc.oneof(
  fc.constantFrom(0, 1, 64, 128, 129).map((n) => sized(n, 'A')),
  oddText,
  weirdValue,
  fc.constant('CHG-\u0007-BELL'),
);
const decisionVariant: fc.Arbitrary<Val> = fc.oneof(
  fc.constantFrom<Val>('APPROVED', 'approved', 'Approved', 'ApPrOvEd', 'APPROVED ', ' APPROVED', 'REJECTED', 'rejected', 'PENDING', '', 'ＡＰＰＲＯＶＥＤ', 'APPROVE\u0301D'),
  fc.constantFrom(64, 65).map((n) => sized(n, 'D')),
  weirdValue,
);
const isoAgo = (ms: number) => new Date(Date.now() - ms).toISOString();
const decidedAtVariant: fc.Arbitrary<Val> = fc.oneof(
  fc.constantFrom(0, 60_000, MAX_AGE_MS - 3_600_000, MAX_AGE_MS + 3_600_000, 30 * MAX_AGE_MS, -3_600_000).map(isoAgo),
  fc.constantFrom<Val>('yesterday', '', '0', '2026-13-45T00:00:00Z', '1970-01-01', 'Tue, 01 Dec 2026 10:00:00 GMT', 1796385600000),
  weirdValue,
);
const approverVariant: fc.Arbitrary<Val> = fc.oneof(fc.constantFrom(0, 1, 256, 257).map((n) => sized(n, 'p')), oddText, weirdValue);

const KEYS_APPROVAL = ['approval_id', 'decision', 'task_id', 'task_ids', 'ticket_infos', 'approver', 'decided_at'];

const variantFor = (key: string): fc.Arbitrary<Val> => {
  switch (key) {
    case 'approval_id':
      return approvalIdVariant;
    case 'decision':
      return decisionVariant;
    case 'task_id':
      return taskIdVariant;
    case 'task_ids':
      return taskIdsVariant;
    case 'ticket_infos':
      return ticketInfosVariant;
    case 'approver':
      return approverVariant;
    case 'decided_at':
      return decidedAtVariant;
    default:
      return weirdValue;
  }
};

type Mutation = (o: Obj) => Obj;
const keyArb = fc.constantFrom(...KEYS_APPROVAL, '__proto__', 'constructor', 'prototype', 'unknown_key');
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  keyArb.map((k): Mutation => (o) => dropKey(o, k)),
  keyArb.chain((k) => variantFor(k).map((v): Mutation => (o) => setKey(o, k, v))),
  keyArb.chain((k) => variantFor(k).map((v): Mutation => (o) => dupKey(o, k, v))),
  // A duplicate that restores the original value after a bad one (last one wins).
  fc.constantFrom(...KEYS_APPROVAL).chain((k) =>
    variantFor(k).map((v): Mutation => (o) => {
      const original = getKey(o, k);
      return original === undefined ? o : dupKey(new Obj(o.entries.map(([key, x]) => [key, key === k ? v : x])), k, original);
    }),
  ),
  pollutionObject.map((p): Mutation => (o) => new Obj([...o.entries, ...(p as Obj).entries])),
  // Both task_id and task_ids.
  validTaskId.map((t): Mutation => (o) => setKey(o, 'task_id', t)),
  // A pollution key inside the first ticket.
  fc.constantFrom('__proto__', 'constructor', 'prototype').map((k): Mutation => (o) => setKey(o, 'ticket_infos', [new Obj([[k, new Obj([['polluted', true]])]])])),
);

const baseApproval: fc.Arbitrary<Obj> = fc
  .record({
    n: fc.nat(99999),
    ids: fc.array(validTaskId, { minLength: 1, maxLength: 3 }),
    single: fc.boolean(),
    decision: fc.constantFrom('APPROVED', 'approved', 'Approved', 'REJECTED'),
    tickets: fc.array(validTicket, { maxLength: 2 }),
    approver: fc.option(fc.constant('jane.doe@example.com'), { nil: undefined }),
    decidedAt: fc.option(fc.constantFrom(0, 60_000, 3_600_000, MAX_AGE_MS + 60_000).map(isoAgo), { nil: undefined }),
  })
  .map(({ n, ids, single, decision, tickets, approver, decidedAt }) => {
    const entries: Array<[string, Val]> = [
      ['approval_id', `CHG-FUZZ-${n}`],
      ['decision', decision],
      single ? ['task_id', ids[0]!] : ['task_ids', ids],
      ['ticket_infos', tickets.length ? tickets : [new Obj([['ticket_id', `CM${n}`], ['ticket_type', 'CHANGE']])]],
    ];
    if (approver) entries.push(['approver', approver]);
    if (decidedAt) entries.push(['decided_at', decidedAt]);
    return new Obj(entries);
  });

/** 0 mutations 30%, 1 mutation 40%, 2-3 mutations 30%. */
const mutations = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Mutation[]>([]) },
  { weight: 4, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.array(mutation, { minLength: 2, maxLength: 3 }) },
);

const nearValidApproval: fc.Arbitrary<Val> = fc
  .tuple(baseApproval, mutations)
  .map(([base, ms]) => ms.reduce((o, m) => m(o), base));

/** A Step Functions / schedule input: an approval without decision (extra keys are ignored). */
const nearValidTaskInput: fc.Arbitrary<Val> = fc
  .tuple(baseApproval, fc.boolean(), mutations)
  .map(([base, keepApprovalId, ms]) => {
    let o = dropKey(dropKey(dropKey(base, 'decision'), 'approver'), 'decided_at');
    if (!keepApprovalId) o = dropKey(o, 'approval_id');
    return ms.reduce((acc, m) => m(acc), o);
  });

const randomJson: fc.Arbitrary<Val> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map(fromJson),
  fc.dictionary(keyArb, weirdValue, { maxKeys: 6 }).map((d) => new Obj(Object.entries(d))),
  fc.array(fc.tuple(keyArb, weirdValue), { maxLength: 6 }).map((e) => new Obj(e)),
  weirdValue,
);

const approvalInput = fc.oneof({ weight: 3, arbitrary: nearValidApproval }, { weight: 1, arbitrary: randomJson });
const taskInput = fc.oneof({ weight: 3, arbitrary: nearValidTaskInput }, { weight: 1, arbitrary: randomJson });

// ---------------------------------------------------------------------------------------------
// The model: the documented contract, written independently of lib/domain.ts

const TASK_ID = /^ST[A-Za-z0-9]{24}$/;
const TICKET_TYPES = ['CHANGE', 'INCIDENT', 'WARROOM', 'ALARM'];
const TICKET_LIMITS: Record<string, number> = { ticket_id: 255, target_id: 255, scope_id: 50 };
type Input = Record<string, unknown>;
const isPlain = (v: unknown): v is Input => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function ticketsValid(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (!Array.isArray(v) || v.length > 1000) return false;
  return v.every(
    (t) =>
      isPlain(t) &&
      Object.keys(t).every((k) =>
        k === 'ticket_type'
          ? typeof t[k] === 'string' && TICKET_TYPES.includes(t[k] as string)
          : own(TICKET_LIMITS, k) && typeof t[k] === 'string' && (t[k] as string).length >= 1 && (t[k] as string).length <= TICKET_LIMITS[k]!,
      ),
  );
}

function taskIdsOf(input: Input): string[] | undefined {
  const one = own(input, 'task_id');
  const many = own(input, 'task_ids');
  if (one && many) return undefined;
  if (one) return typeof input.task_id === 'string' && TASK_ID.test(input.task_id) ? [input.task_id] : undefined;
  if (!many) return undefined;
  const ids = input.task_ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > 1000) return undefined;
  if (!ids.every((t) => typeof t === 'string' && TASK_ID.test(t))) return undefined;
  return [...new Set(ids as string[])];
}

const approvalIdValid = (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= 128 && !/[\u0000-\u001f]/.test(v);

type Verdict = { kind: 'invalid' } | { kind: 'ignored'; decision: string } | { kind: 'valid'; taskIds: string[]; stale: boolean };

function judgeTaskInput(input: unknown): Verdict {
  if (!isPlain(input)) return { kind: 'invalid' };
  const taskIds = taskIdsOf(input);
  if (!taskIds || !ticketsValid(input.ticket_infos)) return { kind: 'invalid' };
  if (own(input, 'approval_id') && !approvalIdValid(input.approval_id)) return { kind: 'invalid' };
  return { kind: 'valid', taskIds, stale: false };
}

function judgeApproval(input: unknown): Verdict {
  if (!isPlain(input) || !approvalIdValid(input.approval_id)) return { kind: 'invalid' };
  const { decision } = input;
  if (typeof decision !== 'string' || decision.length === 0 || decision.length > 64) return { kind: 'invalid' };
  if (own(input, 'approver') && (typeof input.approver !== 'string' || input.approver.length > 256)) return { kind: 'invalid' };
  let stale = false;
  if (own(input, 'decided_at')) {
    if (typeof input.decided_at !== 'string' || Number.isNaN(Date.parse(input.decided_at))) return { kind: 'invalid' };
    stale = Date.now() - Date.parse(input.decided_at) > MAX_AGE_MS;
  }
  if (decision.toUpperCase() !== 'APPROVED') return { kind: 'ignored', decision: decision.toUpperCase() };
  const taskIds = taskIdsOf(input);
  if (!taskIds || !ticketsValid(input.ticket_infos)) return { kind: 'invalid' };
  return { kind: 'valid', taskIds, stale };
}

/** The strings a refusal can name tasks by: one outcome each at most, at least one if any. */
function candidateIds(input: unknown): string[] {
  if (!isPlain(input)) return [];
  const raw = own(input, 'task_ids') ? input.task_ids : own(input, 'task_id') ? [input.task_id] : [];
  return Array.isArray(raw) ? [...new Set(raw.filter((t): t is string => typeof t === 'string' && t.length > 0))] : [];
}

const sorted = (a: string[]) => [...a].sort();

/** A refused input: one failure outcome per readable task id, published, and no COC call. */
function checkRefusalOutcomes(input: unknown, outcomes: Outcome[]): void {
  same(outcomes.map((o) => o.taskId), readableTaskIds(input), 'failure outcomes are not one per readable task id');
  const candidates = candidateIds(input);
  check(outcomes.length <= Math.min(candidates.length, 1000), 'more failure outcomes than task ids in the input', candidates.length);
  check(candidates.length === 0 || outcomes.length > 0, 'task ids in the input, but no failure outcome');
  for (const o of outcomes) {
    check(o.outcome === 'failed' && o.attempts === 0 && o.error?.name === 'InvalidApproval' && o.error.retryable === false, 'not an InvalidApproval failure', o);
  }
  check(sink.outcomes.length === outcomes.length && outcomes.every((o, i) => o.idempotencyKey === sink.outcomes[i]!.idempotencyKey), 'published outcomes differ');
  check(coc.calls.length === 0, 'COC was called for an invalid input', coc.calls);
}

/**
 * A valid input: one COC call and one outcome per distinct task id. Returned outcomes keep the
 * input's order; published ones (the sink) may come in completion order.
 */
function checkEnabledAsModelled(taskIds: string[], outcomes: Outcome[], ordered = true): void {
  same(sorted(coc.calls), sorted(taskIds), 'COC calls are not one per distinct task id');
  const ids = outcomes.map((o) => o.taskId);
  same(ordered ? ids : sorted(ids), ordered ? taskIds : sorted(taskIds), 'outcomes are not one per distinct task id');
  for (const o of outcomes) {
    const expected = o.taskId.endsWith('0') ? 'failed' : o.taskId.endsWith('1') ? 'already_enabled' : 'enabled';
    check(o.outcome === expected, `outcome ${o.outcome}, expected ${expected}`, o);
  }
  check(sink.outcomes.length === outcomes.length, 'published outcomes differ');
}

function checkStaleRefusal(taskIds: string[], outcomes: Outcome[]): void {
  check(coc.calls.length === 0, 'COC was called for a stale approval', coc.calls);
  same(outcomes.map((o) => [o.taskId, o.outcome, o.error?.name, o.error?.code]), taskIds.map((t) => [t, 'failed', 'InvalidApproval', 'Stale']), 'stale approval');
}

const isCatalogueError = (e: unknown): e is EnablerError => e instanceof EnablerError && CATALOGUE.includes(e.name);

const stats = new Map<string, Record<string, number>>();
const count = (door: string, key: string) => {
  const s = stats.get(door) ?? {};
  s[key] = (s[key] ?? 0) + 1;
  stats.set(door, s);
};
/** Which of the interesting shapes an input had, to show they were generated (reported at the end). */
const FEATURES: Array<[string, RegExp]> = [
  ['own __proto__ key', /"__proto__":/],
  ['own constructor/prototype key', /"(constructor|prototype)":/],
  ['lone surrogate', /\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/i],
  ['RTL', /[\u202e\u200f\u05d0-\u05ea\u0600-\u06ff]/],
  ['huge/odd number literal', /1e400|9007199254740993|123456789012345678901234567890|-0[,}\]]/],
  ['1000+ element array', /(?:\{\},?){1000}|(?:"ST[A-Za-z0-9-]+",?){1000}|(?:\{"ticket_type":"CHANGE"\},?){999}/],
  ['duplicate key', /("[a-z_]+"):.*\1:/],
  ['nested arrays (depth 5+)', /\[\[\[\[\[/],
];
function countFeatures(door: string, text: string): void {
  for (const [name, re] of FEATURES) if (re.test(text)) count(`${door} features`, name);
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  registerSecret(SECRET, FORGER, { ak: CREDS.ak, sk: CREDS.sk });
  installRuntime();
  // The seam is wired: a valid input reaches the recording COC (and nothing else).
  const taskId = `ST${'F'.repeat(24)}`;
  await stepfunctionsHandler({ task_id: taskId }, localContext('stepfunctions'));
  expect(coc.calls).toEqual([taskId]);
  expect(sink.outcomes.map((o) => [o.taskId, o.outcome])).toEqual([[taskId, 'enabled']]);
  resetRun();
  objectProto = snapshot(Object.prototype);
  arrayProto = snapshot(Array.prototype);
});

afterEach(() => expectNoPollution());

afterAll(() => {
  resetRuntime();
  for (const [door, s] of stats) console.info(`fuzz ${door}: ${JSON.stringify(s)}`);
  captureOutput('fuzz stats', Object.fromEntries(stats));
});

const FUZZ_TIMEOUT = 240_000;

describe(`fuzz: ${RUNS} generated inputs per door`, () => {
  it(
    'stepfunctions: returns { approvalId, outcomes } or throws a catalogue error, as the model says',
    async () => {
      const started = performance.now();
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(taskInput, async (value) => {
          runs++;
          resetRun();
          const text = toText(value);
          const input: unknown = JSON.parse(text);
          const verdict = judgeTaskInput(JSON.parse(text));
          countFeatures('stepfunctions', text);
          let result: Awaited<ReturnType<typeof stepfunctionsHandler>> | undefined;
          let error: unknown;
          try {
            result = await stepfunctionsHandler(input, localContext('stepfunctions'));
          } catch (e) {
            error = e;
          }
          if (runs % 500 === 0) captureOutput('fuzz stepfunctions', result ?? error);
          check(error === undefined || isCatalogueError(error), 'not a catalogue error', String(error));
          count('stepfunctions', error ? `threw ${(error as Error).name}` : 'returned');
          checkNoPollution();
          if (verdict.kind === 'invalid') {
            check((error as Error | undefined)?.name === 'InvalidApproval', 'an invalid input did not throw InvalidApproval', String(error));
            checkRefusalOutcomes(JSON.parse(text), sink.outcomes);
            return;
          }
          if (verdict.kind !== 'valid') throw new Error('unreachable');
          if (verdict.taskIds.some((t) => t.endsWith('0'))) {
            check((error as Error | undefined)?.name === 'TaskNotFound', 'a missing task did not throw TaskNotFound', String(error));
            checkEnabledAsModelled(verdict.taskIds, sink.outcomes, false);
          } else {
            check(error === undefined, 'a valid input threw', String(error));
            checkEnabledAsModelled(verdict.taskIds, result!.outcomes);
          }
        }),
        fcParams(),
      );
      expect(runs).toBeGreaterThanOrEqual(RUNS);
      console.info(`fuzz stepfunctions: ${runs} inputs in ${Math.round(performance.now() - started)} ms`);
    },
    FUZZ_TIMEOUT,
  );

  it(
    'eventbridge: returns (or throws a catalogue error) as the model says, rule deliveries and schedules',
    async () => {
      const started = performance.now();
      let runs = 0;
      const envelope = fc.oneof(
        { weight: 9, arbitrary: fc.record({ detailType: fc.constant<Val>('Change Approval Decided'), source: fc.constant<Val>('com.example.approvals'), withDetail: fc.constant(true), id: fc.uuid() }) },
        {
          weight: 1,
          arbitrary: fc.record({
            detailType: fc.constantFrom<Val>('Change Approval Decided', 'Scheduled Event', 1, null),
            source: fc.constantFrom<Val>('com.example.approvals', 'aws.events', null, ''),
            withDetail: fc.boolean(),
            id: fc.oneof(fc.uuid(), fc.constant('')),
          }),
        },
      );
      const event = fc.oneof(
        { weight: 3, arbitrary: fc.tuple(envelope, approvalInput).map(([e, detail]) => ({ kind: 'rule' as const, e, detail })) },
        { weight: 2, arbitrary: taskInput.map((input) => ({ kind: 'schedule' as const, input })) },
      );
      await fc.assert(
        fc.asyncProperty(event, async (gen) => {
          runs++;
          resetRun();
          const value: Val =
            gen.kind === 'schedule'
              ? gen.input
              : new Obj([
                  ['version', '0'],
                  ['id', gen.e.id],
                  ['detail-type', gen.e.detailType],
                  ['source', gen.e.source],
                  ['account', '123456789012'],
                  ['time', '2026-12-04T12:00:00Z'],
                  ['region', 'eu-west-1'],
                  ['resources', ['arn:aws:events:eu-west-1:123456789012:rule/r']],
                  ...(gen.e.withDetail ? [['detail', gen.detail] as [string, Val]] : []),
                ]);
          const text = toText(value);
          const input = JSON.parse(text) as unknown;
          countFeatures('eventbridge', text);
          const parsed = JSON.parse(text) as unknown;
          const rule = isPlain(parsed) && typeof parsed['detail-type'] === 'string' && typeof parsed.source === 'string' && 'detail' in parsed;
          const inputless = rule && parsed.source === 'aws.events' && parsed['detail-type'] === 'Scheduled Event';
          const refusedInput = rule ? (parsed as Input).detail : parsed;
          const verdict: Verdict = inputless ? { kind: 'invalid' } : rule ? judgeApproval(refusedInput) : judgeTaskInput(parsed);

          let result: Awaited<ReturnType<typeof eventbridgeHandler>> | undefined;
          let error: unknown;
          try {
            result = await eventbridgeHandler(input, localContext('eventbridge'));
          } catch (e) {
            error = e;
          }
          if (runs % 500 === 0) captureOutput('fuzz eventbridge', result ?? error);
          count('eventbridge', `${rule ? 'rule' : 'schedule'} ${verdict.kind}${verdict.kind === 'valid' && verdict.stale ? ' stale' : ''}`);
          checkNoPollution();
          if (error !== undefined) {
            check(isCatalogueError(error), 'not a catalogue error', String(error));
            // The recording COC never fails transiently, so nothing should be handed back.
            throw new Error(`unexpected throw: ${String(error)}`);
          }
          const r = result as Record<string, unknown>;
          if (verdict.kind === 'invalid') {
            const e = r.error as Record<string, unknown> | undefined;
            check(e?.name === 'InvalidApproval' && e.retryable === false, 'a refused input returned no InvalidApproval', r);
            checkRefusalOutcomes(inputless ? {} : refusedInput, r.outcomes as Outcome[]);
          } else if (verdict.kind === 'ignored') {
            same(r, { status: 'ignored', decision: verdict.decision, approvalId: (refusedInput as Input).approval_id }, 'not ignored');
            check(coc.calls.length === 0 && sink.outcomes.length === 0, 'an ignored approval did something');
          } else if (verdict.stale) {
            checkStaleRefusal(verdict.taskIds, r.outcomes as Outcome[]);
          } else {
            check(r.error === undefined, 'a valid input returned an error', r.error);
            checkEnabledAsModelled(verdict.taskIds, r.outcomes as Outcome[]);
          }
        }),
        fcParams(),
      );
      expect(runs).toBeGreaterThanOrEqual(RUNS);
      console.info(`fuzz eventbridge: ${runs} inputs in ${Math.round(performance.now() - started)} ms`);
    },
    FUZZ_TIMEOUT,
  );

  it(
    'webhook: every (signed) body gets exactly its documented status, never a 5xx or a stack trace, COC only when valid',
    async () => {
      const started = performance.now();
      let runs = 0;
      const signer = new Webhook(SECRET);
      const forger = new Webhook(FORGER);
      const JSON_TYPES: Array<[string | undefined, boolean]> = [
        ['application/json', true],
        ['application/json; charset=utf-8', true],
        ['Application/JSON;Charset="UTF-8"', true],
        ['application/vnd.approvals+json', true],
      ];
      const OTHER_TYPES: Array<[string | undefined, boolean]> = [
        ['text/plain', false],
        ['application/jsonp', false],
        ['application/json; charset=iso-8859-1', false],
        ['', false],
        [undefined, false],
      ];
      type Signing = 'ok' | 'forged' | 'expired' | 'future' | 'other-body' | 'missing' | 'rotated' | 'bad-timestamp';
      const BAD_SIGNINGS: Signing[] = ['forged', 'expired', 'future', 'other-body', 'missing', 'bad-timestamp'];
      const body = fc.oneof(
        { weight: 40, arbitrary: approvalInput.map((v) => ({ text: toText(v), bytes: undefined as Buffer | undefined })) },
        // Not JSON, or not UTF-8 (sent base64-encoded), or with a byte order mark.
        { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((text) => ({ text, bytes: undefined as Buffer | undefined })) },
        { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => ({ text: '', bytes: Buffer.from(b) })) },
        { weight: 1, arbitrary: approvalInput.map((v) => ({ text: '', bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(toText(v))]) })) },
        // Around the body limit (rare: signing 256 KiB costs milliseconds).
        {
          weight: 1,
          arbitrary: fc.constantFrom(BODY_LIMIT, BODY_LIMIT + 1).map((n) => {
            const head = toText(new Obj([['approval_id', 'CHG-BIG'], ['decision', 'REJECTED'], ['approver', '']]));
            return { text: `${head.slice(0, -1)}${' '.repeat(n - head.length)}}`, bytes: undefined as Buffer | undefined };
          }),
        },
      );
      const request = fc.record({
        body,
        contentType: fc.oneof({ weight: 17, arbitrary: fc.constantFrom(...JSON_TYPES) }, { weight: 1, arbitrary: fc.constantFrom(...OTHER_TYPES) }),
        signing: fc.oneof(
          { weight: 16, arbitrary: fc.constant<Signing>('ok') },
          { weight: 1, arbitrary: fc.constant<Signing>('rotated') },
          { weight: 2, arbitrary: fc.constantFrom(...BAD_SIGNINGS) },
        ),
        method: fc.oneof({ weight: 30, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'post') }),
        base64: fc.boolean(),
        oddHeaders: fc.boolean(),
      });
      const nowS = () => Math.floor(Date.now() / 1000);

      await fc.assert(
        fc.asyncProperty(request, async (req) => {
          runs++;
          resetRun();
          const raw = req.body.bytes ?? Buffer.from(req.body.text, 'utf8');
          countFeatures('webhook', req.body.text);
          const id = `msg_${runs}`;
          const ts = req.signing === 'expired' ? nowS() - 301 - 5 : req.signing === 'future' ? nowS() + 301 + 5 : nowS();
          const date = new Date(ts * 1000);
          const good = signer.sign(id, date, raw);
          const signatures: Record<Signing, string | undefined> = {
            ok: good,
            rotated: `${forger.sign(id, date, raw)} ${good}`,
            forged: forger.sign(id, date, raw),
            expired: good,
            future: good,
            'other-body': signer.sign(id, date, Buffer.concat([raw, Buffer.from(' ')])),
            missing: undefined,
            'bad-timestamp': good,
          };
          const headers: Record<string, string> = JSON.parse(
            req.oddHeaders ? '{"__proto__":"x","constructor":"y","x-prototype":"z"}' : '{}',
          ) as Record<string, string>;
          headers.host = 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com';
          if (req.contentType[0] !== undefined) headers['content-type'] = req.contentType[0];
          headers['webhook-id'] = id;
          headers['webhook-timestamp'] = req.signing === 'bad-timestamp' ? `${ts}abc` : String(ts);
          const sig = signatures[req.signing];
          if (sig !== undefined) headers['webhook-signature'] = sig;
          const base64 = req.body.bytes !== undefined || req.base64;
          const event = {
            ...httpApiSample,
            headers,
            requestContext: { ...httpApiSample.requestContext, http: { ...httpApiSample.requestContext.http, method: req.method } },
            body: base64 ? raw.toString('base64') : raw.toString('utf8'),
            isBase64Encoded: base64,
          };

          // The documented order: 405, 413, 415, 401, 400 (UTF-8), 400 (JSON), then the model.
          let expected: number;
          let parsed: unknown;
          let verdict: Verdict | undefined;
          const signedOk = req.signing === 'ok' || req.signing === 'rotated';
          if (req.method.toUpperCase() !== 'POST') expected = 405; // the door upper-cases the method
          else if (raw.length > BODY_LIMIT) expected = 413;
          else if (!req.contentType[1]) expected = 415;
          else if (!signedOk) expected = 401;
          else {
            const roundTrips = Buffer.from(raw.toString('utf8'), 'utf8').equals(raw);
            let text = raw.toString('utf8');
            if (text.startsWith('\ufeff')) text = text.slice(1); // a UTF-8 decoder drops the BOM
            let isJson = true;
            try {
              parsed = JSON.parse(text);
            } catch {
              isJson = false;
            }
            if (!roundTrips || !isJson) expected = 400;
            else {
              verdict = judgeApproval(parsed);
              // A stale approval is refused like an invalid one (422), its failure outcomes published.
              expected = verdict.kind === 'invalid' || (verdict.kind === 'valid' && verdict.stale) ? 422 : verdict.kind === 'ignored' ? 202 : 200;
            }
          }

          const res = (await webhookHandler(event as never, localContext('webhook'))) as { statusCode: number; headers: Record<string, string>; body: string };
          if (runs % 500 === 0) captureOutput('fuzz webhook', res);
          count('webhook', String(res.statusCode));
          checkNoPollution();
          check(res.statusCode === expected, `status ${res.statusCode}, expected ${expected}`, { body: raw.toString('utf8').slice(0, 300), answer: res.body.slice(0, 300) });
          check([200, 202, 400, 401, 405, 413, 415, 422].includes(res.statusCode), 'a status a client mistake must not get');
          check(res.headers['content-type'] === 'application/json', 'not a JSON answer', res.headers);
          check(!/\bat .+:\d+:\d+|node_modules|\.ts:\d+|\n\s+at /.test(res.body), 'a stack trace in the answer', res.body.slice(0, 500));
          const answer = JSON.parse(res.body) as Record<string, unknown>;
          if (res.statusCode === 401) same(answer, { error: 'Unauthorized' }, '401 body');
          if (verdict?.kind === 'valid' && !verdict.stale) {
            checkEnabledAsModelled(verdict.taskIds, answer.outcomes as Outcome[]);
          } else if (verdict?.kind === 'valid') {
            check(answer.error === 'InvalidApproval' && answer.code === 'Stale', '422 without InvalidApproval / Stale', answer);
            checkStaleRefusal(verdict.taskIds, sink.outcomes);
          } else if (verdict?.kind === 'invalid') {
            check(answer.error === 'InvalidApproval', '422 without InvalidApproval', answer);
            checkRefusalOutcomes(parsed, sink.outcomes);
          } else {
            check(coc.calls.length === 0 && sink.outcomes.length === 0, `a ${res.statusCode} did something`, coc.calls);
          }
        }),
        fcParams(),
      );
      expect(runs).toBeGreaterThanOrEqual(RUNS);
      console.info(`fuzz webhook: ${runs} inputs in ${Math.round(performance.now() - started)} ms`);
    },
    FUZZ_TIMEOUT,
  );
});
