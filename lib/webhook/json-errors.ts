/**
 * Middleware: every error becomes a JSON answer, and no stack, secret or internal message
 * reaches the response.
 *   HttpProblem                         its own status and body (the reason is logged only)
 *   @middy/http-json-body-parser error  400: the body is not JSON
 *   a retryable catalogue error         503 with `retry-after`, so the sender delivers again
 *                                       (same webhook-id, so the same idempotency keys)
 *   anything else                       500 with a generic body; name and message are logged
 */
import type { MiddlewareObj } from '@middy/core';
import { EnablerError } from '../errors';
import type { Logger } from '../log';
import { HttpProblem, jsonAnswer, type HttpAnswer } from './http';

export interface JsonErrorOptions {
  /** Called at error time (the runtime is built lazily); must not throw. */
  log: () => Logger;
  /** Sent as `retry-after` with a 503. Default 30. */
  retryAfterSeconds?: number;
}

export const DEFAULT_RETRY_AFTER_SECONDS = 30;

const fromJsonParser = (e: unknown): boolean =>
  (e as { cause?: { package?: unknown } } | null)?.cause?.package === '@middy/http-json-body-parser';

/** Name and message only: SDK and parser errors can carry request data in other fields. */
const describe = (e: unknown): Record<string, unknown> =>
  e instanceof EnablerError ? e.toJSON() : e instanceof Error ? { name: e.name, message: e.message } : { name: typeof e };

export function answerForError(error: unknown, log: Logger, retryAfterSeconds = DEFAULT_RETRY_AFTER_SECONDS): HttpAnswer {
  if (error instanceof HttpProblem) {
    log.info('webhook refused', { status: error.status, reason: error.reason });
    return error.answer();
  }
  if (fromJsonParser(error)) {
    log.info('webhook refused', { status: 400, reason: 'body is not JSON' });
    return jsonAnswer(400, { error: 'BadRequest', message: 'the body is not valid JSON' });
  }
  if (error instanceof EnablerError && error.retryable) {
    log.warn('webhook handed back for redelivery', { status: 503, error: error.toJSON() });
    return jsonAnswer(
      503,
      { error: error.name, message: 'a transient failure; deliver this webhook again later', retryable: true },
      { 'retry-after': String(retryAfterSeconds) },
    );
  }
  log.error('webhook failed unexpectedly', { status: 500, error: describe(error) });
  return jsonAnswer(500, { error: 'InternalServerError' });
}

export function jsonErrors(options: JsonErrorOptions): MiddlewareObj<unknown, HttpAnswer> {
  return {
    onError: async (request) => {
      if (request.response !== undefined && request.response !== null) return;
      request.response = answerForError(request.error, options.log(), options.retryAfterSeconds);
    },
  };
}
