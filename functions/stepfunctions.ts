/**
 * Step Functions door. Input `{ task_id | task_ids, ticket_infos?, approval_id? }`;
 * output `{ approvalId, outcomes }`. Any failure is thrown with a catalogue name
 * (CocThrottled, TaskNotFound, ...) so the state machine can Retry / Catch on it.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { parseTaskInput, type Outcome, readableApprovalId } from '../lib/domain';
import { EnablerError, InvalidApproval } from '../lib/errors';
import { observability } from '../lib/observability';
import { deadlineFor, runtime } from '../lib/runtime';

export interface StepFunctionsOutput {
  approvalId: string;
  outcomes: Outcome[];
}

async function enableFromStateMachine(event: unknown, context: Context): Promise<StepFunctionsOutput> {
  const rt = runtime();
  let request;
  try {
    request = parseTaskInput(event, 'stepfunctions');
  } catch (e) {
    if (e instanceof InvalidApproval) {
      await rt.workflow.reject(e, { trigger: 'stepfunctions', taskIds: e.taskIds, approvalId: readableApprovalId(event) });
    }
    throw e;
  }
  const outcomes = await rt.workflow.enable(request, { deadline: deadlineFor(context, rt.config, rt.clock) });
  const failed = outcomes.filter((o) => o.outcome === 'failed');
  if (failed.length > 0) {
    const first = failed[0]!.error!;
    throw new EnablerError(
      first.name as EnablerError['name'],
      `${failed.length} of ${outcomes.length} task(s) not enabled: ${failed.map((f) => `${f.taskId} (${f.error?.name})`).join(', ')}; first: ${first.message}`,
      { code: first.code, status: first.status, retryable: first.retryable },
    );
  }
  return { approvalId: request.approvalId, outcomes };
}

export const handler = middy<unknown, StepFunctionsOutput, Error, Context>().use(observability()).handler(enableFromStateMachine);
