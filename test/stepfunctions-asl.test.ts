/**
 * The Step Functions state machine as deployed (statemachines/enable-approved-tasks.asl.json, the
 * file serverless.yml loads with ${file(...)}), executed by the `aws-local-stepfunctions`
 * interpreter with its Lambda task bound to the REAL stepfunctions handler running against the
 * COC simulator. Shows the success path, the Retry of transient catalogue errors (CocThrottled,
 * CocUnavailable) with the handler invocations counted, retries exhausted, and the Catch of
 * permanent ones (TaskNotFound, TicketRejected, InvalidApproval) into the failure branch; and
 * checks the definition with asl-validator.
 *
 * The binding behaves like Lambda behind Step Functions: the payload and the result are JSON
 * round-tripped, and a thrown error reaches the state machine with `Error` = the error's name and
 * `Cause` = the function's error JSON ({ errorType, errorMessage, trace }), which is what
 * Retry/Catch ErrorEquals match on. Retry intervals are overridden to 0 ms (retryIntervalOverrides),
 * so nothing sleeps; the client's own retries are off (COC_MAX_ATTEMPTS=1).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { handler } from '../functions/stepfunctions';
import { loadConfig } from '../lib/config';
import type { Credentials } from '../lib/credentials';
import type { Outcome } from '../lib/domain';
import { silentLogger } from '../lib/log';
import { createRuntime, resetRuntime } from '../lib/runtime';
import { MemorySink } from '../lib/sink';
import { localContext } from '../scripts/cli';
import { captureOutput, registerSecret } from './support/leak-capture';
import { useSimulator } from './support/simulator-fixture';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFINITION_FILE = 'statemachines/enable-approved-tasks.asl.json';
const TASK_STATE = 'EnableScheduledTasks';
const LAMBDA_GETATT = { 'Fn::GetAtt': ['StepfunctionsLambdaFunction', 'Arn'] };
const PLACEHOLDER_ARN = 'arn:aws:lambda:eu-west-1:000000000000:function:coc-task-enabler-test-stepfunctions';

type AslValidator = (definition: unknown, options?: { checkPaths?: boolean; checkArn?: boolean }) => {
  isValid: boolean;
  errorsText: (separator?: string) => string;
};
const requireCjs = createRequire(import.meta.url);
const aslValidator = requireCjs('asl-validator') as AslValidator;

const hex = (n: number) => randomBytes(n).toString('hex');
const CREDS: Credentials = { ak: `SFASL${hex(8).toUpperCase()}`.slice(0, 20), sk: `sf-asl-sk-${hex(16)}` };

const ENABLE = 'ST0000000000000000SFASL001';
const ALREADY = 'ST0000000000000000SFASL002';
const MISSING = 'ST0000000000000000SFASL404';
const TICKETED = 'ST0000000000000000SFASL150';
const TICKETS = [{ ticket_id: 'CM-SFASL-0001', ticket_type: 'CHANGE' }];

/** The definition file with its Lambda Resource (a CloudFormation intrinsic) replaced by an ARN. */
function loadDefinition(): StateMachineDefinition {
  const definition = JSON.parse(readFileSync(join(ROOT, DEFINITION_FILE), 'utf8')) as Json;
  const tasks = Object.entries<Json>(definition.States).filter(([, s]) => s.Type === 'Task');
  expect(tasks.map(([name]) => name)).toEqual([TASK_STATE]);
  for (const [, state] of tasks) {
    // The only non-ASL content is the GetAtt serverless-step-functions resolves: anything else would
    // make this substitution (and the deployed definition) wrong.
    expect(state.Resource).toEqual(LAMBDA_GETATT);
    state.Resource = PLACEHOLDER_ARN;
  }
  expect(JSON.stringify(definition)).not.toMatch(/\$\{|Fn::|"Ref"/);
  return definition as StateMachineDefinition;
}

let sink: MemorySink;
let invocations: Array<{ input: Json; error?: string }>;
let definition: StateMachineDefinition;
/** Built once (construction validates the definition, which is the slow part); each run() is independent. */
let machine: StateMachine;

/** The stepfunctions function as Step Functions' Lambda integration sees it. */
async function invokeLambda(input: unknown): Promise<Json> {
  const call: { input: Json; error?: string } = { input: structuredClone(input) };
  invocations.push(call);
  try {
    const result = await handler(JSON.parse(JSON.stringify(input)), localContext('stepfunctions', 60_000));
    captureOutput('stepfunctions result', result);
    return JSON.parse(JSON.stringify(result));
  } catch (e) {
    captureOutput('stepfunctions error', e);
    const err = e as Error;
    call.error = err.name;
    // Lambda's Node.js runtime reports { errorType: name, errorMessage, trace }; Step Functions
    // makes errorType the state's Error and the whole JSON its Cause.
    const failure = new Error(JSON.stringify({ errorType: err.name, errorMessage: err.message, trace: [] }));
    failure.name = err.name;
    throw failure;
  }
}

interface Execution {
  output?: Json;
  error?: Error;
  events: Json[];
}

async function execute(input: Json, taskHandler: (input: Json) => Promise<Json> = invokeLambda): Promise<Execution> {
  const run = machine.run(input, {
    overrides: {
      taskResourceLocalHandlers: { [TASK_STATE]: taskHandler },
      // No real sleeping: the Retry's IntervalSeconds/BackoffRate/JitterStrategy are replaced by 0 ms.
      retryIntervalOverrides: { [TASK_STATE]: 0 },
    },
  });
  const execution: Execution = { events: [] };
  try {
    execution.output = await run.result;
  } catch (e) {
    execution.error = e as Error;
  }
  for await (const event of run.eventLogs) execution.events.push(event);
  captureOutput('stepfunctions execution', { output: execution.output, error: execution.error?.message });
  return execution;
}

const statesEntered = (x: Execution) => x.events.filter((e) => e.type === 'StateEntered').map((e) => e.state.name);
const retries = (x: Execution) => x.events.filter((e) => e.type === 'StateRetried');
const finalEvent = (x: Execution) => x.events.at(-1);
/** The input of a state the execution entered (Pass states keep $.error and add $.failure). */
const inputOf = (x: Execution, state: string) => x.events.find((e) => e.type === 'StateEntered' && e.state.name === state)?.state.input;
const outputOf = (x: Execution, state: string) => x.events.find((e) => e.type === 'StateExited' && e.state.name === state)?.state.output;

const sim = useSimulator(CREDS, { [ENABLE]: { enabled: false }, [ALREADY]: { enabled: true }, [TICKETED]: { requiresTicket: true } });

beforeAll(() => {
  registerSecret({ ak: CREDS.ak, sk: CREDS.sk });
  definition = loadDefinition();
  machine = new StateMachine(structuredClone(definition));
});

beforeEach(() => {
  sink = new MemorySink();
  invocations = [];
  const static_ = async () => CREDS;
  const config = loadConfig({
    COC_ENDPOINT: sim().url,
    COC_MAX_ATTEMPTS: '1',
    COC_RETRY_BASE_DELAY_MS: '1',
    COC_RETRY_MAX_DELAY_MS: '1',
    COC_ATTEMPT_TIMEOUT_MS: '2000',
  });
  resetRuntime(createRuntime(config, { credentials: { get: static_, refresh: static_ }, sink, log: silentLogger }));
});

afterEach(() => {
  for (const text of [JSON.stringify(invocations), JSON.stringify(sink.outcomes)]) {
    expect(text).not.toContain(CREDS.sk);
    expect(text).not.toContain(CREDS.ak);
  }
});

describe('the state machine definition', () => {
  it('is the file serverless.yml deploys', async () => {
    const read = requireCjs('osls/lib/configuration/read') as (path: string) => Promise<Json>;
    const service = await read(join(ROOT, 'serverless.yml'));
    const machines = Object.values<Json>(service.stepFunctions.stateMachines);
    expect(machines).toHaveLength(1);
    expect(machines[0].definition).toBe(`\${file(./${DEFINITION_FILE})}`);
  });

  it('is valid ASL for asl-validator (paths and ARNs checked), which does catch a broken one', () => {
    const result = aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });
    expect(result.isValid, result.errorsText('\n')).toBe(true);

    const broken = structuredClone(definition) as Json;
    broken.States[TASK_STATE].Catch[0].Next = 'NoSuchState';
    broken.States[TASK_STATE].Retry[0].ErrorEquals = 'CocThrottled';
    const refused = aslValidator(broken, { checkPaths: true, checkArn: true });
    expect(refused.isValid).toBe(false);
    expect(refused.errorsText('\n')).toMatch(/NoSuchState|ErrorEquals/);
  });

  it('retries exactly the transient catalogue errors and catches the permanent ones into the rejection branch', () => {
    const task = (definition.States[TASK_STATE] as Json) ?? {};
    expect(task.Retry[0].ErrorEquals).toEqual(['CocThrottled', 'CocUnavailable', 'EventDeliveryFailed']);
    expect(task.Catch[0].ErrorEquals).toEqual(
      expect.arrayContaining(['TaskNotFound', 'TaskNotOwned', 'TicketRejected', 'InvalidApproval', 'CocAuthFailed']),
    );
    expect(task.Catch[0].Next).toBe('RecordRejection');
    expect(task.Catch.at(-1)).toMatchObject({ ErrorEquals: ['States.ALL'], Next: 'RecordFailure' });
  });
});

