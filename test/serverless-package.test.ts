/**
 * The deployment as CloudFormation: runs `serverless package --stage test` once (offline, no
 * AWS credentials) and checks the functions, their triggers and settings, the bundles in the
 * zips, least-privilege IAM, async failure handling and the Step Functions state machine.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config';
import { parseTaskInput } from '../lib/domain';
import { EnablerError, type ErrorName } from '../lib/errors';
import { esbuildOptions, FUNCTIONS } from '../scripts/build';
import { packageService, resourcesOfType, ROOT, zipEntries, type CfnResource, type CfnTemplate, type Json, type PackagedService } from './support/serverless';

type AslValidator = (definition: unknown, options?: { checkPaths?: boolean; checkArn?: boolean }) => {
  isValid: boolean;
  errorsText: (separator?: string) => string;
};
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

const DEFINITION_FILE = join(ROOT, 'statemachines/enable-approved-tasks.asl.json');
const PLACEHOLDER_LAMBDA_ARN = 'arn:aws:lambda:eu-west-1:000000000000:function:coc-task-enabler-test-stepfunctions';
const LAMBDA_IDS = { webhook: 'WebhookLambdaFunction', eventbridge: 'EventbridgeLambdaFunction', stepfunctions: 'StepfunctionsLambdaFunction' };
const RETRIED: ErrorName[] = ['CocThrottled', 'CocUnavailable'];
const CAUGHT: ErrorName[] = ['TaskNotFound', 'TaskNotOwned', 'TicketRejected', 'InvalidApproval', 'CocAuthFailed', 'CredentialsUnavailable', 'CocRejected', 'InvalidConfiguration'];
const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.TooManyRequestsException', 'Lambda.SdkClientException'];

let pkg: PackagedService;
let template: CfnTemplate;
let resources: Record<string, CfnResource>;
const fn = (name: keyof typeof LAMBDA_IDS): Json => resources[LAMBDA_IDS[name]]!.Properties;
const getAtt = (logicalId: string, attr = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attr] });
const dlqId = () => Object.keys(resourcesOfType(template, 'AWS::SQS::Queue'))[0]!;
const rules = () => Object.values(resourcesOfType(template, 'AWS::Events::Rule')).map((r) => r.Properties);
const lambdaStatements = (): Json[] => resources.IamRoleLambdaExecution!.Properties.Policies.flatMap((p: Json) => p.PolicyDocument.Statement);
const actionsOf = (s: Json): string[] => [s.Action].flat();
const resourcesOf = (s: Json): Json[] => [s.Resource].flat();

/** The state machine's definition from the template, its Lambda Fn::Sub variables replaced by an ARN. */
function deployedDefinition(): Json {
  const machine = Object.values(resourcesOfType(template, 'AWS::StepFunctions::StateMachine'))[0]!;
  const [body, vars] = machine.Properties.DefinitionString['Fn::Sub'] as [string, Record<string, Json>];
  const resolved = body.replace(/\$\{([^}]+)\}/g, (whole, name: string) => {
    expect(vars[name], `Fn::Sub variable ${whole} has no value: CloudFormation would reject the definition`).toEqual(
      getAtt(LAMBDA_IDS.stepfunctions),
    );
    return PLACEHOLDER_LAMBDA_ARN;
  });
  return JSON.parse(resolved);
}

/** The definition file as plain JSON, with its Lambda Resource replaced by an ARN. */
function fileDefinition(): Json {
  const definition = JSON.parse(readFileSync(DEFINITION_FILE, 'utf8'));
  for (const state of Object.values<Json>(definition.States)) {
    if (state.Type === 'Task') state.Resource = PLACEHOLDER_LAMBDA_ARN;
  }
  return definition;
}

const withoutQueryLanguage = (definition: Json): Json =>
  JSON.parse(JSON.stringify(definition, (key, value: unknown) => (key === 'QueryLanguage' ? undefined : value)));

beforeAll(async () => {
  pkg = await packageService('test');
  template = pkg.template;
  resources = template.Resources;
}, 180_000);

