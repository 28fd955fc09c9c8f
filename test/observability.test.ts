import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../functions/stepfunctions';
import { loadConfig } from '../lib/config';
import type { Credentials } from '../lib/credentials';
import { createRuntime, resetRuntime } from '../lib/runtime';
import { MemorySink } from '../lib/sink';
import { localContext } from '../scripts/cli';
import { startCocSimulator, type CocSimulator } from '../simulator/coc-simulator';
import { registerSecret } from './support/leak-capture';

// In Lambda (AWS_LAMBDA_FUNCTION_NAME set) logs are Powertools JSON on stdout with the
// Lambda request id, and metrics are EMF documents flushed after each invocation.
const CREDS: Credentials = { ak: 'AKOBSERVABILITY00001', sk: 'sk-observability-test-secret' };
registerSecret({ ak: CREDS.ak, sk: CREDS.sk });
const ENABLE = 'ST0000000000000000DEMO0001';
const MISSING = 'ST0000000000000000DEMO0404';

let sim: CocSimulator;
let lines: string[];

beforeAll(async () => {
  sim = await startCocSimulator({ credentials: [{ ...CREDS }] });
  vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'coc-task-enabler-test-stepfunctions');
  vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'CocTaskEnablerTest');
});

afterAll(async () => {
  vi.unstubAllEnvs();
  resetRuntime();
  await sim.close();
});

beforeEach(() => {
  sim.reset();
  sim.seedTask(ENABLE, { enabled: false });
  lines = [];
  // Powertools writes WARN and ERROR through console.warn / console.error: both reach CloudWatch.
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return write(chunk as never, ...(rest as []));
    });
  }
  resetRuntime(
    createRuntime(loadConfig({ COC_ENDPOINT: sim.url, LOG_LEVEL: 'info' }), {
      credentials: { get: async () => CREDS, refresh: async () => CREDS },
      sink: new MemorySink(),
    }),
  );
});

afterEach(() => vi.restoreAllMocks());

const json = () => lines.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : []));

describe('observability in Lambda', () => {
  it('logs structured JSON carrying the Lambda request id, approval id and task id', async () => {
    const context = localContext('stepfunctions');
    await expect(handler({ approval_id: 'CHG-OBS-1', task_ids: [ENABLE, MISSING] }, context)).rejects.toMatchObject({ name: 'TaskNotFound' });
    const logs = json().filter((l) => typeof l.message === 'string' && !('_aws' in l));
    const failure = logs.find((l) => l.message === 'task not enabled');
    expect(failure).toMatchObject({ level: 'WARN', service: 'coc-task-enabler', function_request_id: context.awsRequestId, approvalId: 'CHG-OBS-1', taskId: MISSING });
    expect(logs.find((l) => l.message === 'approval processed')).toMatchObject({ function_request_id: context.awsRequestId, approvalId: 'CHG-OBS-1', enabled: 1, failed: 1 });
    expect(lines.join('\n')).not.toContain(CREDS.sk);
  });

  it('flushes EMF metrics for outcomes and COC latency after the invocation', async () => {
    await handler({ approval_id: 'CHG-OBS-2', task_id: ENABLE }, localContext('stepfunctions'));
    const emf = json().filter((l) => '_aws' in l);
    const names = emf.flatMap((d) => (d._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] }).CloudWatchMetrics.flatMap((m) => m.Metrics.map((x) => x.Name)));
    expect(names).toEqual(expect.arrayContaining(['Enabled', 'CocLatency']));
    const doc = emf.find((d) => 'Enabled' in d)!;
    expect(doc.Enabled).toBe(1);
    expect((doc._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]!.Namespace).toBe('CocTaskEnablerTest');
  });
});
