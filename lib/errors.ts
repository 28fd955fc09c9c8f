/**
 * The error catalogue (DESIGN.md). Each error's `name` is what Step Functions Retry/Catch
 * and Lambda's errorType match on, so names are part of the public contract.
 * Messages must never carry credentials, signatures or secret values.
 */
import type { Outcome } from './domain';

export type ErrorName =
  | 'InvalidApproval'
  | 'TaskNotFound'
  | 'TaskNotOwned'
  | 'TicketRejected'
  | 'CocAuthFailed'
  | 'CocThrottled'
  | 'CocUnavailable'
  | 'CocRejected'
  | 'CredentialsUnavailable'
  | 'EventDeliveryFailed'
  | 'InvalidConfiguration';

export interface ErrorDetails {
  /** COC / APIGW error code, e.g. COC.00014102, or an AWS error name. */
  code?: string;
  /** HTTP status of the response that caused it. */
  status?: number;
  /** COC's X-Request-Id, for support tickets with Huawei. */
  requestId?: string;
  /** For InvalidApproval: the offending field, e.g. `ticket_infos[0].ticket_type`. */
  field?: string;
  /** Attempts made before giving up. */
  attempts?: number;
  /** Overrides the catalogue's default (CredentialsUnavailable "depends"). */
  retryable?: boolean;
  cause?: unknown;
}

const RETRYABLE: Record<ErrorName, boolean> = {
  InvalidApproval: false,
  TaskNotFound: false,
  TaskNotOwned: false,
  TicketRejected: false,
  CocAuthFailed: false,
  CocThrottled: true,
  CocUnavailable: true,
  CocRejected: false,
  CredentialsUnavailable: false,
  EventDeliveryFailed: true,
  InvalidConfiguration: false,
};

export class EnablerError extends Error {
  override readonly name: ErrorName;
  readonly retryable: boolean;
  readonly code?: string;
  readonly status?: number;
  readonly requestId?: string;
  readonly field?: string;
  attempts?: number;

  constructor(name: ErrorName, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = name;
    this.retryable = details.retryable ?? RETRYABLE[name];
    this.code = details.code;
    this.status = details.status;
    this.requestId = details.requestId;
    this.field = details.field;
    this.attempts = details.attempts;
  }

  /** Plain, secret-free shape for logs, outcome events and Step Functions error output. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      retryable: this.retryable,
      ...(this.code && { code: this.code }),
      ...(this.status && { status: this.status }),
      ...(this.requestId && { requestId: this.requestId }),
      ...(this.field && { field: this.field }),
    };
  }
}

/** Input failed validation, names a task outside the allow-list, or is too old. */
export class InvalidApproval extends EnablerError {
  /** Task ids that could be read from the input, so each still gets a failure outcome. */
  readonly taskIds: string[];
  /** Set when the workflow has already published the failure outcomes (guard rails). */
  outcomes?: Outcome[];
  constructor(message: string, details: ErrorDetails & { taskIds?: string[] } = {}) {
    super('InvalidApproval', message, details);
    this.taskIds = details.taskIds ?? [];
  }
}

export const isEnablerError = (e: unknown): e is EnablerError => e instanceof EnablerError;

/** Any thrown value as a catalogue error: an unexpected failure is treated as transient (CocUnavailable), so the trigger retries rather than drops it. */
export function asEnablerError(e: unknown): EnablerError {
  if (e instanceof EnablerError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new EnablerError('CocUnavailable', `unexpected failure: ${message}`, { cause: e });
}
