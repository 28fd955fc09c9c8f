/**
 * `npm run bench`: the performance benchmark. Everything is measured side by side in one
 * run, so ratios hold on a noisy machine; each measurement is repeated and the median
 * reported. Prints a table and writes bench/results.json.
 *
 *   1. Cold start   fresh `node` process: import dist/<fn>/index.mjs, handle one event against
 *                   loopback fakes, exit; wall time / wall time of `node -e 0`. Same for a naive
 *                   bundle (bench/baseline/esbuild.config.ts). Bundle bytes per function.
 *   2. Warm         enables/s at concurrency 16, client CPU µs per enable, p50/p99: our CocClient
 *                   vs the official @huaweicloud/huaweicloud-sdk-core client vs a bare node:http
 *                   keep-alive POST, each in its own process; the simulator in another.
 *   3. Secrets      GetSecretValue calls for 100 concurrent first invocations, then 1,000 warm ones.
 *   4. Batch        one approval of 1,000 tasks, simulator latency 20 ms, ENABLE_CONCURRENCY=16;
 *                   again with the simulator rate-limited (429s counted, every task must end enabled).
 *   5. Memory       peak RSS of the cold-start process and of the process after the batch.
 *
 * Builds everything itself (scripts/build.ts's buildAll into dist/, plus the baseline and the
 * bench's child workers into bench/build.tmp/), binds 127.0.0.1 only, and stops every child it
 * started. Knobs (environment): BENCH_QUICK=1 (smoke run), BENCH_COLD_ROUNDS, BENCH_WARM_ROUNDS,
 * BENCH_WARM_COUNT, BENCH_WARM_SECONDS, BENCH_BATCH_ROUNDS, BENCH_BUILD_WAIT_SECONDS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { Webhook } from 'standardwebhooks';
import { baselineOptions } from '../bench/baseline/esbuild.config';
import { DEMO_CREDENTIAL } from '../simulator/coc-simulator';
import { FAKE_REGION, startEventBridgeFake, startSecretsManagerFake } from '../test/support/aws-fakes';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const at = (...p: string[]) => join(ROOT, ...p);
const TMP = at('bench', 'build.tmp'); // gitignored (bench/*.tmp)
const RESULTS = at('bench', 'results.json');

const envNum = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const QUICK = process.env.BENCH_QUICK === '1';
const COLD_ROUNDS = envNum('BENCH_COLD_ROUNDS', QUICK ? 2 : 7);
const WARM_ROUNDS = envNum('BENCH_WARM_ROUNDS', QUICK ? 1 : 5);
const WARM_COUNT = envNum('BENCH_WARM_COUNT', QUICK ? 3000 : 20_000);
const WARM_SECONDS = envNum('BENCH_WARM_SECONDS', QUICK ? 2 : 4);
const BATCH_ROUNDS = envNum('BENCH_BATCH_ROUNDS', QUICK ? 1 : 3);
const BUILD_WAIT_SECONDS = envNum('BENCH_BUILD_WAIT_SECONDS', 180);
const CONCURRENCY = 16;
const BATCH_TASKS = 1000;
const BATCH_LATENCY_MS = 20;
const RATE_LIMIT = 200;

const GOALS = {
  cold_start_ratio: { max: 1.5 },
  bundle_bytes_max: { max: 250 * 1024 },
  throughput_vs_official: { min: 3 },
  client_cpu_us_per_enable: { max: 150 },
  p99_overhead_ms: { max: 2 },
  secrets_calls_cold_100: { max: 1 },
  secrets_calls_warm_1000: { max: 0 },
  batch_efficiency: { min: 0.87 },
} as const;

// ---------------------------------------------------------------------------------------
// Small helpers

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : NaN);
const rotate = <T>(xs: T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length]!);
const taskId = (tag: string, i: number) => `ST${tag}${String(i).padStart(20, '0')}`;
const taskIds = (tag: string, n: number) => Array.from({ length: n }, (_, i) => taskId(tag, i));

/** CPU time (user + system, µs) of another process, from /proc (Linux); NaN elsewhere. */
function processCpuUs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // utime, stime in USER_HZ (100)
  } catch {
    return NaN;
  }
}

const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function stopChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}
process.on('exit', stopChildren);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    stopChildren();
    process.exit(130);
  });
}

