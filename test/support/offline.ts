/**
 * Runs the service under `serverless offline start` (osls + serverless-esbuild +
 * serverless-offline: a real API Gateway HTTP API emulation) as a child process, on loopback.
 *
 * serverless.yml is used as written except for three things, because the CLI cannot express
 * them (see the README of the suite, test/webhook-offline.test.ts):
 *  - `serverless-offline` is added to `plugins` when serverless.yml does not list it;
 *  - HUAWEI_CREDENTIALS_SECRET_ID, EVENT_BUS_NAME and WEBHOOK_SECRET_ID are removed from the
 *    function environments, so the functions use the HUAWEICLOUD_SDK_* variables, stdout events and
 *    WEBHOOK_SECRET (their params also feed IAM Resources, which must be ARNs: an empty --param
 *    fails osls's configuration validation);
 *  - everything else (COC_ENDPOINT, ...) goes through the real mechanisms: `--param` for params,
 *    `--localEnvironment` for the variables serverless.yml does not set.
 *
 * osls only accepts a configuration file in the service directory it runs in, so the derived
 * configuration lives in a temporary service directory whose functions/, lib/, statemachines/,
 * node_modules/ (and package.json, tsconfig.json) are symlinks to the repository. serverless-esbuild
 * builds into that directory's .esbuild/, never the repository's (where `serverless package` in
 * another suite works at the same time).
 *
 * The child gets a minimal environment: no AWS_*, SLS_* or SERVERLESS_* variables from the test
 * process (nothing can reach real AWS), telemetry and notifications off. It is started in its own
 * process group and stopped by signalling that group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const requireCjs = createRequire(import.meta.url);

/** Environment variables the derived configuration removes, per scope. */
export const UNSET_PROVIDER_ENV = ['HUAWEI_CREDENTIALS_SECRET_ID', 'EVENT_BUS_NAME'] as const;
export const UNSET_FUNCTION_ENV: Record<string, readonly string[]> = { webhook: ['WEBHOOK_SECRET_ID'] };

const LINKED = ['functions', 'lib', 'statemachines', 'node_modules', 'package.json', 'tsconfig.json'];

export interface OfflineOptions {
  stage?: string;
  /** `--param key=value` overrides (values must be non-empty: osls refuses `key=`). */
  params?: Record<string, string>;
  /** Variables for the functions, passed with --localEnvironment. */
  env?: Record<string, string>;
  /** Bound on the wait for "Server ready". Default 90 s. */
  readyTimeoutMs?: number;
}

export interface Offline {
  /** http://127.0.0.1:<httpPort> */
  url: string;
  httpPort: number;
  lambdaPort: number;
  /** Everything the child printed so far (stdout and stderr interleaved). */
  output(): string;
  /** How long the child took to say "Server ready". */
  startupMs: number;
  /** The configuration the child ran with (serverless.json in the service directory). */
  config: Json;
  stop(): Promise<void>;
}

/** A free loopback TCP port (released before use: a small race, acceptable on loopback in tests). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** serverless.yml as osls reads it, turned into the configuration for the offline run. */
export async function offlineConfiguration(): Promise<Json> {
  const read = requireCjs('osls/lib/configuration/read') as (path: string) => Promise<Json>;
  const config = await read(join(ROOT, 'serverless.yml'));
  config.plugins = [...(config.plugins ?? [])];
  if (!config.plugins.includes('serverless-offline')) config.plugins.push('serverless-offline');
  for (const name of UNSET_PROVIDER_ENV) delete config.provider?.environment?.[name];
  for (const [fn, names] of Object.entries(UNSET_FUNCTION_ENV)) {
    for (const name of names) delete config.functions?.[fn]?.environment?.[name];
  }
  return config;
}

function serverlessBin(): string {
  const pkgPath = requireCjs.resolve('osls/package.json');
  const bin = (requireCjs(pkgPath) as { bin: Record<string, string> }).bin;
  return join(dirname(pkgPath), bin.serverless ?? Object.values(bin)[0]!);
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'SystemRoot'];
  const env: NodeJS.ProcessEnv = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  return {
    ...env,
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    SLS_INTERACTIVE_SETUP_DISABLE: '1',
    SLS_DEPRECATION_NOTIFICATION_MODE: 'warn',
    AWS_EC2_METADATA_DISABLED: 'true',
    FORCE_COLOR: '0',
    NO_COLOR: '1',
    ...extra,
  };
}

function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const pid = child.pid!;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig); // the child's own process group (detached), nothing else
      } catch {
        /* already gone */
      }
    };
    const hard = setTimeout(() => signal('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(hard);
      done();
    });
    signal('SIGTERM');
  });
}

export async function startOffline(options: OfflineOptions = {}): Promise<Offline> {
  const stage = options.stage ?? 'test';
  const config = await offlineConfiguration();
  const dir = mkdtempSync(join(tmpdir(), 'coc-offline-'));
  for (const name of LINKED) if (existsSync(join(ROOT, name))) symlinkSync(join(ROOT, name), join(dir, name));
  writeFileSync(join(dir, 'serverless.json'), JSON.stringify(config, null, 2));

  const [httpPort, lambdaPort] = [await freePort(), await freePort()];
  const args = [
    serverlessBin(),
    'offline',
    'start',
    '--stage',
    stage,
    '--host',
    '127.0.0.1',
    '--httpPort',
    String(httpPort),
    '--lambdaPort',
    String(lambdaPort),
    '--localEnvironment',
    '--noTimeout',
    ...Object.entries(options.params ?? {}).flatMap(([k, v]) => ['--param', `${k}=${v}`]),
  ];
  const started = Date.now();
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: childEnv(options.env ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  // If the test process ends without stop() (a crash, a forgotten afterAll), take the group down too.
  const onExit = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', onExit);
  const cleanup = async () => {
    await stopChild(child);
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`serverless offline: no "Server ready" within ${options.readyTimeoutMs ?? 90_000} ms:\n${output}`)), options.readyTimeoutMs ?? 90_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (/Server ready: http:\/\/127\.0\.0\.1:\d+/.test(output)) {
          clearTimeout(timer);
          ready();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (e) => {
        clearTimeout(timer);
        fail(e);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        fail(new Error(`serverless offline exited (${code ?? signal}) before it was ready:\n${output}`));
      });
    });
  } catch (e) {
    await cleanup();
    throw e;
  }
  // Keep draining the pipes (a full pipe would block the child).
  return {
    url: `http://127.0.0.1:${httpPort}`,
    httpPort,
    lambdaPort,
    output: () => output,
    startupMs: Date.now() - started,
    config,
    stop: cleanup,
  };
}
