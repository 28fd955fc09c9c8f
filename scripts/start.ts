/**
 * npm start: the main job on embedded defaults. Starts the local COC simulator on
 * loopback with four demo tasks, points the Step Functions handler at it and runs it on
 * events/stepfunctions.json: one task is enabled, one is already enabled, one does not
 * exist, and one is hit by a transient 503 that the retries absorb. Outcome events are
 * printed as JSON lines (the stdout sink), then a readable summary.
 */
import { readFile } from 'node:fs/promises';
import type { Outcome } from '../lib/domain';
import { DEMO_CREDENTIAL, startCocSimulator } from '../simulator/coc-simulator';
import { describeFailure, localContext } from './cli';

const { ak: DEMO_AK, sk: DEMO_SK } = DEMO_CREDENTIAL;
const EVENT_FILE = new URL('../events/stepfunctions.json', import.meta.url);
const [ENABLE, ALREADY, MISSING, FLAKY] = [
  'ST0000000000000000DEMO0001',
  'ST0000000000000000DEMO0002',
  'ST0000000000000000DEMO0404',
  'ST0000000000000000DEMO0503',
] as const;

async function main(): Promise<number> {
  // The demo's own credentials: the simulator knows only these.
  process.env.HUAWEICLOUD_SDK_AK = DEMO_AK;
  process.env.HUAWEICLOUD_SDK_SK = DEMO_SK;
  delete process.env.HUAWEICLOUD_SDK_SECURITY_TOKEN;
  delete process.env.HUAWEI_CREDENTIALS_SECRET_ID;
  delete process.env.EVENT_BUS_NAME;
  process.env.LOG_LEVEL ??= 'error';

  const sim = await startCocSimulator({ credentials: [{ ak: DEMO_AK, sk: DEMO_SK }] });
  process.env.COC_ENDPOINT = sim.url;
  sim.seedTask(ENABLE, { enabled: false });
  sim.seedTask(ALREADY, { enabled: true });
  sim.seedTask(FLAKY, { enabled: false });
  sim.injectFault({ fault: { kind: 'status', status: 503 }, taskId: FLAKY, times: 1 });
  process.stderr.write(`COC simulator listening on ${sim.url} with demo tasks; running the stepfunctions handler on events/stepfunctions.json\n\n`);

  const outcomes: Outcome[] = [];
  const { createRuntime, resetRuntime } = await import('../lib/runtime');
  const { StdoutSink } = await import('../lib/sink');
  const stdout = new StdoutSink();
  resetRuntime(createRuntime(undefined, { sink: { publish: async (o) => (outcomes.push(...o), stdout.publish(o)) } }));
  const { handler } = await import('../functions/stepfunctions');

  const event: unknown = JSON.parse(await readFile(EVENT_FILE, 'utf8'));
  let thrown: unknown;
  try {
    await handler(event, localContext('stepfunctions'));
  } catch (e) {
    thrown = e;
  }

  const requests = sim.requests();
  process.stdout.write(`\nSummary of approval ${(event as { approval_id: string }).approval_id}:\n`);
  // Events go out as tasks finish; the summary follows the approval's order.
  const order = (event as { task_ids: string[] }).task_ids;
  outcomes.sort((a, b) => order.indexOf(a.taskId) - order.indexOf(b.taskId));
  for (const o of outcomes) {
    const what = o.outcome === 'failed' ? `failed: ${o.error?.name} (${o.error?.code ?? 'no code'})` : o.outcome;
    const retried = o.attempts > 1 && o.outcome !== 'failed' ? `, ${o.attempts - 1} transient failure(s) absorbed by retries` : '';
    process.stdout.write(`  ${o.taskId}  ${what.padEnd(36)} attempts ${o.attempts}${retried}\n`);
  }
  process.stdout.write(`  COC simulator received ${requests.length} signed request(s), ${requests.filter((r) => r.signatureValid).length} with a valid signature\n`);
  if (thrown) {
    process.stdout.write(`  The handler then threw, as a state machine would see it: ${describeFailure(thrown).replace(/^error: /, '')}\n`);
  }
  resetRuntime();
  await sim.close();
  return outcomes.length === 4 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${describeFailure(e)}\n`);
    process.exit(1);
  },
);