interface RunResult {
  wallMs: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns node with args; wall time from spawn() to the child's exit. */
function runNode(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = track(spawn(process.execPath, args, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
    let wallMs = NaN;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', () => {
      wallMs = performance.now() - started;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ wallMs, code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

function benchResult<T>(r: RunResult, what: string): T {
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`${what}: no result (exit ${r.code}): ${(r.stderr || r.stdout).slice(-800)}`);
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as T;
}

// ---------------------------------------------------------------------------------------
// Builds

type BuildModule = {
  FUNCTIONS: Record<string, string>;
  esbuildOptions: (overrides?: BuildOptions) => BuildOptions;
  buildAll: (outdir?: string) => Promise<Record<string, number>>;
};

/** scripts/build.ts is written by someone else: wait for it to appear, then use it as is. */
async function loadBuild(): Promise<BuildModule> {
  const file = at('scripts', 'build.ts');
  const until = Date.now() + BUILD_WAIT_SECONDS * 1000;
  for (;;) {
    if (existsSync(file)) {
      try {
        const m = (await import('./build')) as Partial<BuildModule>;
        if (typeof m.esbuildOptions === 'function' && typeof m.buildAll === 'function' && m.FUNCTIONS) return m as BuildModule;
      } catch (e) {
        if (Date.now() > until) throw e;
      }
    }
    if (Date.now() > until) throw new Error('scripts/build.ts (esbuildOptions, buildAll, FUNCTIONS) did not appear');
    log('waiting for scripts/build.ts ...');
    await sleep(3000);
  }
}

interface PackageShare {
  module: string;
  bytes: number;
}

/** Bytes in the output per package (node_modules/<pkg>) or top-level source folder. */
function composition(meta: Metafile, outFile: string): PackageShare[] {
  const out = Object.entries(meta.outputs).find(([k]) => k.endsWith(outFile))?.[1];
  if (!out) return [];
  const by = new Map<string, number>();
  for (const [path, { bytesInOutput }] of Object.entries(out.inputs)) {
    const nm = path.lastIndexOf('node_modules/');
    let key: string;
    if (nm >= 0) {
      const parts = path.slice(nm + 'node_modules/'.length).split('/');
      key = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
    } else {
      key = `${path.split('/')[0]}/`;
    }
    by.set(key, (by.get(key) ?? 0) + bytesInOutput);
  }
  return [...by.entries()].map(([module, bytes]) => ({ module, bytes })).sort((a, b) => b.bytes - a.bytes);
}

interface Builds {
  functions: string[];
  tuned: Record<string, { file: string; bytes: number; composition: PackageShare[] }>;
  baseline: Record<string, { file: string; bytes: number; composition: PackageShare[] }>;
  workers: { handler: string; warm: string; sim: string; floor: string };
}

async function buildEverything(b: BuildModule): Promise<Builds> {
  const functions = Object.keys(b.FUNCTIONS).filter((fn) => existsSync(at(b.FUNCTIONS[fn]!)));
  const entryPoints = functions.map((fn) => ({ in: at(b.FUNCTIONS[fn]!), out: `${fn}/index` }));
  rmSync(TMP, { recursive: true, force: true });
  mkdirSync(TMP, { recursive: true });

  // The product, exactly as `npm run build` makes it.
  const started = performance.now();
  if (functions.length === Object.keys(b.FUNCTIONS).length) {
    await b.buildAll(at('dist'));
  } else {
    log(`building only ${functions.join(', ')} (other entries missing)`);
    await build(b.esbuildOptions({ entryPoints, outdir: at('dist'), outExtension: { '.js': '.mjs' }, logLevel: 'warning' }));
  }
  log(`built dist/ in ${Math.round(performance.now() - started)} ms`);
  // The same options once more, not written, for the metafile (which modules fill the bundle).
  const analysis = await build(
    b.esbuildOptions({ entryPoints, outdir: join(TMP, 'analysis'), outExtension: { '.js': '.mjs' }, metafile: true, write: false, logLevel: 'silent' }),
  );
  const baseline = await build(
    baselineOptions({ entryPoints, outdir: join(TMP, 'baseline'), outExtension: { '.js': '.mjs' }, metafile: true, logLevel: 'error' }),
  );
  // The bench's own children: plain .mjs so they start as fast as Lambda's runtime would.
  // Packages stay external and resolve from ./node_modules (bench/build.tmp/ is inside the repo).
  await build({
    entryPoints: {
      'handler-worker': at('bench', 'handler-worker.ts'),
      'warm-client': at('bench', 'warm-client.ts'),
      'sim-server': at('bench', 'sim-server.ts'),
      'floor-handler': at('bench', 'floor-handler.ts'),
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outdir: join(TMP, 'workers'),
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });

  const tuned: Builds['tuned'] = {};
  const base: Builds['baseline'] = {};
  for (const fn of functions) {
    const file = at('dist', fn, 'index.mjs');
    tuned[fn] = { file, bytes: statSync(file).size, composition: composition(analysis.metafile!, `${fn}/index.mjs`) };
    const bfile = join(TMP, 'baseline', fn, 'index.mjs');
    base[fn] = { file: bfile, bytes: statSync(bfile).size, composition: composition(baseline.metafile!, `${fn}/index.mjs`) };
  }
  const w = (name: string) => join(TMP, 'workers', `${name}.mjs`);
  return { functions, tuned, baseline: base, workers: { handler: w('handler-worker'), warm: w('warm-client'), sim: w('sim-server'), floor: w('floor-handler') } };
}

// ---------------------------------------------------------------------------------------
// The simulator (its own process) and the AWS fakes (this process)

interface Sim {
  url: string;
  child: ChildProcess;
  control<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  seed(ids: string[], enabled?: boolean): Promise<void>;
  stats(): Promise<{ requests: number; byStatus: Record<string, number> }>;
}

async function startSim(script: string): Promise<Sim> {
  const child = track(spawn(process.execPath, [script], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'], env: cleanEnv() }));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('simulator did not start')), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve((JSON.parse(buf.slice(0, nl)) as { url: string }).url);
      }
    });
    child.on('exit', (code) => reject(new Error(`simulator exited (${code})`)));
  });
  child.stdout!.resume();
  const control = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`simulator ${method} ${path}: ${res.status} ${JSON.stringify(json).slice(0, 200)}`);
    return json;
  };
  return {
    url,
    child,
    control,
    async seed(ids, enabled = false) {
      for (let i = 0; i < ids.length; i += 4000) {
        await control('POST', '/_sim/tasks', { tasks: ids.slice(i, i + 4000).map((task_id) => ({ task_id, enabled })) });
      }
    },
    stats: () => control('GET', '/_sim/stats'),
  };
}