describe('serverless package --stage test', () => {
  it('packages offline (time reported for the record)', () => {
    console.info(`serverless package: ${pkg.durationMs ? `${pkg.durationMs} ms` : 'reused from another suite'} -> ${pkg.dir}`);
    expect(Object.keys(resourcesOfType(template, 'AWS::Lambda::Function')).sort()).toEqual(Object.values(LAMBDA_IDS).sort());
  });

  it('runs every function on nodejs22.x / arm64 with 256 MB, its handler and a timeout its trigger allows', () => {
    for (const name of Object.keys(LAMBDA_IDS) as (keyof typeof LAMBDA_IDS)[]) {
      const p = fn(name);
      expect(p.Runtime, name).toBe('nodejs22.x');
      expect(p.Architectures, name).toEqual(['arm64']);
      expect(p.MemorySize, name).toBe(256);
      expect(p.Handler, name).toBe(`functions/${name}.handler`);
      expect(FUNCTIONS[name], 'scripts/build.ts builds the same entry').toBe(`functions/${name}.ts`);
    }
    expect(fn('webhook').Timeout).toBeLessThan(29); // HTTP API gives up at 30 s
    expect(fn('eventbridge').Timeout).toBe(60);
    expect(fn('stepfunctions').Timeout).toBe(60);
  });

  it('caps every COC-calling function with reserved concurrency', () => {
    for (const name of Object.keys(LAMBDA_IDS) as (keyof typeof LAMBDA_IDS)[]) {
      expect(fn(name).ReservedConcurrentExecutions, name).toBe(5);
    }
  });

  it('wires the environment the configuration reads, and the configuration accepts it', () => {
    const common = [
      'COC_ENDPOINT',
      'HUAWEI_CREDENTIALS_SECRET_ID',
      'EVENT_BUS_NAME',
      'EVENT_SOURCE',
      'TASK_ALLOW_LIST',
      'MAX_APPROVAL_AGE_SECONDS',
      'DRY_RUN',
      'VERIFY_AFTER_ENABLE',
      'POWERTOOLS_SERVICE_NAME',
      'POWERTOOLS_METRICS_NAMESPACE',
      'LOG_LEVEL',
    ];
    for (const name of Object.keys(LAMBDA_IDS) as (keyof typeof LAMBDA_IDS)[]) {
      const env: Record<string, string> = fn(name).Environment.Variables;
      expect(Object.keys(env), name).toEqual(expect.arrayContaining(common));
      expect(env.NODE_OPTIONS, 'no source maps are emitted, so no --enable-source-maps').toBeUndefined();
      expect('WEBHOOK_SECRET_ID' in env, `${name}: only the webhook reads the webhook secret`).toBe(name === 'webhook');
      const config = loadConfig(env);
      expect(config.cocEndpoint).toBe('https://coc.myhuaweicloud.com');
      expect(config.credentialsSecretId).toMatch(/^arn:aws:secretsmanager:eu-west-1:000000000000:secret:/);
      expect(config.eventBusName).toBe('default');
      expect(config.eventSource).toBe('coc.task-enabler');
      expect(config.maxApprovalAgeMs).toBe(86_400_000);
      expect(config.dryRun).toBe(false);
      expect(env.POWERTOOLS_SERVICE_NAME).toBe('coc-task-enabler');
    }
    expect(loadConfig(fn('webhook').Environment.Variables).webhookSecretId).toMatch(/:000000000000:secret:.*webhook/);
  });

  it('routes POST /approvals on the HTTP API to the webhook function', () => {
    const routes = Object.values(resourcesOfType(template, 'AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r) => r.RouteKey)).toEqual(['POST /approvals']);
    const integration = resources[routes[0]!.Target['Fn::Join'][1][1].Ref]!;
    expect(integration.Properties.IntegrationUri).toEqual(getAtt(LAMBDA_IDS.webhook));
  });

  it('sends approval events (source + detail-type) to the eventbridge function, with retries and a DLQ', () => {
    const approval = rules().find((r) => r.EventPattern);
    expect(approval?.EventPattern).toEqual({ source: ['com.example.approvals'], 'detail-type': ['Change Approval Decided'] });
    expect(approval?.State).toBe('ENABLED');
    const [target] = approval!.Targets;
    expect(target.Arn).toEqual(getAtt(LAMBDA_IDS.eventbridge));
    expect(target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 });
    expect(target.DeadLetterConfig).toEqual({ Arn: getAtt(dlqId()) });
    // The service's own outcome events must never match the approval rule (no loop).
    expect(approval!.EventPattern.source).not.toContain(fn('eventbridge').Environment.Variables.EVENT_SOURCE);
  });

  it('has a disabled sample schedule whose input the schedule door accepts', () => {
    const schedule = rules().find((r) => r.ScheduleExpression);
    expect(schedule?.ScheduleExpression).toMatch(/^(rate|cron)\(.+\)$/);
    expect(schedule?.State).toBe('DISABLED');
    const [target] = schedule!.Targets;
    expect(target.Arn).toEqual(getAtt(LAMBDA_IDS.eventbridge));
    expect(target.DeadLetterConfig).toEqual({ Arn: getAtt(dlqId()) });
    const input = JSON.parse(target.Input);
    expect(Object.keys(input).sort()).toEqual(['approval_id', 'task_ids', 'ticket_infos']);
    const request = parseTaskInput(input, 'schedule');
    expect(request.taskIds).toEqual(input.task_ids);
    expect(request.approvalId).toBe(input.approval_id);
  });

  it('ships one zip per function holding a single bundled .mjs and no node_modules', () => {
    expect(Object.keys(pkg.zips).sort()).toEqual(Object.keys(LAMBDA_IDS).sort());
    for (const [name, zip] of Object.entries(pkg.zips)) {
      const entries = zipEntries(zip);
      expect(entries.map((e) => e.name), name).toEqual([`functions/${name}.mjs`]);
      expect(entries[0]!.size).toBeLessThan(5 * 1024 * 1024);
      const code = entries[0]!.read().toString('utf8');
      expect(code.startsWith(esbuildOptions().banner!.js!), `${name}: createRequire banner first`).toBe(true);
    }
  });

  // Run from a directory with no node_modules above it: an import left unbundled would fail to load.
  it('each bundle loads as an ES module in plain Node, with nothing to resolve, and exports handler', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coc-bundles-'));
    try {
      for (const [name, zip] of Object.entries(pkg.zips)) {
        const file = join(dir, `${name}.mjs`);
        writeFileSync(file, zipEntries(zip)[0]!.read());
        const { stdout } = await promisify(execFile)(
          process.execPath,
          ['--input-type=module', '-e', `const m = await import(${JSON.stringify(file)}); console.log(typeof m.handler);`],
          { cwd: dir, env: { PATH: process.env.PATH ?? '' } },
        );
        expect(stdout.trim(), name).toBe('function');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('keeps serverless.yml custom.esbuild in step with scripts/build.ts', () => {
    const custom = pkg.state.service.custom.esbuild;
    for (const [key, value] of Object.entries(esbuildOptions())) {
      expect(custom[key], `custom.esbuild.${key}`).toEqual(value);
    }
    expect(custom.outputFileExtension).toBe('.mjs');
    expect(custom.exclude, 'nothing left out of the bundle').toEqual([]);
    expect(custom.packager).toBe('npm');
  });

  it('grants secretsmanager:GetSecretValue on exactly the two secrets and events:PutEvents on exactly the bus', () => {
    const statements = lambdaStatements();
    const secrets = statements.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'));
    expect(secrets).toHaveLength(1);
    expect(actionsOf(secrets[0])).toEqual(['secretsmanager:GetSecretValue']);
    const env = { ...fn('eventbridge').Environment.Variables, ...fn('webhook').Environment.Variables };
    expect(resourcesOf(secrets[0]).sort()).toEqual([env.HUAWEI_CREDENTIALS_SECRET_ID, env.WEBHOOK_SECRET_ID].sort());

    const puts = statements.filter((s) => actionsOf(s).includes('events:PutEvents'));
    expect(puts).toHaveLength(1);
    expect(actionsOf(puts[0])).toEqual(['events:PutEvents']);
    expect(resourcesOf(puts[0])).toEqual([
      { 'Fn::Sub': ['arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${BusName}', { BusName: env.EVENT_BUS_NAME }] },
    ]);

    for (const s of [...secrets, ...puts]) expect(JSON.stringify(s.Resource), 'no wildcard resources').not.toContain('*');
  });

  it('has no wildcard action or resource in any IAM policy', () => {
    const roles = Object.values(resourcesOfType(template, 'AWS::IAM::Role'));
    expect(roles.length).toBeGreaterThanOrEqual(2); // Lambda execution role + state machine role
    for (const role of roles) {
      for (const s of role.Properties.Policies.flatMap((p: Json) => p.PolicyDocument.Statement)) {
        expect(actionsOf(s).some((a) => a === '*' || a.endsWith(':*')), JSON.stringify(s)).toBe(false);
        expect(resourcesOf(s), JSON.stringify(s)).not.toContain('*');
      }
    }
  });

  it('uses obviously fake account ids for placeholders, and no access keys', () => {
    const text = JSON.stringify(template) + readFileSync(join(ROOT, 'serverless.yml'), 'utf8');
    for (const [, account] of text.matchAll(/arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):/g)) expect(account).toBe('000000000000');
    expect(text).not.toMatch(/\b(AKIA|ASIA)[0-9A-Z]{16}\b/);
  });

  it('sends failed async invocations of the eventbridge function to a 14-day SQS dead-letter queue after 2 retries', () => {
    const queue = resources[dlqId()]!.Properties;
    expect(queue.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    const configs = Object.values(resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig')).map((r) => r.Properties);
    expect(configs).toHaveLength(1);
    expect(configs[0]).toMatchObject({
      FunctionName: { Ref: LAMBDA_IDS.eventbridge },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: getAtt(dlqId()) } },
    });
    // Lambda sends to the destination with the function's role; EventBridge needs the queue policy.
    expect(lambdaStatements()).toContainEqual({ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: getAtt(dlqId()) });
    const policy = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy'))[0]!.Properties;
    expect(policy.Queues).toEqual([{ Ref: dlqId() }]);
    expect(policy.PolicyDocument.Statement[0]).toMatchObject({
      Principal: { Service: 'events.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: getAtt(dlqId()),
      Condition: { ArnLike: { 'aws:SourceArn': expect.anything() } },
    });
  });
});

describe('state machine EnableApprovedTasks', () => {
  it('is deployed from the definition file, invoking the stepfunctions function', () => {
    const machines = resourcesOfType(template, 'AWS::StepFunctions::StateMachine');
    expect(Object.keys(machines)).toEqual(['EnableApprovedTasks']);
    expect(withoutQueryLanguage(deployedDefinition())).toEqual(fileDefinition());
    const role = resources[machines.EnableApprovedTasks!.Properties.RoleArn['Fn::GetAtt'][0]]!;
    const statements = role.Properties.Policies.flatMap((p: Json) => p.PolicyDocument.Statement);
    expect(statements.flatMap(actionsOf)).toEqual(['lambda:InvokeFunction']);
    expect(JSON.stringify(statements)).not.toMatch(/WebhookLambdaFunction|EventbridgeLambdaFunction/);
  });

  it('retries COC throttling / unavailability and Lambda service errors, catches permanent errors then everything', () => {
    const definition = deployedDefinition();
    const task = definition.States[definition.StartAt];
    expect(task.Type).toBe('Task');
    expect(task.Resource).toBe(PLACEHOLDER_LAMBDA_ARN);
    expect(task.InputPath ?? '$', 'the function gets the execution input').toBe('$');
    expect(task.Parameters).toBeUndefined();

    const coc = task.Retry.find((r: Json) => r.ErrorEquals.includes('CocThrottled'));
    expect(coc.ErrorEquals).toEqual(expect.arrayContaining(RETRIED));
    expect(coc).toMatchObject({ IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 3, JitterStrategy: 'FULL' });
    const lambda = task.Retry.find((r: Json) => r.ErrorEquals.includes('Lambda.ServiceException'));
    expect(lambda.ErrorEquals).toEqual(expect.arrayContaining(LAMBDA_SERVICE_ERRORS));

    // What is retried is retryable in the error catalogue; what is caught first is not.
    for (const name of coc.ErrorEquals as ErrorName[]) expect(new EnablerError(name, 'x').retryable, name).toBe(true);
    const [permanent, rest] = task.Catch;
    expect([...permanent.ErrorEquals].sort()).toEqual([...CAUGHT].sort());
    for (const name of CAUGHT) expect(new EnablerError(name, 'x').retryable, name).toBe(false);
    expect(rest.ErrorEquals).toEqual(['States.ALL']);
    expect(task.Catch).toHaveLength(2);

    // Each catcher keeps the input, records the error and ends in a Fail state via a Pass state.
    for (const catcher of task.Catch) {
      expect(catcher.ResultPath).toBe('$.error');
      const record = definition.States[catcher.Next];
      expect(record.Type).toBe('Pass');
      const fail = definition.States[record.Next];
      expect(fail.Type).toBe('Fail');
      expect(fail.Error).toMatch(/^\w+$/);
      expect(fail.Cause.length).toBeGreaterThan(20);
    }
    expect(definition.States[task.Next].Type).toBe('Succeed');
    expect(task.ResultPath, 'the result sits next to the input').toBe('$.result');
  });

  it('is valid Amazon States Language (asl-validator, ARN check on)', () => {
    for (const definition of [fileDefinition(), deployedDefinition()]) {
      const { isValid, errorsText } = aslValidator(structuredClone(definition), { checkArn: true, checkPaths: true });
      expect(isValid, errorsText()).toBe(true);
    }
    // ...and the validator does reject a broken definition.
    const broken = fileDefinition();
    broken.States[broken.StartAt].Catch[0].Next = 'NoSuchState';
    expect(aslValidator(broken).isValid).toBe(false);
  });
});
