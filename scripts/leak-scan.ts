/**
 * Secret-leak scan over what the test suites printed.
 *
 * test/support/leak-capture.ts (loaded by the vitest setup) copies everything the test
 * processes write to stdout, stderr and console into `.test-output/output-*.log`, plus what
 * tests hand to captureOutput() (response bodies, thrown errors, published outcomes). Tests
 * register the secret values they use with registerSecret(); the registry is
 * `.test-output/secrets-*.txt`, one `kind <TAB> registered-by <TAB> base64(value)` per line,
 * base64 so the registry itself never matches.
 *
 * This scan looks for every registered value (raw, JSON-escaped, URL-encoded, base64) in every
 * captured file, and for two shapes that are secrets whoever printed them: a signed
 * `SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=<64 hex>` Authorization header and a
 * `whsec_` Standard Webhooks signing secret. It reports file, line and the secret's KIND, never
 * the value, and exits 1 on any hit, or when nothing was captured (a scan of nothing proves
 * nothing: the capture is not wired).
 *
 *   tsx scripts/leak-scan.ts [dir]     default: <repo>/.test-output
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const DEFAULT_CAPTURE_DIR = join(REPO_ROOT, '.test-output');

/** Registry files: `secrets-<pid>.txt`. Everything else in the directory is captured output. */
export const SECRETS_PREFIX = 'secrets-';
export const OUTPUT_PREFIX = 'output-';

/** Registered values shorter than this are not searched (they would match by accident); the scan warns. */
export const MIN_SECRET_LENGTH = 8;

export interface RegisteredSecret {
  kind: string;
  /** Test file (or other source) that registered it. */
  registeredBy: string;
  value: string;
}

export interface LeakFinding {
  /** Path of the captured file, relative to the scanned directory. */
  file: string;
  /** What leaked, e.g. `sk`, `sk (JSON-escaped)`, `SDK-HMAC-SHA256 Authorization header`. Never the value. */
  kind: string;
  /** 1-based line of the first occurrence. */
  line: number;
  occurrences: number;
  registeredBy?: string;
}

export interface ScanResult {
  dir: string;
  files: string[];
  bytes: number;
  secrets: number;
  findings: LeakFinding[];
  warnings: string[];
}

const clean = (s: string) => s.replace(/[\t\r\n]+/g, ' ').trim() || '-';

/** One registry line. Kind and source are labels (tabs and newlines removed); the value is base64. */
export function secretLine(kind: string, registeredBy: string, value: string): string {
  return `${clean(kind)}\t${clean(registeredBy)}\t${Buffer.from(value, 'utf8').toString('base64')}\n`;
}

export function parseSecretLines(text: string): RegisteredSecret[] {
  const out: RegisteredSecret[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [kind, registeredBy, b64] = line.split('\t');
    if (kind === undefined || registeredBy === undefined || b64 === undefined) continue;
    out.push({ kind, registeredBy, value: Buffer.from(b64, 'base64').toString('utf8') });
  }
  return out;
}

/** Shapes that are secrets no matter who printed them. */
export const SECRET_SHAPES: ReadonlyArray<{ kind: string; pattern: RegExp }> = [
  {
    kind: 'SDK-HMAC-SHA256 Authorization header (Signature=<64 hex>)',
    pattern: /SDK-HMAC-SHA256\s+Access=[^\s,]*,\s*SignedHeaders=[^\s,]*,\s*Signature=[0-9a-fA-F]{64}/g,
  },
  { kind: 'Standard Webhooks signing secret (whsec_...)', pattern: /whsec_[A-Za-z0-9+/=_-]{8,}/g },
];

/** The forms in which a value may show up in printed text, each with a label. */
function encodingsOf(value: string): { label: string; text: string }[] {
  const forms = [{ label: '', text: value }];
  const add = (label: string, text: string) => {
    if (text.length >= MIN_SECRET_LENGTH && !forms.some((f) => f.text === text)) forms.push({ label, text });
  };
  add(' (JSON-escaped)', JSON.stringify(value).slice(1, -1));
  add(' (URL-encoded)', encodeURIComponent(value));
  add(' (base64)', Buffer.from(value, 'utf8').toString('base64').replace(/=+$/, ''));
  return forms;
}

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