/** Only what a child needs: no NODE_OPTIONS or loader flags from this (tsx) process. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8', TZ: 'UTC', ...extra };
}

const CREDENTIALS_SECRET = 'coc-task-enabler/bench/huawei-credentials';
const WEBHOOK_SECRET = 'coc-task-enabler/bench/webhook-signing-key';
const WEBHOOK_KEY = `whsec_${randomBytes(32).toString('base64')}`;

interface Fakes {
  sm: Awaited<ReturnType<typeof startSecretsManagerFake>>;
  eb: Awaited<ReturnType<typeof startEventBridgeFake>>;
}

/** The function's environment as serverless.yml gives it, pointed at the loopback fakes. */
function lambdaEnv(fn: string, sim: Sim, fakes: Fakes, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cleanEnv({
    AWS_LAMBDA_FUNCTION_NAME: `coc-task-enabler-bench-${fn}`,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_REGION: FAKE_REGION,
    AWS_DEFAULT_REGION: FAKE_REGION,
    AWS_ACCESS_KEY_ID: 'FAKE-BENCH-ACCESS-KEY',
    AWS_SECRET_ACCESS_KEY: 'fake-bench-secret-not-real',
    AWS_CONFIG_FILE: join(TMP, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(TMP, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: fakes.sm.url,
    AWS_ENDPOINT_URL_EVENTBRIDGE: fakes.eb.url,
    COC_ENDPOINT: sim.url,
    HUAWEI_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET,
    EVENT_BUS_NAME: 'default',
    EVENT_SOURCE: 'coc.task-enabler',
    TASK_ALLOW_LIST: '',
    MAX_APPROVAL_AGE_SECONDS: '86400',
    DRY_RUN: 'false',
    VERIFY_AFTER_ENABLE: 'false',
    POWERTOOLS_SERVICE_NAME: 'coc-task-enabler',
    POWERTOOLS_METRICS_NAMESPACE: 'CocTaskEnabler',
    LOG_LEVEL: 'INFO',
    ...(fn === 'webhook' && { WEBHOOK_SECRET_ID: WEBHOOK_SECRET }),
    ...extra,
  });
}

// ---------------------------------------------------------------------------------------
// 1. Cold start

const readEvent = (name: string, fallback: unknown): Record<string, unknown> => {
  const file = at('events', name);
  return (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : fallback) as Record<string, unknown>;
};

/** A fresh event for one cold run, and the task ids it names (seeded disabled before the run). */
function coldEvent(fn: string): { event: unknown; tasks: string[] } {
  const demo = ['ST0000000000000000DEMO0001', 'ST0000000000000000DEMO0002'];
  const ticket = [{ ticket_id: 'CM202612040002', ticket_type: 'CHANGE' }];
  if (fn === 'stepfunctions') {
    const e = readEvent('stepfunctions-single.json', { approval_id: 'CHG-BENCH', task_id: demo[0], ticket_infos: ticket });
    return { event: e, tasks: [e.task_id as string, ...((e.task_ids as string[]) ?? [])].filter(Boolean) };
  }
  if (fn === 'eventbridge') {
    const e = readEvent('eventbridge-approval.json', {
      version: '0', id: randomUUID(), 'detail-type': 'Change Approval Decided', source: 'com.example.approvals',
      account: '123456789012', time: new Date().toISOString(), region: FAKE_REGION, resources: [],
      detail: { approval_id: 'CHG-BENCH', decision: 'APPROVED', task_ids: demo, ticket_infos: ticket },
    });
    const d = e.detail as { task_id?: string; task_ids?: string[] };
    return { event: { ...e, id: randomUUID() }, tasks: [d.task_id, ...(d.task_ids ?? [])].filter((t): t is string => !!t) };
  }
  // webhook: the sample body, re-signed now (Standard Webhooks) with the key the fake holds.
  const e = readEvent('webhook-approved.json', {
    version: '2.0', routeKey: 'POST /approvals', rawPath: '/approvals', rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: { http: { method: 'POST', path: '/approvals' } },
    body: JSON.stringify({ approval_id: 'CHG-BENCH', decision: 'APPROVED', task_ids: demo, ticket_infos: ticket }),
    isBase64Encoded: false,
  });
  const body = String(e.body ?? '');
  const id = `msg_${randomUUID().replace(/-/g, '')}`;
  const now = new Date();
  const headers = Object.fromEntries(
    Object.entries((e.headers as Record<string, string>) ?? {}).filter(([k]) => !k.toLowerCase().startsWith('webhook-')),
  );
  const signed = {
    ...e,
    headers: {
      ...headers,
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(WEBHOOK_KEY).sign(id, now, body),
    },
  };
  const parsed = JSON.parse(body) as { task_id?: string; task_ids?: string[] };
  return { event: signed, tasks: [parsed.task_id, ...(parsed.task_ids ?? [])].filter((t): t is string => !!t) };
}

interface ColdChild {
  ok: number;
  failed: number;
  errors: string[];
  outcomes: Record<string, number>;
  statusCodes: Record<string, number>;
  bootMs: number;
  importMs: number;
  handleMs: number;
  maxRssKb: number;
}

interface ColdStat {
  runs: number;
  errors: string[];
  outcomes: Record<string, number>;
  wallMs: number[];
  ratio: number[];
  importMs: number[];
  handleMs: number[];
  rssMb: number[];
}

async function coldStart(builds: Builds, sim: Sim, fakes: Fakes) {
  const jobs: Array<{ key: string; fn?: string; variant?: 'tuned' | 'baseline' | 'floor' }> = [
    { key: 'node -e 0' },
    { key: 'floor', fn: 'stepfunctions', variant: 'floor' },
  ];
  for (const fn of builds.functions) {
    jobs.push({ key: `${fn}`, fn, variant: 'tuned' }, { key: `${fn} (baseline)`, fn, variant: 'baseline' });
  }
  const stats = new Map<string, ColdStat>(
    jobs.map((j) => [j.key, { runs: 0, errors: [], outcomes: {}, wallMs: [], ratio: [], importMs: [], handleMs: [], rssMb: [] }]),
  );
  const nodeEnv = cleanEnv();
  // Round -1 is an untimed pass, so the OS file cache holds node and every bundle.
  for (let r = -1; r < COLD_ROUNDS; r++) {
    const walls = new Map<string, number>();
    for (const job of rotate(jobs, Math.max(0, r))) {
      const s = r < 0 ? ({ runs: 0, errors: [], outcomes: {}, wallMs: [], ratio: [], importMs: [], handleMs: [], rssMb: [] } as ColdStat) : stats.get(job.key)!;
      if (!job.fn) {
        const res = await runNode(['-e', '0'], nodeEnv);
        walls.set(job.key, res.wallMs);
        s.wallMs.push(res.wallMs);
        s.runs++;
        continue;
      }
      const { event, tasks } = coldEvent(job.fn);
      await sim.seed(tasks, false);
      const bundle = job.variant === 'floor' ? builds.workers.floor : job.variant === 'tuned' ? builds.tuned[job.fn]!.file : builds.baseline[job.fn]!.file;
      const env = lambdaEnv(job.fn, sim, fakes, { BENCH_EVENT: JSON.stringify(event) });
      const res = await runNode([builds.workers.handler, bundle], env);
      let child: ColdChild;
      try {
        child = benchResult<ColdChild>(res, `cold ${job.key}`);
      } catch (e) {
        s.errors.push((e as Error).message.slice(0, 300));
        continue;
      }
      s.runs++;
      walls.set(job.key, res.wallMs);
      s.wallMs.push(res.wallMs);
      s.importMs.push(child.importMs);
      s.handleMs.push(child.handleMs);
      s.rssMb.push(child.maxRssKb / 1024);
      const codes = Object.keys(child.statusCodes);
      if (child.failed > 0 || codes.some((c) => Number(c) >= 400)) {
        if (s.errors.length < 3) s.errors.push(child.errors[0] ?? `HTTP ${codes.join(',')}`);
      }
      for (const [k, v] of Object.entries(child.outcomes)) s.outcomes[k] = (s.outcomes[k] ?? 0) + v;
    }
    if (r < 0) continue;
    const base = walls.get('node -e 0')!;
    for (const [k, w] of walls) if (k !== 'node -e 0') stats.get(k)!.ratio.push(w / base);
    log(`cold start round ${r + 1}/${COLD_ROUNDS}`);
  }
  return stats;
}

// ---------------------------------------------------------------------------------------
// 2. Warm per-enable cost

interface WarmChild {
  client: string;
  count: number;
  elapsedMs: number;
  enablesPerSec: number;
  cpuUsPerEnable: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  statuses: Record<string, number>;
  maxRssKb: number;
  simCpuUsPerRequest: number;
}

const WARM_CLIENTS = [
  { client: 'ours', tag: 'OURS' },
  { client: 'official', tag: 'OFFI' },
  { client: 'bare', tag: 'BARE' },
  { client: 'signed', tag: 'SIGN' },
] as const;

async function warm(builds: Builds, sim: Sim) {
  const runs: Record<string, WarmChild[]> = { ours: [], official: [], bare: [], signed: [] };
  const overheads: number[] = [];
  const warmup = 300;
  for (let r = 0; r < WARM_ROUNDS; r++) {
    await sim.control('POST', '/_sim/reset');
    for (const c of WARM_CLIENTS) await sim.seed(taskIds(c.tag, WARM_COUNT + warmup), false);
    const round: Record<string, WarmChild> = {};
    for (const c of rotate([...WARM_CLIENTS], r)) {
      const env = cleanEnv({
        BENCH_CLIENT: c.client,
        BENCH_ENDPOINT: sim.url,
        BENCH_AK: DEMO_CREDENTIAL.ak,
        BENCH_SK: DEMO_CREDENTIAL.sk,
        BENCH_TAG: c.tag,
        BENCH_COUNT: String(WARM_COUNT),
        BENCH_WARMUP: String(warmup),
        BENCH_SECONDS: String(WARM_SECONDS),
        BENCH_CONCURRENCY: String(CONCURRENCY),
      });
      const s0 = await sim.stats();
      const cpu0 = processCpuUs(sim.child.pid);
      const res = await runNode([builds.workers.warm], env, (WARM_SECONDS + 60) * 1000);
      const simCpu = processCpuUs(sim.child.pid) - cpu0;
      const s1 = await sim.stats();
      const child = { ...benchResult<WarmChild>(res, `warm ${c.client}`), simCpuUsPerRequest: simCpu / (s1.requests - s0.requests) };
      round[c.client] = child;
      runs[c.client]!.push(child);
    }
    overheads.push(round.ours!.p99Ms - round.bare!.p99Ms);
    log(
      `warm round ${r + 1}/${WARM_ROUNDS}: ${WARM_CLIENTS.map((c) => `${c.client} ${Math.round(round[c.client]!.enablesPerSec)}/s`).join(', ')}`,
    );
  }
  const med = (client: string, k: keyof WarmChild) => median(runs[client]!.map((x) => x[k] as number));
  return { runs, overheads, med };
}

// ---------------------------------------------------------------------------------------
// IPC host for one function bundle (secrets and batch sections)

interface InvokeResult {
  elapsedMs: number;
  /** CPU of the function's process during the invocations. */
  cpuMs: number;
  ok: number;
  failed: number;
  errors: string[];
  outcomes: Record<string, number>;
  maxRssKb: number;
  rssKb: number;
  crashed?: string;
  simCpuUsPerRequest?: number;
}

async function startHost(builds: Builds, fn: string, env: NodeJS.ProcessEnv) {
  const child = track(spawn(process.execPath, [builds.workers.handler, builds.tuned[fn]!.file, '--ipc'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }));
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  let nextId = 0;
  const waiting = new Map<number, (r: InvokeResult) => void>();
  const ready = new Promise<{ importMs: number; maxRssKb: number }>((resolve, reject) => {
    child.on('message', (m: { op: string; id?: number } & InvokeResult & { importMs: number }) => {
      if (m.op === 'ready') resolve(m);
      if (m.op === 'result' && m.id !== undefined) waiting.get(m.id)?.(m);
    });
    child.on('exit', (code) => reject(new Error(`function host exited (${code}): ${stderr.slice(-800)}`)));
  });
  await ready;
  return {
    invoke(events: unknown[], concurrency: number): Promise<InvokeResult> {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`function host exited (${code}): ${stderr.slice(-800)}`));
        child.once('exit', onExit);
        waiting.set(id, (r) => {
          child.off('exit', onExit);
          waiting.delete(id);
          if (r.crashed) reject(new Error(r.crashed));
          else resolve(r);
        });
        child.send({ op: 'invoke', id, events, concurrency });
      });
    },
    stop() {
      if (child.connected) child.send({ op: 'exit' });
      setTimeout(() => child.kill('SIGTERM'), 2000).unref();
    },
  };
}

