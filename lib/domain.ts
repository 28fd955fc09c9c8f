/**
 * Domain vocabulary (DESIGN.md) and input validation. Everything a door receives is
 * normalized into an EnableRequest here, or rejected with InvalidApproval naming the field.
 * Validation is strict so invalid input never reaches COC.
 */
import { InvalidApproval } from './errors';
import type { EnablerError } from './errors';

export const TICKET_TYPES = ['CHANGE', 'INCIDENT', 'WARROOM', 'ALARM'] as const;
export type TicketType = (typeof TICKET_TYPES)[number];

/** COC's TicketInfo, passed through as `ticket_infos`. All fields optional. */
export interface TicketInfo {
  ticket_id?: string;
  ticket_type?: TicketType;
  target_id?: string;
  scope_id?: string;
}

export type Trigger = 'webhook' | 'eventbridge' | 'schedule' | 'stepfunctions' | 'cli';

export interface EnableRequest {
  /** The approval / change id that authorized this: the correlation id. */
  approvalId: string;
  taskIds: string[];
  ticketInfos: TicketInfo[];
  trigger: Trigger;
  /** Delivery id from the trigger (webhook-id, EventBridge event id); feeds the idempotency key. */
  deliveryId?: string;
  /** When the approval was decided (ISO 8601), for the maximum-age guard. */
  decidedAt?: string;
}

export type OutcomeKind = 'enabled' | 'already_enabled' | 'failed' | 'would_enable';

/** Exactly one per task per request. */
export interface Outcome {
  taskId: string;
  approvalId: string;
  trigger: Trigger;
  outcome: OutcomeKind;
  ticketIds: string[];
  cocRequestId?: string;
  error?: { name: string; code?: string; message: string; status?: number; retryable: boolean };
  attempts: number;
  durationMs: number;
  idempotencyKey: string;
  dryRun?: boolean;
  /** Read back with ShowScheduledTask after enabling (when configured). */
  verified?: boolean;
  /** When the outcome was decided (ISO 8601). */
  time: string;
}

export const isSuccess = (o: Outcome): boolean => o.outcome !== 'failed';

export const TASK_ID_PATTERN = /^ST[A-Za-z0-9]{24}$/;
export const MAX_TICKET_INFOS = 1000;
export const MAX_TASK_IDS = 1000;
const TICKET_FIELD_LIMITS = { ticket_id: 255, target_id: 255, scope_id: 50 } as const;
const APPROVAL_ID_MAX = 128;

type Json = Record<string, unknown>;

/** A plain JSON object (not null, not an array). */
export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Json, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** A bounded, printable rendering of untrusted input for error messages. */
export function preview(v: unknown, max = 40): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

export function validateTaskId(v: unknown, field = 'task_id'): string {
  if (typeof v !== 'string') throw new InvalidApproval(`${field} must be a string`, { field });
  if (!TASK_ID_PATTERN.test(v)) {
    throw new InvalidApproval(`${field} must be "ST" followed by 24 letters or digits, got "${preview(v)}"`, { field });
  }
  return v;
}

export function validateTicketInfos(v: unknown, field = 'ticket_infos'): TicketInfo[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new InvalidApproval(`${field} must be an array`, { field });
  if (v.length > MAX_TICKET_INFOS) {
    throw new InvalidApproval(`${field} has ${v.length} items, at most ${MAX_TICKET_INFOS} allowed`, { field });
  }
  return v.map((item, i) => validateTicketInfo(item, `${field}[${i}]`));
}

function validateTicketInfo(v: unknown, field: string): TicketInfo {
  if (!isObject(v)) throw new InvalidApproval(`${field} must be an object`, { field });
  const out: TicketInfo = {};
  for (const key of Object.keys(v)) {
    const value = v[key];
    const f = `${field}.${key}`;
    if (key === 'ticket_type') {
      if (typeof value !== 'string' || !(TICKET_TYPES as readonly string[]).includes(value)) {
        throw new InvalidApproval(`${f} must be one of ${TICKET_TYPES.join(', ')}`, { field: f });
      }
      out.ticket_type = value as TicketType;
    } else if (key === 'ticket_id' || key === 'target_id' || key === 'scope_id') {
      const limit = TICKET_FIELD_LIMITS[key];
      if (typeof value !== 'string') throw new InvalidApproval(`${f} must be a string`, { field: f });
      if (value.length === 0 || value.length > limit) {
        throw new InvalidApproval(`${f} must be 1 to ${limit} characters, got ${value.length}`, { field: f });
      }
      out[key] = value;
    } else {
      throw new InvalidApproval(`${f} is not a TicketInfo field (ticket_id, ticket_type, target_id, scope_id)`, {
        field: f,
      });
    }
  }
  return out;
}

function validateApprovalId(v: unknown, field = 'approval_id'): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > APPROVAL_ID_MAX || /[\u0000-\u001f]/.test(v)) {
    throw new InvalidApproval(`${field} must be a string of 1 to ${APPROVAL_ID_MAX} printable characters`, { field });
  }
  return v;
}

