/**
 * Benchmark child that hosts one Lambda function bundle (dist/<fn>/index.mjs) in a plain
 * Node process, configured only through the environment as Lambda would be.
 *
 *   node handler-worker.mjs <bundle.mjs>            BENCH_EVENT=<json>  one-shot (cold start)
 *   node handler-worker.mjs <bundle.mjs> --ipc                          driven over IPC
 *
 * One-shot: import the bundle, handle one event, print `BENCH_RESULT <json>` and exit at
 * once (keep-alive sockets would otherwise hold the process open; Lambda freezes it instead).
 * IPC: import, send `{op:'ready'}`, then answer `{op:'invoke', events, concurrency}` with
 * timings and an outcome tally, until `{op:'exit'}` or the parent goes away.
 *
 * Deliberately imports nothing but node: built by the bench with esbuild into a plain .mjs
 * so the cold-start child pays nothing the Lambda runtime would not.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const bundle = process.argv[2];
if (!bundle) {
  process.stderr.write('usage: handler-worker <bundle.mjs> [--ipc]\n');
  process.exit(2);
}
const ipc = process.argv.includes('--ipc');
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'bench';
const timeoutMs = Number(process.env.BENCH_TIMEOUT_MS ?? 60_000);

function lambdaContext(): Record<string, unknown> {
  const endsAt = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface Tally {
  ok: number;
  failed: number;
  outcomes: Record<string, number>;
  statusCodes: Record<string, number>;
  errors: string[];
}

const bump = (r: Record<string, number>, k: string, n = 1) => {
  r[k] = (r[k] ?? 0) + n;
};

/** Counts outcome kinds in whatever a door returns (`{outcomes}` or an HTTP answer with a JSON body). */
function tallyResult(t: Tally, result: unknown): void {
  let value = result as Record<string, unknown> | undefined;
  if (value && typeof value.statusCode === 'number') {
    bump(t.statusCodes, String(value.statusCode));
    try {
      value = typeof value.body === 'string' ? (JSON.parse(value.body) as Record<string, unknown>) : undefined;
    } catch {
      value = undefined;
    }
  }
  const outcomes = Array.isArray(value?.outcomes) ? (value.outcomes as Array<{ outcome?: string }>) : [];
  for (const o of outcomes) bump(t.outcomes, String(o.outcome));
}

const describe = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)).slice(0, 300);

async function invokeAll(handler: Handler, events: unknown[], concurrency: number): Promise<Tally & { elapsedMs: number; cpuMs: number; cpuUserMs: number; cpuSystemMs: number }> {
  const t: Tally = { ok: 0, failed: 0, outcomes: {}, statusCodes: {}, errors: [] };
  let next = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const lane = async () => {
    while (next < events.length) {
      const event = events[next++];
      try {
        tallyResult(t, await handler(event, lambdaContext()));
        t.ok++;
      } catch (e) {
        t.failed++;
        if (t.errors.length < 3) t.errors.push(describe(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, events.length)) }, lane));
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return { ...t, elapsedMs, cpuMs: (cpu.user + cpu.system) / 1000, cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000 };
}

const memory = () => ({ maxRssKb: process.resourceUsage().maxRSS, rssKb: Math.round(process.memoryUsage.rss() / 1024) });

const importStarted = performance.now();
const mod = (await import(pathToFileURL(bundle).href)) as { handler?: Handler };
const importMs = performance.now() - importStarted;
if (typeof mod.handler !== 'function') throw new Error(`${bundle} exports no handler`);
const handler = mod.handler;

if (!ipc) {
  const event: unknown = JSON.parse(process.env.BENCH_EVENT ?? '{}');
  const r = await invokeAll(handler, [event], 1);
  const result = { ...r, bootMs: importStarted, importMs, handleMs: r.elapsedMs, ...memory() };
  process.stdout.write(`\nBENCH_RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
} else {
  const send = (m: unknown) => process.send?.(m);
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { op: string; id?: number; events?: unknown[]; concurrency?: number }) => {
    if (m.op === 'exit') process.exit(0);
    if (m.op === 'invoke') {
      invokeAll(handler, m.events ?? [], m.concurrency ?? 1).then(
        (r) => send({ op: 'result', id: m.id, ...r, ...memory() }),
        (e: unknown) => send({ op: 'result', id: m.id, crashed: describe(e), ...memory() }),
      );
    }
  });
  send({ op: 'ready', importMs, ...memory() });
}