const TICKETS = [{ ticket_id: 'CM202612040002', ticket_type: 'CHANGE' }];

// ---------------------------------------------------------------------------------------
// 3. Secrets traffic

async function secrets(builds: Builds, sim: Sim, fakes: Fakes) {
  const fn = 'stepfunctions';
  await sim.control('POST', '/_sim/reset');
  const ids = taskIds('SECR', 1100);
  await sim.seed(ids, false);
  const host = await startHost(builds, fn, lambdaEnv(fn, sim, fakes));
  try {
    const calls = () => fakes.sm.callsOf('GetSecretValue');
    const event = (i: number) => ({ approval_id: `CHG-BENCH-SECRETS-${i}`, task_id: ids[i], ticket_infos: TICKETS });
    const c0 = calls();
    const cold = await host.invoke(Array.from({ length: 100 }, (_, i) => event(i)), 100);
    const c1 = calls();
    // Warm invocations one after another, as one Lambda environment serves them.
    const warmRun = await host.invoke(Array.from({ length: 1000 }, (_, i) => event(100 + i)), 1);
    const c2 = calls();
    return { cold100: c1 - c0, warm1000: c2 - c1, cold, warm: warmRun };
  } finally {
    host.stop();
  }
}

// ---------------------------------------------------------------------------------------
// 4. Batch (and 5. memory after it)

