/**
 * EventBridge door, for two kinds of invocation (both asynchronous):
 *
 * - Rule delivery: an EventBridge event whose `detail` is an approval
 *   (`approval_id`, `decision`, `task_id | task_ids`, `ticket_infos`, ...). The event id is the
 *   delivery id (stable across EventBridge's and Lambda's retries). Only APPROVED enables;
 *   any other decision returns `{ status: 'ignored', ... }`.
 * - Schedule: EventBridge Scheduler (or a schedule rule with a constant Input) passes the
 *   input itself as the event: `{ task_id | task_ids, ticket_infos?, approval_id? }`. The
 *   schedule is the authorization. The Lambda request id is the delivery id, so each run gets
 *   its own idempotency keys while Lambda's async retries of one run keep them. A schedule
 *   rule WITHOUT input arrives as `Scheduled Event` from `aws.events`: it names no task, so it
 *   is refused as InvalidApproval ("configure the schedule's input").
 *
 * Transient failures (RetryableFailure and other retryable catalogue errors) are thrown, so
 * Lambda's async retries and then the dead-letter queue keep the approval. Permanent ones
 * are reported as failure outcomes (published as events) and the invocation returns
 * normally, because retrying cannot help: `{ approvalId, outcomes }`, plus `error` when the
 * input itself was refused.
 */
import middy from '@middy/core';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { isObject, parseApproval, parseTaskInput, readableApprovalId, type EnableRequest, type Outcome, type Trigger } from '../lib/domain';
import { InvalidApproval } from '../lib/errors';
import { observability } from '../lib/observability';
import { deadlineFor, runtime } from '../lib/runtime';

export type EventBridgeResult =
  | { approvalId: string; outcomes: Outcome[]; error?: Record<string, unknown> }
  | { status: 'ignored'; decision: string; approvalId: string };

type RuleDelivery = EventBridgeEvent<string, unknown>;

/** An EventBridge rule delivery (as opposed to a schedule's own input). */
const isRuleDelivery = (event: unknown): event is RuleDelivery =>
  isObject(event) && typeof event['detail-type'] === 'string' && typeof event.source === 'string' && 'detail' in event;

const isInputlessSchedule = (event: RuleDelivery): boolean => event.source === 'aws.events' && event['detail-type'] === 'Scheduled Event';

type Normalized = { request: EnableRequest } | { ignored: { decision: string; approvalId: string } };

/** The event as an EnableRequest; throws InvalidApproval for what cannot be one. */
function normalize(event: unknown, context: Context): Normalized {
  if (isRuleDelivery(event)) {
    if (isInputlessSchedule(event)) {
      throw new InvalidApproval(
        `a schedule rule without input names no task: configure the schedule's input as {"task_ids": [...], "ticket_infos": [...]} (rule ${event.resources?.[0] ?? 'unknown'})`,
        { field: '$' },
      );
    }
    const result = parseApproval(event.detail, 'eventbridge', event.id);
    return result.approved ? { request: result.request } : { ignored: { decision: result.decision, approvalId: result.approvalId } };
  }
  return { request: parseTaskInput(event, 'schedule', { deliveryId: context?.awsRequestId }) };
}

async function enableFromEventBridge(event: unknown, context: Context): Promise<EventBridgeResult> {
  const rt = runtime();
  let normalized: Normalized;
  try {
    normalized = normalize(event, context);
  } catch (e) {
    if (!(e instanceof InvalidApproval)) throw e;
    const delivery = isRuleDelivery(event);
    const trigger: Trigger = delivery ? 'eventbridge' : 'schedule';
    const input = delivery ? event.detail : event;
    const approvalId = readableApprovalId(input) ?? 'unknown';
    const deliveryId = delivery ? event.id : context?.awsRequestId;
    // Not retryable: one failure outcome per readable task id, then return.
    const outcomes = await rt.workflow.reject(e, { trigger, taskIds: e.taskIds, approvalId, ...(deliveryId && { deliveryId }) });
    if (outcomes.length === 0) rt.log.error('input refused, no task id to report it on', { trigger, approvalId, error: e.toJSON() });
    return { approvalId, outcomes, error: e.toJSON() };
  }
  if ('ignored' in normalized) {
    rt.log.info('approval not approved: ignored', normalized.ignored);
    return { status: 'ignored', ...normalized.ignored };
  }
  const { request } = normalized;
  // Retryable failures throw from here (RetryableFailure, EventDeliveryFailed): Lambda retries, then the DLQ.
  try {
    const outcomes = await rt.workflow.enable(request, { deadline: deadlineFor(context, rt.config, rt.clock) });
    return { approvalId: request.approvalId, outcomes };
  } catch (e) {
    // A guard rail (allow-list, maximum age) refused it: permanent, already reported.
    if (e instanceof InvalidApproval && e.outcomes) return { approvalId: request.approvalId, outcomes: e.outcomes, error: e.toJSON() };
    throw e;
  }
}

export const handler = middy<unknown, EventBridgeResult, Error, Context>().use(observability()).handler(enableFromEventBridge);
