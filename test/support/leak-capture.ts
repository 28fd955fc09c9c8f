/**
 * Captures what the test processes print, for scripts/leak-scan.ts.
 *
 * Imported by the shared vitest setup (setupFiles) it wraps, in each test worker,
 * process.stdout.write, process.stderr.write and console.* so that everything written is also
 * appended to `.test-output/output-<pid>.log`. Listed under globalSetup it does the same in the
 * main vitest process (the reporter's output: failure diffs, console relays) and empties
 * `.test-output/` at the start of the run.
 *
 * Tests call registerSecret() for every AK / SK / token / webhook secret they use (kept base64 in
 * `.test-output/secrets-<pid>.txt`, so the registry never matches itself) and captureOutput()
 * for what a caller of the product would see: response bodies, thrown errors, published
 * outcomes. The scan then fails the run if any registered value shows up anywhere.
 */
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, inspect } from 'node:util';
import { threadId } from 'node:worker_threads';
import { DEFAULT_CAPTURE_DIR, OUTPUT_PREFIX, REPO_ROOT, SECRETS_PREFIX, secretLine } from '../../scripts/leak-scan';

export const CAPTURE_DIR = process.env.LEAK_CAPTURE_DIR || DEFAULT_CAPTURE_DIR;

/** A kind label per value, e.g. `{ ak, sk, 'security token': token }`; a bare string is kind `secret` (`webhook secret` for whsec_). */
export type SecretSpec = string | Record<string, string | undefined>;

export interface Capture {
  readonly dir: string;
  registerSecret(...values: SecretSpec[]): void;
  captureOutput(label: string, value: unknown): void;
  /** Appends raw text to this process's output file. */
  append(text: string | Uint8Array): void;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/** The first stack frame outside this file: which test registered a secret. */
function caller(): string {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const frame of stack) {
    const m = /\(?((?:file:\/\/)?\/[^():]+):\d+:\d+\)?\s*$/.exec(frame);
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (file !== THIS_FILE && !file.includes('/node_modules/')) return relative(REPO_ROOT, file);
  }
  return 'unknown';
}

/**
 * Text as is; anything else as one line of JSON. Errors are expanded before JSON.stringify (which
 * would otherwise use only their toJSON()): name, message, toJSON(), own properties, inspect()
 * and the cause chain, so what an error carries anywhere is in the capture.
 */
export function renderForCapture(value: unknown): string {
  if (typeof value === 'string') return value;
  const seen = new WeakSet<object>();
  const expand = (v: unknown, depth: number): unknown => {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v !== 'object' || v === null) return v;
    if (seen.has(v)) return '[circular]';
    if (depth > 12) return inspect(v, { depth: 2 });
    seen.add(v);
    if (v instanceof Error) {
      const e = v as Error & { toJSON?: () => unknown; cause?: unknown };
      const own = Object.fromEntries(Object.entries(e).filter(([, x]) => typeof x !== 'function').map(([k, x]) => [k, expand(x, depth + 1)]));
      return {
        name: e.name,
        message: e.message,
        ...(typeof e.toJSON === 'function' && { json: expand(e.toJSON(), depth + 1) }),
        ...own,
        inspect: inspect(e, { depth: 6 }),
        ...(e.cause !== undefined && { cause: expand(e.cause, depth + 1) }),
      };
    }
    if (Array.isArray(v)) return v.map((x) => expand(x, depth + 1));
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return expand((toJSON as () => unknown).call(v), depth + 1);
    return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x !== 'function').map(([k, x]) => [k, expand(x, depth + 1)]));
  };
  try {
    return JSON.stringify(expand(value, 0)) ?? String(value);
  } catch {
    return inspect(value, { depth: 6 });
  }
}

/** A capture writing into dir: the default instance below, and temp dirs in tests. */
export function createCapture(dir: string = CAPTURE_DIR): Capture {
  const suffix = threadId === 0 ? `${process.pid}` : `${process.pid}-t${threadId}`;
  const outputFile = join(dir, `${OUTPUT_PREFIX}${suffix}.log`);
  const secretsFile = join(dir, `${SECRETS_PREFIX}${suffix}.txt`);
  const fds = new Map<string, number>();

  // Synchronous appends: nothing is lost if the worker exits or crashes right after a write.
  const appendTo = (file: string, data: string | Uint8Array): void => {
    for (let tries = 0; tries < 2; tries++) {
      try {
        let fd = fds.get(file);
        if (fd === undefined) {
          mkdirSync(dir, { recursive: true });
          fd = openSync(file, 'a');
          fds.set(file, fd);
        }
        if (typeof data === 'string') writeSync(fd, data);
        else writeSync(fd, data);
        return;
      } catch {
        // The directory was emptied under us (global setup, rm -rf): reopen once.
        const fd = fds.get(file);
        if (fd !== undefined) {
          try {
            closeSync(fd);
          } catch {
            /* already closed */
          }
        }
        fds.delete(file);
      }
    }
  };

  return {
    dir,
    append: (text) => appendTo(outputFile, text),
    registerSecret(...values) {
      const by = caller();
      let lines = '';
      for (const spec of values) {
        if (typeof spec === 'string') {
          if (spec) lines += secretLine(spec.startsWith('whsec_') ? 'webhook secret' : 'secret', by, spec);
        } else {
          for (const [kind, value] of Object.entries(spec)) if (value) lines += secretLine(kind, by, value);
        }
      }
      if (lines) appendTo(secretsFile, lines);
    },
    captureOutput(label, value) {
      appendTo(outputFile, `[captured ${label}] ${renderForCapture(value)}\n`);
    },
  };
}

const capture = createCapture();

export const registerSecret: Capture['registerSecret'] = (...values) => capture.registerSecret(...values);
export const captureOutput: Capture['captureOutput'] = (label, value) => capture.captureOutput(label, value);

type Write = typeof process.stdout.write;
const INSTALLED = Symbol.for('coc-task-enabler.leak-capture');

/** Tee stdout, stderr and console.* into the capture file; once per process. */
function install(): void {
  const g = globalThis as { [INSTALLED]?: boolean };
  if (g[INSTALLED]) return;
  g[INSTALLED] = true;

  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as Write;
    stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      try {
        if (typeof chunk === 'string' || chunk instanceof Uint8Array) capture.append(chunk);
      } catch {
        /* capturing must never break the output itself */
      }
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    } as Write;
  }

  // Vitest relays console.* from workers to the main process without going through the worker's
  // process.stdout, so the console is wrapped too (duplicates in the capture are harmless).
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir', 'table'] as const;
  for (const name of methods) {
    const original = console[name] as (...a: unknown[]) => void;
    if (typeof original !== 'function') continue;
    (console as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      try {
        capture.append(`${name === 'dir' || name === 'table' ? inspect(args[0], { depth: 6 }) : format(...args)}\n`);
      } catch {
        /* never break the console */
      }
      original.apply(console, args);
    };
  }
}

install();

/** As a vitest globalSetup: start the run with an empty capture directory (the main process is wrapped by the import). */
export function setup(): void {
  try {
    for (const name of readdirSync(CAPTURE_DIR)) {
      if (name.startsWith(OUTPUT_PREFIX) || name.startsWith(SECRETS_PREFIX)) {
        if (name.startsWith(`${OUTPUT_PREFIX}${process.pid}`)) continue; // this process's own file, already open
        rmSync(join(CAPTURE_DIR, name), { force: true });
      }
    }
  } catch {
    /* no directory yet */
  }
}

export function teardown(): void {}