async function batch(builds: Builds, sim: Sim, fakes: Fakes) {
  const fn = 'stepfunctions';
  await sim.control('POST', '/_sim/reset');
  const host = await startHost(builds, fn, lambdaEnv(fn, sim, fakes, { ENABLE_CONCURRENCY: String(CONCURRENCY) }));
  const approval = (name: string, tasks: string[]) => ({ approval_id: `CHG-BENCH-${name}`, task_ids: tasks, ticket_infos: TICKETS });
  const allEnabled = async (tasks: string[]) => {
    const { tasks: list } = await sim.control<{ tasks: Array<{ taskId: string; enabled: boolean }> }>('GET', '/_sim/tasks');
    const enabled = new Set(list.filter((t) => t.enabled).map((t) => t.taskId));
    return tasks.filter((t) => enabled.has(t)).length;
  };
  try {
    // First invocation (credentials, clients, Powertools) outside the timed batches.
    await sim.seed([taskId('BWRM', 0)]);
    await host.invoke([approval('WARMUP', [taskId('BWRM', 0)])], 1);

    await sim.control('POST', '/_sim/latency', { ms: BATCH_LATENCY_MS });
    const runs: InvokeResult[] = [];
    for (let b = 0; b < BATCH_ROUNDS; b++) {
      const tasks = taskIds(`BT${String(b).padStart(2, '0')}`, BATCH_TASKS);
      await sim.seed(tasks, false);
      const s0 = await sim.stats();
      const cpu0 = processCpuUs(sim.child.pid);
      const r = await host.invoke([approval(`BATCH-${b}`, tasks)], 1);
      const simCpuUsPerRequest = (processCpuUs(sim.child.pid) - cpu0) / ((await sim.stats()).requests - s0.requests);
      runs.push({ ...r, simCpuUsPerRequest, outcomes: { ...r.outcomes, enabled_in_simulator: await allEnabled(tasks) } });
      log(`batch ${b + 1}/${BATCH_ROUNDS}: ${Math.round(r.elapsedMs)} ms`);
    }

    // The floor on this machine: the same 1,000 POSTs at concurrency 16, pre-signed, bare node:http.
    await sim.seed(taskIds('BFLR', BATCH_TASKS + 50), false);
    const floor = benchResult<WarmChild>(
      await runNode([builds.workers.warm], cleanEnv({
        BENCH_CLIENT: 'bare', BENCH_ENDPOINT: sim.url, BENCH_AK: DEMO_CREDENTIAL.ak, BENCH_SK: DEMO_CREDENTIAL.sk, BENCH_TAG: 'BFLR',
        BENCH_COUNT: String(BATCH_TASKS), BENCH_WARMUP: '50', BENCH_SECONDS: '60', BENCH_CONCURRENCY: String(CONCURRENCY),
      })),
      'batch floor',
    );
    log(`batch floor (bare POSTs): ${Math.round(floor.elapsedMs)} ms`);

    // Rate-limited: 429s with Retry-After must be waited out, and every task still enabled.
    await sim.control('POST', '/_sim/rate-limit', { per_second: RATE_LIMIT });
    const limitedTasks = taskIds('BRLM', BATCH_TASKS);
    await sim.seed(limitedTasks, false);
    const s0 = await sim.stats();
    const limited = await host.invoke([approval('RATE-LIMITED', limitedTasks)], 1);
    const s1 = await sim.stats();
    await sim.control('POST', '/_sim/rate-limit', { per_second: null });
    const limitedEnabled = await allEnabled(limitedTasks);
    const throttled = (s1.byStatus['429'] ?? 0) - (s0.byStatus['429'] ?? 0);
    const requests = s1.requests - s0.requests;
    log(`rate-limited batch: ${Math.round(limited.elapsedMs)} ms, ${throttled} x 429`);

    // Extra evidence: the same batch when PutEvents is not free (20 ms per call, as in a region).
    fakes.eb.setLatency(20);
    const slowEbTasks = taskIds('BSEB', BATCH_TASKS);
    await sim.seed(slowEbTasks, false);
    const slowEb = await host.invoke([approval('SLOW-EVENTBRIDGE', slowEbTasks)], 1);
    fakes.eb.setLatency(0);
    await sim.control('POST', '/_sim/latency', { ms: 0 });

    return { runs, floor, limited: { ...limited, throttled, requests, enabled: limitedEnabled }, slowEb, maxRssKb: Math.max(...runs.map((r) => r.maxRssKb), limited.maxRssKb) };
  } finally {
    host.stop();
  }
}

/**
 * Extra evidence: the same batch with EVENT_BUS_NAME unset (outcomes as JSON lines on stdout
 * instead of PutEvents), so the difference to the main batch is what publishing costs.
 */
async function batchWithoutEventBridge(builds: Builds, sim: Sim, fakes: Fakes) {
  const fn = 'stepfunctions';
  const host = await startHost(builds, fn, lambdaEnv(fn, sim, fakes, { ENABLE_CONCURRENCY: String(CONCURRENCY), EVENT_BUS_NAME: '' }));
  try {
    await sim.seed([taskId('BWR2', 0)]);
    await host.invoke([{ approval_id: 'CHG-BENCH-WARMUP-2', task_ids: [taskId('BWR2', 0)], ticket_infos: TICKETS }], 1);
    await sim.control('POST', '/_sim/latency', { ms: BATCH_LATENCY_MS });
    const tasks = taskIds('BSTD', BATCH_TASKS);
    await sim.seed(tasks, false);
    return await host.invoke([{ approval_id: 'CHG-BENCH-STDOUT', task_ids: tasks, ticket_infos: TICKETS }], 1);
  } finally {
    await sim.control('POST', '/_sim/latency', { ms: 0 });
    host.stop();
  }
}

