/**
 * Webhook door: API Gateway HTTP API (payload 2.0) or REST API (1.0) proxy event carrying an
 * approval signed per Standard Webhooks. Checks run cheapest first, and nothing touches COC
 * or the Huawei credentials until the signature and the body are verified:
 *
 *   405 not POST · 413 body over WEBHOOK_BODY_LIMIT_BYTES · 415 not JSON
 *   401 missing / invalid / expired signature (one generic body)
 *   400 body not JSON · 422 invalid approval (failure outcomes published)
 *   202 decision other than APPROVED · 200 `{ approvalId, outcomes }` (permanent per-task
 *   failures included) · 503 + retry-after on a transient failure · 500 otherwise
 *
 * The `webhook-id` header is the delivery id: the sender's redeliveries reuse it, so the
 * outcomes keep the same idempotency keys.
 */
import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import jsonBodyParser from '@middy/http-json-body-parser';
import type { Context } from 'aws-lambda';
import { parseApproval, type ApprovalResult, type Outcome, readableApprovalId } from '../lib/domain';
import { InvalidApproval } from '../lib/errors';
import { jsonLogger, type Logger } from '../lib/log';
import { observability } from '../lib/observability';
import { deadlineFor, runtime } from '../lib/runtime';
import { jsonAnswer, type HttpAnswer, type HttpEvent } from '../lib/webhook/http';
import { jsonErrors } from '../lib/webhook/json-errors';
import { requestGuard } from '../lib/webhook/request-guard';
import { standardWebhookSignature } from '../lib/webhook/signature';

export interface WebhookAnswerBody {
  approvalId: string;
  outcomes: Outcome[];
}

/**
 * API Gateway gives up after 29 s (REST) / 30 s (HTTP API) whatever the Lambda timeout: COC
 * calls end well before, leaving time to publish outcomes and answer.
 */
const GATEWAY_BUDGET_MS = 25_000;

/** The runtime's logger, or a plain one when the runtime itself cannot be built (bad configuration). */
const safeLog = (): Logger => {
  try {
    return runtime().log;
  } catch {
    return jsonLogger();
  }
};

const invalidApproval = (e: InvalidApproval): HttpAnswer =>
  jsonAnswer(422, { error: e.name, message: e.message, ...(e.field && { field: e.field }), ...(e.code && { code: e.code }) });

/** Runs after the signature is verified and the body parsed: event.body is JSON, webhook-id present. */
async function receiveApproval(event: HttpEvent, context: Context): Promise<HttpAnswer> {
  const rt = runtime();
  const body: unknown = event.body;
  const deliveryId = event.headers['webhook-id'];
  let parsed: ApprovalResult;
  try {
    parsed = parseApproval(body, 'webhook', deliveryId);
  } catch (e) {
    if (!(e instanceof InvalidApproval)) throw e;
    await rt.workflow.reject(e, { trigger: 'webhook', taskIds: e.taskIds, approvalId: readableApprovalId(body), deliveryId });
    return invalidApproval(e);
  }
  if (!parsed.approved) {
    rt.log.info('approval not approved: ignored', { approvalId: parsed.approvalId, decision: parsed.decision });
    return jsonAnswer(202, { status: 'ignored', decision: parsed.decision, approvalId: parsed.approvalId });
  }
  const deadline = Math.min(deadlineFor(context, rt.config, rt.clock), rt.clock.now() + GATEWAY_BUDGET_MS);
  let outcomes: Outcome[];
  try {
    outcomes = await rt.workflow.enable(parsed.request, { deadline });
  } catch (e) {
    // A guard rail (allow-list, maximum age) refused it: failure outcomes already published.
    if (e instanceof InvalidApproval && e.outcomes) return invalidApproval(e);
    throw e;
  }
  return jsonAnswer(200, { approvalId: parsed.request.approvalId, outcomes } satisfies WebhookAnswerBody);
}

// The json parser's .d.ts omits disableContentTypeCheck: requestGuard owns the content type
// check (case-insensitive, +json types), so the parser only parses.
const parserOptions = { disableContentTypeCheck: true, disableContentTypeError: false };

export const handler = middy<HttpEvent, HttpAnswer, Error, Context>()
  .use(observability())
  .use(jsonErrors({ log: safeLog }))
  .use(httpHeaderNormalizer())
  .use(requestGuard({ maxBodyBytes: () => runtime().config.webhookBodyLimitBytes }))
  .use(
    standardWebhookSignature({
      secret: () => runtime().webhookSecret(),
      toleranceSeconds: () => runtime().config.webhookToleranceSeconds,
      now: () => runtime().clock.now(),
    }),
  )
  .use(jsonBodyParser(parserOptions))
  .handler(receiveApproval);