/**
 * Task ids that can be read from untrusted input, valid or not: each still gets a failure
 * outcome (shown shortened and printable). At most MAX_TASK_IDS: a bound on what a hostile
 * input can make us publish.
 */
export function readableTaskIds(input: unknown): string[] {
  if (!isObject(input)) return [];
  const raw = has(input, 'task_ids') ? input.task_ids : has(input, 'task_id') ? [input.task_id] : [];
  if (!Array.isArray(raw)) return [];
  const ids = new Set(raw.filter((t): t is string => typeof t === 'string' && t.length > 0));
  return [...ids].slice(0, MAX_TASK_IDS).map((t) => preview(t, 64));
}

/** The approval id of untrusted input when it is valid, for reporting a refusal under it. */
export function readableApprovalId(input: unknown): string | undefined {
  if (!isObject(input)) return undefined;
  try {
    return validateApprovalId(input.approval_id);
  } catch {
    return undefined;
  }
}

function readTaskIds(input: Json): string[] {
  const hasOne = has(input, 'task_id');
  const hasMany = has(input, 'task_ids');
  if (hasOne && hasMany) throw new InvalidApproval('give task_id or task_ids, not both', { field: 'task_ids' });
  if (hasOne) return [validateTaskId(input.task_id)];
  if (!hasMany) throw new InvalidApproval('task_id or task_ids is required', { field: 'task_ids' });
  const ids = input.task_ids;
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new InvalidApproval('task_ids must be a non-empty array', { field: 'task_ids' });
  }
  if (ids.length > MAX_TASK_IDS) {
    throw new InvalidApproval(`task_ids has ${ids.length} items, at most ${MAX_TASK_IDS} allowed`, {
      field: 'task_ids',
    });
  }
  // Duplicates collapse: one outcome per task.
  return [...new Set(ids.map((t, i) => validateTaskId(t, `task_ids[${i}]`)))];
}

/** Attach the readable task ids to a validation failure so the workflow can report one outcome each. */
function withTaskIds<T>(input: unknown, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InvalidApproval && e.taskIds.length === 0) {
      throw new InvalidApproval(e.message, { field: e.field, taskIds: readableTaskIds(input) });
    }
    throw e;
  }
}

/**
 * Schedules and Step Functions pass task ids and tickets directly: the schedule or the
 * state machine is itself the authorization.
 * Input: `{ task_id | task_ids, ticket_infos?, approval_id? }`.
 */
export function parseTaskInput(
  input: unknown,
  trigger: Trigger,
  defaults: { approvalId?: string; deliveryId?: string } = {},
): EnableRequest {
  return withTaskIds(input, () => {
    if (!isObject(input)) throw new InvalidApproval('input must be a JSON object', { field: '$' });
    const taskIds = readTaskIds(input);
    const ticketInfos = validateTicketInfos(input.ticket_infos);
    const approvalId = has(input, 'approval_id')
      ? validateApprovalId(input.approval_id)
      : defaults.approvalId ?? `${trigger}:${taskIds.join(',')}`.slice(0, APPROVAL_ID_MAX);
    return {
      approvalId,
      taskIds,
      ticketInfos,
      trigger,
      ...(defaults.deliveryId && { deliveryId: defaults.deliveryId }),
    };
  });
}

export type ApprovalResult =
  | { approved: true; request: EnableRequest }
  | { approved: false; approvalId: string; decision: string };

/**
 * Approval payloads (webhook body, EventBridge detail): `approval_id`, `decision`,
 * `task_id`/`task_ids`, `ticket_infos`, optional `approver`, `decided_at`.
 * Only APPROVED (case-insensitive) enables anything.
 */
export function parseApproval(input: unknown, trigger: Trigger, deliveryId?: string): ApprovalResult {
  return withTaskIds(input, () => {
    if (!isObject(input)) throw new InvalidApproval('approval must be a JSON object', { field: '$' });
    const approvalId = validateApprovalId(input.approval_id);
    if (typeof input.decision !== 'string' || input.decision.length === 0 || input.decision.length > 64) {
      throw new InvalidApproval('decision must be a string such as APPROVED', { field: 'decision' });
    }
    const decision = input.decision.toUpperCase();
    if (has(input, 'approver') && (typeof input.approver !== 'string' || input.approver.length > 256)) {
      throw new InvalidApproval('approver must be a string of at most 256 characters', { field: 'approver' });
    }
    let decidedAt: string | undefined;
    if (has(input, 'decided_at')) {
      if (typeof input.decided_at !== 'string' || Number.isNaN(Date.parse(input.decided_at))) {
        throw new InvalidApproval('decided_at must be an ISO 8601 timestamp', { field: 'decided_at' });
      }
      decidedAt = input.decided_at;
    }
    if (decision !== 'APPROVED') return { approved: false, approvalId, decision };
    const taskIds = readTaskIds(input);
    const ticketInfos = validateTicketInfos(input.ticket_infos);
    return {
      approved: true,
      request: {
        approvalId,
        taskIds,
        ticketInfos,
        trigger,
        ...(deliveryId && { deliveryId }),
        ...(decidedAt && { decidedAt }),
      },
    };
  });
}