describe('executed with the real stepfunctions handler against the COC simulator', () => {
  it('success: enables the tasks, one invocation, the outcomes in $.result next to the input', async () => {
    const input = { approval_id: 'CHG-SFASL-0001', task_ids: [ENABLE, ALREADY], ticket_infos: TICKETS };
    const x = await execute(input);
    expect(x.error).toBeUndefined();
    expect(x.output).toMatchObject({ ...input, result: { approvalId: 'CHG-SFASL-0001' } });
    expect(x.output.result.outcomes.map((o: Outcome) => [o.taskId, o.outcome, o.trigger, o.ticketIds])).toEqual([
      [ENABLE, 'enabled', 'stepfunctions', ['CM-SFASL-0001']],
      [ALREADY, 'already_enabled', 'stepfunctions', ['CM-SFASL-0001']],
    ]);
    expect(sim().task(ENABLE)).toMatchObject({ enabled: true, enableCount: 1 });
    expect(invocations).toHaveLength(1);
    expect(statesEntered(x)).toEqual([TASK_STATE, 'Enabled']);
    expect(finalEvent(x)).toMatchObject({ type: 'ExecutionSucceeded' });
    expect(sink.outcomes).toEqual(x.output.result.outcomes);
  });

  it.each([
    ['CocThrottled', 429 as const, 2],
    ['CocUnavailable', 503 as const, 3],
  ])('Retry: %s (COC answers %i to the first %i invocations) is retried by the state machine, then succeeds', async (name, status, times) => {
    sim().injectFault({ fault: { kind: 'status', status, retryAfterSeconds: 0 }, taskId: ENABLE, times });
    const x = await execute({ approval_id: 'CHG-SFASL-RETRY', task_id: ENABLE, ticket_infos: TICKETS });
    expect(x.error).toBeUndefined();
    expect(invocations.map((c) => c.error ?? 'ok')).toEqual([...Array<string>(times).fill(name), 'ok']);
    expect(retries(x)).toHaveLength(times);
    expect(retries(x).every((e) => e.retry.retrier.ErrorEquals.includes(name))).toBe(true);
    expect(x.events.filter((e) => e.type === 'StateFailed').map((e) => e.Error)).toEqual(Array<string>(times).fill(name));
    expect(x.output.result.outcomes).toEqual([expect.objectContaining({ taskId: ENABLE, outcome: 'enabled' })]);
    expect(sim().task(ENABLE)).toMatchObject({ enabled: true, enableCount: 1 });
    // Transient failures were handed back, not published: the only outcome is the final one.
    expect(sink.outcomes.map((o) => o.outcome)).toEqual(['enabled']);
    expect(sim().requests().map((r) => r.status)).toEqual([...Array<number>(times).fill(status), 200]);
  });

  it('Retry exhausted: after MaxAttempts retries CocUnavailable ends in RecordFailure -> Failed (EnableFailed)', async () => {
    sim().injectFault({ fault: { kind: 'status', status: 503 }, times: Infinity });
    const x = await execute({ approval_id: 'CHG-SFASL-DOWN', task_id: ENABLE });
    const maxAttempts = (definition.States[TASK_STATE] as Json).Retry[0].MaxAttempts as number;
    expect(invocations).toHaveLength(1 + maxAttempts);
    expect(x.error?.name).toBe('ExecutionError');
    expect(((x.error as Error & { cause?: Error }).cause)?.name).toBe('EnableFailed');
    expect(statesEntered(x)).toEqual([TASK_STATE, 'RecordFailure', 'Failed']);
    expect(finalEvent(x)).toMatchObject({ type: 'ExecutionFailed', Error: 'EnableFailed' });
    const recorded = outputOf(x, 'RecordFailure');
    expect(recorded.error.Error).toBe('CocUnavailable');
    expect(JSON.parse(recorded.error.Cause)).toMatchObject({ errorType: 'CocUnavailable' });
    expect(recorded.failure).toEqual({ outcome: 'failed', reason: 'retries exhausted or unexpected error' });
    expect(sim().task(ENABLE)?.enabled).toBe(false);
  });

  it.each([
    ['TaskNotFound', { task_id: MISSING }],
    ['TicketRejected', { task_id: TICKETED }],
  ])('Catch: %s is not retried and runs the rejection branch (RecordRejection -> Rejected)', async (name, taskInput) => {
    const input = { approval_id: `CHG-SFASL-${name}`, ...taskInput };
    const x = await execute(input);
    expect(invocations.map((c) => c.error)).toEqual([name]);
    expect(retries(x)).toEqual([]);
    expect(x.error?.name).toBe('ExecutionError');
    expect(((x.error as Error & { cause?: Error }).cause)?.name).toBe('EnableRejected');
    expect(statesEntered(x)).toEqual([TASK_STATE, 'RecordRejection', 'Rejected']);
    expect(x.events.find((e) => e.type === 'StateCaught')?.catch.catcher.Next).toBe('RecordRejection');
    expect(finalEvent(x)).toMatchObject({ type: 'ExecutionFailed', Error: 'EnableRejected' });
    const recorded = outputOf(x, 'RecordRejection');
    expect(recorded).toMatchObject({ ...input, error: { Error: name }, failure: { outcome: 'failed', reason: 'rejected' } });
    expect(JSON.parse(recorded.error.Cause)).toMatchObject({ errorType: name });
    expect(inputOf(x, 'Rejected')).toEqual(recorded);
    // The permanent failure was published as a failure outcome.
    expect(sink.outcomes.map((o) => [o.taskId, o.outcome, o.error?.name])).toEqual([[taskInput.task_id, 'failed', name]]);
    expect(sim().requests()).toHaveLength(1);
  });

  it('Catch: InvalidApproval (a malformed task id) runs the rejection branch without calling COC', async () => {
    const x = await execute({ approval_id: 'CHG-SFASL-BAD', task_ids: [ENABLE, 'ST-not-a-task'] });
    expect(invocations.map((c) => c.error)).toEqual(['InvalidApproval']);
    expect(statesEntered(x)).toEqual([TASK_STATE, 'RecordRejection', 'Rejected']);
    expect(outputOf(x, 'RecordRejection').error.Error).toBe('InvalidApproval');
    expect(sim().requests()).toHaveLength(0);
    expect(sink.outcomes.map((o) => [o.taskId, o.outcome])).toEqual([
      [ENABLE, 'failed'],
      ['ST-not-a-task', 'failed'],
    ]);
  });

  it('Retry: a Lambda service error (before the function runs) is retried by the second retrier', async () => {
    let throttledOnce = false;
    const x = await execute({ approval_id: 'CHG-SFASL-LAMBDA', task_id: ENABLE }, async (input) => {
      if (!throttledOnce) {
        throttledOnce = true;
        const e = new Error('Rate Exceeded.');
        e.name = 'Lambda.TooManyRequestsException';
        throw e;
      }
      return invokeLambda(input);
    });
    expect(x.error).toBeUndefined();
    expect(retries(x).map((e) => e.retry.retrier.ErrorEquals[0])).toEqual(['Lambda.ServiceException']);
    expect(invocations).toHaveLength(1);
    expect(x.output.result.outcomes[0]).toMatchObject({ taskId: ENABLE, outcome: 'enabled' });
  });
});
