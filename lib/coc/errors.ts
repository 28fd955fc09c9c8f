/**
 * COC and API Gateway answers mapped onto the error catalogue (DESIGN.md), keeping the
 * code, message, HTTP status and X-Request-Id so an operator can quote them to Huawei.
 */
import { EnablerError, InvalidApproval } from '../errors';

export const ALREADY_ENABLED = 'COC.00014110';

/**
 * Codes COC's change control answers when ticket authorization is required or refused.
 * Not published in the COC reference; COC.00014150 is the local simulator's choice, and
 * any 4xx whose message speaks of a ticket is treated the same way.
 */
export const TICKET_CODES = new Set(['COC.00014150']);
const AUTH_CODES = new Set(['APIGW.0301', 'APIGW.0302', 'APIGW.0303', 'APIGW.0305', 'COC.00010014', 'COC.00011013']);
const BAD_REQUEST_CODES = new Set(['COC.00010002', 'COC.00014002', 'APIGW.0201']);

export interface CocErrorBody {
  error_code?: string;
  error_msg?: string;
}

export interface CocAnswer {
  status: number;
  code?: string;
  message?: string;
  requestId?: string;
  retryAfterMs?: number;
  /** The body was not the JSON COC always sends. */
  malformed: boolean;
}

/** The reason line: `code message`, cut so a huge body cannot flood logs. */
const describe = (a: CocAnswer) =>
  [a.code, a.message?.slice(0, 300)].filter(Boolean).join(' ') || `HTTP ${a.status}${a.malformed ? ' with a non-JSON body' : ''}`;

export const isCredentialRejection = (a: CocAnswer): boolean => a.code === 'APIGW.0301' || (a.status === 401 && !a.code);

export function errorForAnswer(a: CocAnswer, taskId: string): EnablerError {
  const details = { code: a.code, status: a.status, requestId: a.requestId };
  const reason = describe(a);
  if (a.status === 429 || a.code === 'APIGW.0308') {
    return new EnablerError('CocThrottled', `COC throttled the request for ${taskId}: ${reason}`, details);
  }
  if (a.status >= 500 || (a.malformed && a.status < 400)) {
    return new EnablerError('CocUnavailable', `COC is unavailable for ${taskId}: ${reason}`, details);
  }
  if (a.code === 'COC.00014102') return new EnablerError('TaskNotFound', `task ${taskId} does not exist: ${reason}`, details);
  if (a.code === 'COC.00014121') {
    return new EnablerError('TaskNotOwned', `task ${taskId} does not belong to this account: ${reason}`, details);
  }
  if ((a.code && TICKET_CODES.has(a.code)) || /ticket/i.test(a.message ?? '')) {
    return new EnablerError('TicketRejected', `COC refused the ticket for ${taskId}: ${reason}`, details);
  }
  if ((a.code && AUTH_CODES.has(a.code)) || a.status === 401 || a.status === 403) {
    return new EnablerError('CocAuthFailed', `COC rejected the credentials: ${reason}`, details);
  }
  if (a.code && BAD_REQUEST_CODES.has(a.code)) {
    return new InvalidApproval(`COC rejected the request for ${taskId} as invalid: ${reason}`, { ...details, taskIds: [taskId] });
  }
  if (a.code === 'APIGW.0101' || a.status === 404) {
    return new EnablerError('InvalidConfiguration', `COC has no such API at the configured endpoint: ${reason}`, details);
  }
  // An unknown refusal: permanent (retrying cannot help), reported with its code so it can be mapped above.
  return new EnablerError('CocRejected', `COC refused the request for ${taskId}: ${reason}`, details);
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