function countOf(text: string, needle: string): { first: number; count: number } {
  let first = -1;
  let count = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) {
    if (first === -1) first = i;
    count++;
  }
  return { first, count };
}

/** Files under dir (recursively), registry files apart. */
function listFiles(dir: string): { secrets: string[]; outputs: string[] } {
  const secrets: string[] = [];
  const outputs: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else if (name.startsWith(SECRETS_PREFIX)) secrets.push(path);
      else outputs.push(path);
    }
  };
  if (existsSync(dir)) walk(dir);
  return { secrets, outputs };
}

export function readRegisteredSecrets(dir: string): RegisteredSecret[] {
  const seen = new Map<string, RegisteredSecret>();
  for (const file of listFiles(dir).secrets) {
    for (const s of parseSecretLines(readFileSync(file, 'utf8'))) if (!seen.has(s.value)) seen.set(s.value, s);
  }
  return [...seen.values()];
}

/** Scans every captured file under dir for every registered secret and for the secret shapes. */
export function scanForLeaks(dirArg: string = DEFAULT_CAPTURE_DIR): ScanResult {
  const dir = resolve(dirArg);
  const { outputs } = listFiles(dir);
  const warnings: string[] = [];
  const all = readRegisteredSecrets(dir);
  const secrets = all.filter((s) => s.value.length >= MIN_SECRET_LENGTH);
  const short = all.length - secrets.length;
  if (short > 0) warnings.push(`${short} registered value(s) shorter than ${MIN_SECRET_LENGTH} characters not searched: use longer test secrets`);
  const needles = secrets.flatMap((s) => encodingsOf(s.value).map((e) => ({ kind: `${s.kind}${e.label}`, text: e.text, registeredBy: s.registeredBy })));

  const findings: LeakFinding[] = [];
  let bytes = 0;
  for (const path of outputs) {
    const text = readFileSync(path, 'utf8');
    bytes += Buffer.byteLength(text);
    const file = relative(dir, path) || basename(path);
    for (const n of needles) {
      const { first, count } = countOf(text, n.text);
      if (count > 0) findings.push({ file, kind: n.kind, line: lineOf(text, first), occurrences: count, registeredBy: n.registeredBy });
    }
    for (const shape of SECRET_SHAPES) {
      const matches = [...text.matchAll(shape.pattern)];
      if (matches.length > 0) findings.push({ file, kind: shape.kind, line: lineOf(text, matches[0]!.index ?? 0), occurrences: matches.length });
    }
  }
  return { dir, files: outputs.map((p) => relative(dir, p)), bytes, secrets: secrets.length, findings, warnings };
}

/** The human report: never quotes a value, only where and what kind. */
export function formatReport(r: ScanResult): string {
  const lines: string[] = [];
  for (const w of r.warnings) lines.push(`leak-scan: warning: ${w}`);
  if (r.files.length === 0) {
    lines.push(`leak-scan: FAIL: no captured output in ${r.dir}: is test/support/leak-capture.ts imported by the vitest setup?`);
    return lines.join('\n');
  }
  for (const f of r.findings) {
    lines.push(
      `leak-scan: LEAK: ${f.file}:${f.line}: ${f.kind}` +
        `${f.occurrences > 1 ? ` (${f.occurrences} occurrences)` : ''}${f.registeredBy ? ` [registered by ${f.registeredBy}]` : ''}`,
    );
  }
  const summary = `${r.files.length} file(s), ${(r.bytes / 1024).toFixed(0)} KiB, ${r.secrets} registered secret(s), ${SECRET_SHAPES.length} secret shapes`;
  lines.push(r.findings.length > 0 ? `leak-scan: FAIL: ${r.findings.length} leak(s) in ${summary}` : `leak-scan: ok: no leaks in ${summary}`);
  return lines.join('\n');
}

/** 0 clean, 1 leaks or nothing captured. */
export const exitCodeOf = (r: ScanResult): number => (r.files.length === 0 || r.findings.length > 0 ? 1 : 0);

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  const result = scanForLeaks(process.argv[2] ?? DEFAULT_CAPTURE_DIR);
  const report = formatReport(result);
  (exitCodeOf(result) === 0 ? console.log : console.error)(report);
  process.exitCode = exitCodeOf(result);
}
