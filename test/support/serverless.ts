/**
 * Runs `serverless package` (osls + serverless-esbuild + serverless-step-functions) once per
 * test run and hands back what it produced: the CloudFormation template, the resolved
 * service (serverless-state.json) and the function zips.
 *
 * Offline by construction: no AWS credentials or profile reach the child process, so
 * packaging would fail if it tried to call AWS. Output goes to
 * node_modules/.cache/coc-task-enabler/serverless-<stage>-<key>, one directory per vitest run
 * (keyed by the vitest process id and the inputs' content): suites in other worker processes
 * of the same run reuse it at no cost, and a lock directory keeps concurrent runs from
 * packaging at the same time (serverless-esbuild works in the repo's .esbuild/).
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Parsed JSON from the packaging; `any` keeps template assertions readable. */
export type Json = any;

export interface CfnResource {
  Type: string;
  Properties: Json;
  DependsOn?: string | string[];
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, Json>;
}

export interface PackagedService {
  stage: string;
  /** The --package directory: template, serverless-state.json and <function>.zip. */
  dir: string;
  template: CfnTemplate;
  /** serverless-state.json: the service with every variable resolved (custom, functions, ...). */
  state: Json;
  /** Function name -> path of its zip. */
  zips: Record<string, string>;
  /** How long `serverless package` took (0 when another worker had already run it). */
  durationMs: number;
}

/** Environment for packaging: offline, quiet, and with no way to reach real AWS credentials. */
export function packagingEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (!/^AWS_|^SLS_|^SERVERLESS_/.test(k)) env[k] = v;
  }
  return {
    ...env,
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    SLS_DEPRECATION_NOTIFICATION_MODE: 'warn',
    SLS_INTERACTIVE_SETUP_DISABLE: '1',
    AWS_CONFIG_FILE: join(ROOT, 'node_modules/.cache/no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(ROOT, 'node_modules/.cache/no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    FORCE_COLOR: '0',
  };
}

/** The serverless CLI (osls) as `node <bin>`, independent of PATH and npx. */
function serverlessBin(): string {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('osls/package.json');
  const bin = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin: Record<string, string> }).bin;
  return join(dirname(pkgPath), bin.serverless ?? Object.values(bin)[0]!);
}

/** Everything the package depends on, so a changed input is never served from a stale run. */
function inputsHash(stage: string): string {
  const hash = createHash('sha256').update(stage);
  const files = ['serverless.yml', 'package-lock.json', 'scripts/build.ts'];
  for (const dir of ['functions', 'lib', 'statemachines']) {
    if (!existsSync(join(ROOT, dir))) continue;
    for (const f of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (statSync(join(ROOT, dir, f)).isFile()) files.push(join(dir, f));
    }
  }
  for (const f of files.sort()) hash.update(f).update('\0').update(readFileSync(join(ROOT, f))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [serverlessBin(), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

function load(stage: string, dir: string, durationMs: number): PackagedService {
  const read = (f: string): Json => JSON.parse(readFileSync(join(dir, f), 'utf8'));
  const zips = Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith('.zip'))
      .map((f) => [f.slice(0, -'.zip'.length), join(dir, f)]),
  );
  return { stage, dir, template: read('cloudformation-template-update-stack.json'), state: read('serverless-state.json'), zips, durationMs };
}

async function packageOnce(stage: string): Promise<PackagedService> {
  const base = join(ROOT, 'node_modules/.cache/coc-task-enabler');
  // One directory per vitest run (its process id) and inputs: concurrent runs never share one.
  const key = createHash('sha256').update(`${process.ppid}:${inputsHash(stage)}`).digest('hex').slice(0, 12);
  const dir = join(base, `serverless-${stage}-${key}`);
  const complete = join(dir, '.complete');
  // One packaging at a time across runs: serverless-esbuild works in the repo's .esbuild/.
  const lock = join(base, 'packaging.lock');
  mkdirSync(base, { recursive: true });

  const giveUpAt = Date.now() + 170_000;
  for (;;) {
    if (existsSync(complete)) return load(stage, dir, 0);
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock left by a killed run is taken over after the longest packaging could take.
      if (Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > giveUpAt) throw new Error(`timed out waiting for another packaging run (${lock})`);
      else await sleep(250);
    }
  }
  try {
    if (existsSync(complete)) return load(stage, dir, 0);
    for (const old of readdirSync(base)) {
      const path = join(base, old);
      if (old.startsWith('serverless-') && Date.now() - statSync(path).mtimeMs > 3_600_000) rmSync(path, { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
    const started = Date.now();
    const { code, output } = await run(['package', '--stage', stage, '--package', dir], packagingEnv());
    if (code !== 0) throw new Error(`serverless package --stage ${stage} exited ${code}:\n${output}`);
    writeFileSync(complete, output);
    return load(stage, dir, Date.now() - started);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

const runs = new Map<string, Promise<PackagedService>>();

/** `serverless package --stage <stage>`, once per test run; rejects with the CLI output on failure. */
export function packageService(stage = 'test'): Promise<PackagedService> {
  let p = runs.get(stage);
  if (!p) runs.set(stage, (p = packageOnce(stage)));
  return p;
}

/** Resources of one CloudFormation type, by logical id. */
export function resourcesOfType(template: CfnTemplate, type: string): Record<string, CfnResource> {
  return Object.fromEntries(Object.entries(template.Resources).filter(([, r]) => r.Type === type));
}

export interface ZipEntry {
  name: string;
  size: number;
  /** The entry's bytes, inflated. */
  read(): Buffer;
}

/**
 * The entries of a zip, read from its central directory (no `unzip` needed): enough for
 * the stored / deflated, non-zip64 archives serverless-esbuild writes.
 */
export function zipEntries(zipPath: string): ZipEntry[] {
  const zip = readFileSync(zipPath);
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${zipPath}: not a zip (no end of central directory)`);
  const entries: ZipEntry[] = [];
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = zip.readUInt16LE(eocd + 10); i > 0; i--) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${zipPath}: bad central directory entry at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    entries.push({
      name,
      size,
      read() {
        const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
        const data = zip.subarray(start, start + compressed);
        if (method === 0) return Buffer.from(data);
        if (method === 8) return inflateRawSync(data);
        throw new Error(`${zipPath}: ${name} uses compression method ${method}`);
      },
    });
  }
  return entries;
}
