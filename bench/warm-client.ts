/**
 * Benchmark child: warm per-enable cost of one COC client, in its own process so
 * process.cpuUsage() is that client's alone. Built by the bench into a plain .mjs.
 *
 *   BENCH_CLIENT   ours      lib/coc/client.ts CocClient (static credentials, default options)
 *                  official  @huaweicloud/huaweicloud-sdk-core ClientBuilder + HcClient.sendRequest,
 *                            the same call a generated COC service client makes
 *                  bare      node:http keep-alive POST of requests signed BEFORE the timed window:
 *                            the floor (network + simulator) that p99 overhead is measured against
 *                  signed    the same bare POST, signed per request with lib/coc/signer.ts inside
 *                            the window: signed - bare = the signer's cost, ours - signed = the rest
 *                            of CocClient (validation, transport, timers, answer parsing)
 *   BENCH_ENDPOINT the simulator (another process); BENCH_AK / BENCH_SK its credential
 *   BENCH_TAG      4 characters: task ids are ST<tag><20-digit index>, seeded disabled by the parent
 *   BENCH_COUNT    timed enables (default 20000), BENCH_WARMUP untimed ones first (default 300)
 *   BENCH_SECONDS  time bound of the timed window (default 6), BENCH_CONCURRENCY (default 16)
 *
 * Prints `BENCH_RESULT <json>` and exits.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import { CocClient } from '../lib/coc/client';
import { signRequest } from '../lib/coc/signer';

const env = process.env;
const kind = env.BENCH_CLIENT ?? 'ours';
const endpoint = env.BENCH_ENDPOINT ?? 'http://127.0.0.1:8787';
const ak = env.BENCH_AK ?? '';
const sk = env.BENCH_SK ?? '';
const tag = env.BENCH_TAG ?? 'WARM';
const count = Number(env.BENCH_COUNT ?? 20_000);
const warmup = Number(env.BENCH_WARMUP ?? 300);
const seconds = Number(env.BENCH_SECONDS ?? 6);
const concurrency = Number(env.BENCH_CONCURRENCY ?? 16);

const TICKETS = [{ ticket_id: 'CM202612040002', ticket_type: 'CHANGE' as const }];
const CONTENT_TYPE = 'application/json;charset=UTF-8';
const taskId = (i: number) => `ST${tag}${String(i).padStart(20, '0')}`;

/** Enables task i; resolves to an HTTP status (or a catalogue name for our client's errors). */
type Enable = (i: number) => Promise<string>;

function ours(): Enable {
  const credentials = Object.freeze({ ak, sk });
  const source = { get: async () => credentials, refresh: async () => credentials };
  const client = new CocClient({ endpoint, credentials: source });
  return async (i) => {
    try {
      return (await client.enableScheduledTask(taskId(i), TICKETS)).outcome;
    } catch (e) {
      return (e as Error).name;
    }
  };
}

function official(): Enable {
  const require = createRequire(import.meta.url);
  const { ClientBuilder } = require('@huaweicloud/huaweicloud-sdk-core/ClientBuilder.js');
  const { BasicCredentials } = require('@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials.js');
  const hc = new ClientBuilder((c: unknown) => c)
    .withEndpoint(endpoint)
    .withCredential(new BasicCredentials().withAk(ak).withSk(sk))
    .build();
  return async (i) => {
    // What a generated service client (e.g. @huaweicloud/huaweicloud-sdk-coc) builds for EnableScheduledTask.
    const options = {
      method: 'POST',
      url: '/v1/schedule/task/{task_id}/enable',
      contentType: CONTENT_TYPE,
      queryParams: {},
      pathParams: { task_id: taskId(i) },
      headers: {},
      data: { ticket_infos: TICKETS },
    };
    try {
      const res = (await hc.sendRequest(options)) as { httpStatusCode?: number };
      return String(res.httpStatusCode);
    } catch (e) {
      return String((e as { status?: number }).status ?? 'error');
    }
  };
}

function bare(total: number, signEach: boolean): Enable {
  const origin = new URL(endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const body = Buffer.from(JSON.stringify({ ticket_infos: TICKETS }));
  const credentials = { ak, sk };
  const sign = (i: number, now: Date) => {
    const s = signRequest(
      { method: 'POST', origin, path: `/v1/schedule/task/${taskId(i)}/enable`, headers: { 'Content-Type': CONTENT_TYPE }, body },
      credentials,
      now,
    );
    return { path: s.target, headers: { ...s.headers, 'Content-Length': String(body.length) } };
  };
  // bare: signed up front, so the timed window holds only the HTTP exchange.
  const presigned = signEach ? [] : Array.from({ length: total }, (_, i) => sign(i, new Date()));
  return (i) =>
    new Promise((resolve) => {
      const signed = signEach ? sign(i, new Date()) : presigned[i]!;
      const req = http.request(
        { method: 'POST', host: origin.hostname, port: origin.port, path: signed.path, headers: signed.headers, agent },
        (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.statusCode)));
        },
      );
      req.on('error', (e) => resolve(e.message));
      req.end(body);
    });
}

async function drive(enable: Enable, from: number, n: number, deadline: number, latencies?: Float64Array) {
  const statuses: Record<string, number> = {};
  let next = from;
  const end = from + n;
  const lane = async () => {
    while (next < end && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      const status = await enable(i);
      if (latencies) latencies[i - from] = performance.now() - t0;
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { done: next - from, statuses };
}

const quantile = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;

const enable =
  kind === 'ours' ? ours() : kind === 'official' ? official() : kind === 'bare' || kind === 'signed' ? bare(count + warmup, kind === 'signed') : undefined;
if (!enable) throw new Error(`unknown BENCH_CLIENT ${kind}`);

// Warm-up on tasks count..count+warmup-1: JIT, sockets, lazy module paths.
await drive(enable, count, warmup, Infinity);

const latencies = new Float64Array(count);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const { done, statuses } = await drive(enable, 0, count, t0 + seconds * 1000, latencies);
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);

const sorted = latencies.subarray(0, done).sort();
const result = {
  client: kind,
  count: done,
  elapsedMs,
  enablesPerSec: (done / elapsedMs) * 1000,
  cpuUs: cpu.user + cpu.system,
  cpuUsPerEnable: (cpu.user + cpu.system) / done,
  p50Ms: quantile(sorted, 0.5),
  p99Ms: quantile(sorted, 0.99),
  maxMs: sorted[sorted.length - 1] ?? NaN,
  statuses,
  maxRssKb: process.resourceUsage().maxRSS,
};
process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
process.exit(0);