// ---------------------------------------------------------------------------------------
// Report

const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

function table(rows: string[][], align: ('l' | 'r')[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => '  ' + r.map((c, i) => (align[i] === 'r' ? lpad(c, widths[i]!) : pad(c, widths[i]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadStart = os.loadavg().map((x) => round(x, 2));
  const t0 = performance.now();
  const b = await loadBuild();
  const builds = await buildEverything(b);
  if (!builds.functions.includes('stepfunctions')) throw new Error('functions/stepfunctions.ts is required');

  const sim = await startSim(builds.workers.sim);
  const fakes: Fakes = {
    sm: await startSecretsManagerFake({
      secrets: { [CREDENTIALS_SECRET]: JSON.stringify({ ak: DEMO_CREDENTIAL.ak, sk: DEMO_CREDENTIAL.sk }), [WEBHOOK_SECRET]: WEBHOOK_KEY },
    }),
    eb: await startEventBridgeFake(),
  };
  log(`simulator ${sim.url} (pid ${sim.child.pid}), Secrets Manager fake ${fakes.sm.url}, EventBridge fake ${fakes.eb.url}`);

  try {
    const cold = await coldStart(builds, sim, fakes);
    const w = await warm(builds, sim);
    const sec = await secrets(builds, sim, fakes);
    const bat = await batch(builds, sim, fakes);
    const noEb = await batchWithoutEventBridge(builds, sim, fakes);

    // ------------------------------------------------------------------- aggregate
    const coldOf = (k: string) => cold.get(k)!;
    const nodeMs = median(coldOf('node -e 0').wallMs);
    const perFunction = Object.fromEntries(
      builds.functions.map((fn) => {
        const t = coldOf(fn);
        const base = coldOf(`${fn} (baseline)`);
        return [
          fn,
          {
            bundle_bytes: builds.tuned[fn]!.bytes,
            baseline_bundle_bytes: builds.baseline[fn]!.bytes,
            cold_start_ratio: round(median(t.ratio), 3),
            cold_start_ms: round(median(t.wallMs), 1),
            import_ms: round(median(t.importMs), 1),
            first_invocation_ms: round(median(t.handleMs), 1),
            peak_rss_mb: round(median(t.rssMb), 1),
            baseline_cold_start_ratio: round(median(base.ratio), 3),
            baseline_cold_start_ms: round(median(base.wallMs), 1),
            baseline_import_ms: round(median(base.importMs), 1),
            baseline_first_invocation_ms: round(median(base.handleMs), 1),
            baseline_peak_rss_mb: round(median(base.rssMb), 1),
            runs: t.runs,
            outcomes: t.outcomes,
            errors: [...t.errors, ...base.errors.map((e) => `baseline: ${e}`)],
            composition_top: builds.tuned[fn]!.composition.slice(0, 12),
          },
        ];
      }),
    ) as Record<string, Record<string, unknown> & { cold_start_ratio: number; baseline_cold_start_ratio: number; peak_rss_mb: number }>;
    const fns = builds.functions;
    const coldRatio = Math.max(...fns.map((fn) => perFunction[fn]!.cold_start_ratio));
    const baseRatio = Math.max(...fns.map((fn) => perFunction[fn]!.baseline_cold_start_ratio));
    const bundleMax = Math.max(...fns.map((fn) => builds.tuned[fn]!.bytes));
    const coldRss = Math.max(...fns.map((fn) => perFunction[fn]!.peak_rss_mb));

    const eps = w.med('ours', 'enablesPerSec');
    const officialEps = w.med('official', 'enablesPerSec');
    const cpu = w.med('ours', 'cpuUsPerEnable');
    const p99Overhead = median(w.overheads);
    const batchMs = median(bat.runs.map((r) => r.elapsedMs));
    const ideal = (BATCH_TASKS / CONCURRENCY) * BATCH_LATENCY_MS;
    const efficiency = ideal / batchMs;
    const batchRss = bat.maxRssKb / 1024;
    const peakRss = Math.max(coldRss, batchRss);

    const values = {
      cold_start_ratio: round(coldRatio, 3),
      bundle_bytes_max: bundleMax,
      throughput_vs_official: round(eps / officialEps, 2),
      client_cpu_us_per_enable: round(cpu, 1),
      p99_overhead_ms: round(p99Overhead, 3),
      secrets_calls_cold_100: sec.cold100,
      secrets_calls_warm_1000: sec.warm1000,
      batch_efficiency: round(efficiency, 3),
    };
    const goals = Object.fromEntries(
      Object.entries(GOALS).map(([k, g]) => {
        const v = values[k as keyof typeof values];
        const pass = 'max' in g ? v <= g.max : v >= g.min;
        return [k, { value: v, ...g, pass }];
      }),
    );

    const results = {
      cold_start_ratio: values.cold_start_ratio,
      baseline_cold_start_ratio: round(baseRatio, 3),
      bundle_bytes_max: bundleMax,
      enables_per_sec: round(eps, 0),
      official_sdk_enables_per_sec: round(officialEps, 0),
      client_cpu_us_per_enable: values.client_cpu_us_per_enable,
      p99_overhead_ms: values.p99_overhead_ms,
      secrets_calls_cold_100: sec.cold100,
      secrets_calls_warm_1000: sec.warm1000,
      batch_efficiency: values.batch_efficiency,
      peak_rss_mb: round(peakRss, 1),
      goals,
      detail: {
        cold_start: {
          rounds: COLD_ROUNDS,
          node_e0_ms: round(nodeMs, 1),
          floor: {
            note: 'bench/floor-handler.ts: fresh process, ESM import, the same 3 loopback round trips with bare node:http, no SDK/logger/middleware',
            cold_start_ratio: round(median(coldOf('floor').ratio), 3),
            cold_start_ms: round(median(coldOf('floor').wallMs), 1),
            import_ms: round(median(coldOf('floor').importMs), 1),
            first_invocation_ms: round(median(coldOf('floor').handleMs), 1),
            peak_rss_mb: round(median(coldOf('floor').rssMb), 1),
            errors: coldOf('floor').errors,
          },
          ratio_is: 'max over functions of the median per-round ratio (function wall / node -e 0 wall, same round)',
          peak_rss_mb: round(coldRss, 1),
          functions: perFunction,
        },
        bundles: Object.fromEntries(fns.map((fn) => [fn, { bytes: builds.tuned[fn]!.bytes, baseline_bytes: builds.baseline[fn]!.bytes }])),
        warm: {
          rounds: WARM_ROUNDS,
          concurrency: CONCURRENCY,
          count_target: WARM_COUNT,
          seconds_bound: WARM_SECONDS,
          ...Object.fromEntries(
            WARM_CLIENTS.map((c) => [
              c.client,
              {
                enables_per_sec: round(w.med(c.client, 'enablesPerSec'), 0),
                client_cpu_us_per_enable: round(w.med(c.client, 'cpuUsPerEnable'), 1),
                p50_ms: round(w.med(c.client, 'p50Ms'), 3),
                p99_ms: round(w.med(c.client, 'p99Ms'), 3),
                simulator_cpu_us_per_request: round(w.med(c.client, 'simCpuUsPerRequest'), 0),
                count: w.runs[c.client]!.map((x) => x.count),
                statuses: w.runs[c.client]!.at(-1)!.statuses,
              },
            ]),
          ),
          p99_overhead_ms_per_round: w.overheads.map((x) => round(x, 3)),
          cpu_us_split: {
            bare_http: round(w.med('bare', 'cpuUsPerEnable'), 1),
            signer: round(w.med('signed', 'cpuUsPerEnable') - w.med('bare', 'cpuUsPerEnable'), 1),
            rest_of_coc_client: round(cpu - w.med('signed', 'cpuUsPerEnable'), 1),
          },
        },
        secrets: {
          cold_100_invocations: { get_secret_value_calls: sec.cold100, ok: sec.cold.ok, failed: sec.cold.failed, elapsed_ms: round(sec.cold.elapsedMs, 0), errors: sec.cold.errors },
          warm_1000_invocations: {
            get_secret_value_calls: sec.warm1000,
            ok: sec.warm.ok,
            failed: sec.warm.failed,
            elapsed_ms: round(sec.warm.elapsedMs, 0),
            ms_per_invocation: round(sec.warm.elapsedMs / 1000, 2),
            cpu_ms_per_invocation: round(sec.warm.cpuMs / 1000, 2),
            errors: sec.warm.errors,
          },
        },
        batch: {
          tasks: BATCH_TASKS,
          concurrency: CONCURRENCY,
          simulator_latency_ms: BATCH_LATENCY_MS,
          ideal_ms: ideal,
          elapsed_ms: bat.runs.map((r) => round(r.elapsedMs, 0)),
          elapsed_ms_median: round(batchMs, 0),
          function_cpu_ms: bat.runs.map((r) => round(r.cpuMs, 0)),
          simulator_cpu_us_per_request: bat.runs.map((r) => round(r.simCpuUsPerRequest ?? NaN, 0)),
          outcomes: bat.runs.at(-1)!.outcomes,
          errors: bat.runs.flatMap((r) => r.errors),
          rate_limited: {
            per_second: RATE_LIMIT,
            elapsed_ms: round(bat.limited.elapsedMs, 0),
            http_429: bat.limited.throttled,
            requests: bat.limited.requests,
            enabled_in_simulator: bat.limited.enabled,
            all_enabled: bat.limited.enabled === BATCH_TASKS,
            outcomes: bat.limited.outcomes,
            errors: bat.limited.errors,
          },
          floor_bare_posts: {
            note: 'the same 1,000 POSTs, pre-signed, bare node:http keep-alive at concurrency 16: what this machine and simulator allow',
            elapsed_ms: round(bat.floor.elapsedMs, 0),
            efficiency: round(ideal / bat.floor.elapsedMs, 3),
          },
          without_eventbridge: {
            note: 'EVENT_BUS_NAME unset: outcomes to stdout; elapsed minus this = publishing cost',
            elapsed_ms: round(noEb.elapsedMs, 0),
            function_cpu_ms: round(noEb.cpuMs, 0),
            efficiency: round(ideal / noEb.elapsedMs, 3),
            errors: noEb.errors,
          },
          eventbridge_20ms_per_put_events: {
            elapsed_ms: round(bat.slowEb.elapsedMs, 0),
            efficiency: round(ideal / bat.slowEb.elapsedMs, 3),
            errors: bat.slowEb.errors,
          },
          peak_rss_mb_after: round(batchRss, 1),
        },
        environment: { node: process.version, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, platform: `${os.platform()} ${os.arch()}`, started_at: startedAt.toISOString(), duration_s: 0, load_average_start: loadStart, load_average_end: os.loadavg().map((x) => round(x, 2)) },
      },
    };
    results.detail.environment.duration_s = round((performance.now() - t0) / 1000, 1);
    writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);

    // ------------------------------------------------------------------- print
    const out: string[] = [];
    out.push(`coc-task-enabler benchmark  node ${process.version}, ${os.cpus().length} CPU(s), ${startedAt.toISOString()}, load average ${loadStart[0]} -> ${round(os.loadavg()[0]!, 2)}`);
    out.push('', `Bundles and cold start (median of ${COLD_ROUNDS}; node -e 0 = ${fmt(nodeMs)} ms)`);
    const coldRows = [['function', 'bundle', 'cold ms', 'ratio', 'import ms', '1st call ms', 'RSS MB', '| baseline', 'cold ms', 'ratio']];
    for (const fn of fns) {
      const p = perFunction[fn]!;
      coldRows.push([
        fn, kb(builds.tuned[fn]!.bytes), fmt(p.cold_start_ms as number), fmt(p.cold_start_ratio, 2), fmt(p.import_ms as number), fmt(p.first_invocation_ms as number), fmt(p.peak_rss_mb),
        `| ${kb(builds.baseline[fn]!.bytes)}`, fmt(p.baseline_cold_start_ms as number), fmt(p.baseline_cold_start_ratio, 2),
      ]);
    }
    const fl = coldOf('floor');
    coldRows.push(['floor (no SDK)', '', fmt(median(fl.wallMs)), fmt(median(fl.ratio), 2), fmt(median(fl.importMs)), fmt(median(fl.handleMs)), fmt(median(fl.rssMb)), '|', '', '']);
    out.push(table(coldRows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
    const errs = fns.flatMap((fn) => (perFunction[fn]!.errors as string[]).map((e) => `  ! ${fn}: ${e}`));
    if (errs.length) out.push(...errs.slice(0, 6));
    const comp = builds.tuned.stepfunctions!.composition.slice(0, 8);
    out.push('', 'Largest modules in dist/stepfunctions/index.mjs (esbuild metafile, bytes in output)');
    out.push(table(comp.map((c) => [c.module, kb(c.bytes), `${fmt((100 * c.bytes) / builds.tuned.stepfunctions!.bytes)} %`]), ['l', 'r', 'r']));

    out.push('', `Warm enables (concurrency ${CONCURRENCY}, simulator in its own process, median of ${WARM_ROUNDS})`);
    const warmRows = [['client', 'enables/s', 'CPU us/enable', 'p50 ms', 'p99 ms', 'n', 'sim CPU us/req']];
    for (const c of WARM_CLIENTS) {
      const label = { ours: 'ours (CocClient)', official: 'official SDK (HcClient)', bare: 'bare node:http POST (pre-signed)', signed: 'bare POST + lib/coc/signer per call' }[c.client];
      warmRows.push([label, fmt(w.med(c.client, 'enablesPerSec'), 0), fmt(w.med(c.client, 'cpuUsPerEnable'), 1), fmt(w.med(c.client, 'p50Ms'), 3), fmt(w.med(c.client, 'p99Ms'), 3), String(median(w.runs[c.client]!.map((x) => x.count))), fmt(w.med(c.client, 'simCpuUsPerRequest'), 0)]);
    }
    out.push(table(warmRows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']));
    out.push(`  throughput vs official: ${fmt(eps / officialEps, 2)}x   p99 overhead vs bare: ${fmt(p99Overhead, 3)} ms`);
    out.push(
      `  CPU us/enable split: bare HTTP ${fmt(w.med('bare', 'cpuUsPerEnable'), 0)} + signer ${fmt(w.med('signed', 'cpuUsPerEnable') - w.med('bare', 'cpuUsPerEnable'), 0)} + rest of CocClient ${fmt(cpu - w.med('signed', 'cpuUsPerEnable'), 0)}`,
    );

    out.push('', 'Secrets Manager GetSecretValue calls (stepfunctions handler, real SDK client -> fake)');
    out.push(`  100 concurrent first invocations: ${sec.cold100}   (${sec.cold.ok} ok, ${sec.cold.failed} failed)`);
    out.push(
      `  1,000 warm invocations in TTL:   ${sec.warm1000}   (${sec.warm.ok} ok, ${sec.warm.failed} failed; one after another: ${fmt(sec.warm.elapsedMs / 1000, 2)} ms and ${fmt(sec.warm.cpuMs / 1000, 2)} ms CPU per single-task invocation)`,
    );

    out.push('', `Batch: 1 approval x ${BATCH_TASKS} tasks, simulator ${BATCH_LATENCY_MS} ms, ENABLE_CONCURRENCY=${CONCURRENCY} (ideal ${ideal} ms)`);
    out.push(`  elapsed median ${fmt(batchMs, 0)} ms of [${bat.runs.map((r) => fmt(r.elapsedMs, 0)).join(', ')}]  efficiency ${fmt(efficiency, 3)}  outcomes ${JSON.stringify(bat.runs.at(-1)!.outcomes)}`);
    out.push(`  function CPU ${fmt(median(bat.runs.map((r) => r.cpuMs)), 0)} ms per batch (${fmt((1000 * median(bat.runs.map((r) => r.cpuMs))) / BATCH_TASKS, 0)} us/task); simulator CPU ${fmt(median(bat.runs.map((r) => r.simCpuUsPerRequest ?? NaN)), 0)} us/request`);
    out.push(`  rate-limited ${RATE_LIMIT}/s: ${fmt(bat.limited.elapsedMs, 0)} ms, ${bat.limited.throttled} x 429 of ${bat.limited.requests} requests, ${bat.limited.enabled}/${BATCH_TASKS} enabled${bat.limited.failed ? `, ${bat.limited.failed} invocation failure: ${bat.limited.errors[0]}` : ''}`);
    out.push(`  floor: the same 1,000 POSTs pre-signed over bare node:http: ${fmt(bat.floor.elapsedMs, 0)} ms (efficiency ${fmt(ideal / bat.floor.elapsedMs, 3)})`);
    out.push(`  without EventBridge (outcomes to stdout): ${fmt(noEb.elapsedMs, 0)} ms (efficiency ${fmt(ideal / noEb.elapsedMs, 3)}), function CPU ${fmt(noEb.cpuMs, 0)} ms`);
    out.push(`  with EventBridge at 20 ms per PutEvents: ${fmt(bat.slowEb.elapsedMs, 0)} ms (efficiency ${fmt(ideal / bat.slowEb.elapsedMs, 3)})`);
    out.push('', `Memory: peak RSS cold start ${fmt(coldRss)} MB (max over functions), after the batch ${fmt(batchRss)} MB`);

    out.push('', 'Goals');
    const goalRows = [['metric', 'value', 'goal', '']];
    for (const [k, g] of Object.entries(goals) as Array<[string, { value: number; max?: number; min?: number; pass: boolean }]>) {
      goalRows.push([k, String(g.value), g.max !== undefined ? `<= ${g.max}` : `>= ${g.min}`, g.pass ? 'PASS' : 'MISS']);
    }
    out.push(table(goalRows, ['l', 'r', 'l', 'l']));
    out.push('', `wrote ${relative(ROOT, RESULTS)} in ${fmt((performance.now() - t0) / 1000)} s`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await sim.control('POST', '/_sim/reset').catch(() => undefined);
    sim.child.kill('SIGTERM');
    await Promise.all([fakes.sm.close(), fakes.eb.close()]);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    stopChildren();
    process.exit(1);
  },
);
