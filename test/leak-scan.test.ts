/**
 * The leak scan must be able to fail: planted secrets in a temporary capture directory are found
 * (raw, JSON-escaped, in an error's cause), reported by kind and place but never by value, and the
 * CLI exits 1. The capture itself (createCapture, and the stdout/console tee installed by the
 * setup) is checked to write what the scan reads.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signRequest } from '../lib/coc/signer';
import { exitCodeOf, formatReport, REPO_ROOT, scanForLeaks, secretLine } from '../scripts/leak-scan';
import { CAPTURE_DIR, createCapture, renderForCapture } from './support/leak-capture';

// Planted only into temporary directories: never registered with, nor printed to, the real capture.
const PLANTED_SK = `planted-sk-${randomBytes(12).toString('hex')}`;
const PLANTED_QUOTED = `planted"quoted\\secret-${randomBytes(6).toString('hex')}`;
const PLANTED_TOKEN = `planted-token-${randomBytes(12).toString('hex')}`;
const UNREGISTERED_WHSEC = `whsec_${randomBytes(24).toString('base64')}`;
const ALL_PLANTED = [PLANTED_SK, PLANTED_QUOTED, PLANTED_TOKEN, UNREGISTERED_WHSEC];

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'leak-scan-test-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A real signed Authorization header, made with a throwaway key. */
const authorization = () =>
  signRequest({ method: 'GET', origin: new URL('https://coc.example.com'), path: '/v1/x' }, { ak: 'THROWAWAYAK000000001', sk: PLANTED_SK }, new Date())
    .headers.Authorization!;

function plantedDir(): string {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'secrets-1.txt'),
    secretLine('sk', 'test/a.test.ts', PLANTED_SK) + secretLine('quoted secret', 'test/b.test.ts', PLANTED_QUOTED) + secretLine('tiny', 'test/c.test.ts', 'abc'),
  );
  writeFileSync(join(dir, 'secrets-2.txt'), secretLine('security token', 'test/c.test.ts', PLANTED_TOKEN));
  writeFileSync(join(dir, 'output-1.log'), `clean line\nanother\nerror: credentials ${PLANTED_SK} rejected\n${PLANTED_SK}\n`);
  writeFileSync(join(dir, 'output-2.log'), `{"message":${JSON.stringify(`bad secret ${PLANTED_QUOTED}`)}}\n`);
  writeFileSync(join(dir, 'output-3.log'), `request headers: Authorization: ${authorization()}\n`);
  writeFileSync(join(dir, 'output-4.log'), `\n\nconfigured signing secret ${UNREGISTERED_WHSEC}\n`);
  writeFileSync(join(dir, 'output-5.log'), `token, base64: ${Buffer.from(PLANTED_TOKEN).toString('base64')}\n`);
  writeFileSync(join(dir, 'output-clean.log'), 'nothing to see: abc abc abc\nAuthorization: [redacted]\nwhsec_\n');
  return dir;
}

describe('scanForLeaks', () => {
  it('finds every planted secret and secret shape, by file, line and kind', () => {
    const result = scanForLeaks(plantedDir());
    expect(result.secrets).toBe(3);
    expect(result.files).toHaveLength(6);
    expect(result.findings.map((f) => [f.file, f.line, f.kind, f.occurrences])).toEqual([
      ['output-1.log', 3, 'sk', 2],
      ['output-2.log', 1, 'quoted secret (JSON-escaped)', 1],
      ['output-3.log', 1, 'SDK-HMAC-SHA256 Authorization header (Signature=<64 hex>)', 1],
      ['output-4.log', 3, 'Standard Webhooks signing secret (whsec_...)', 1],
      ['output-5.log', 1, 'security token (base64)', 1],
    ]);
    expect(result.findings[0]!.registeredBy).toBe('test/a.test.ts');
    expect(result.warnings.join('\n')).toMatch(/1 registered value\(s\) shorter than 8/);
    expect(exitCodeOf(result)).toBe(1);
  });

  it('the report names kinds and places, never a value', () => {
    const report = formatReport(scanForLeaks(plantedDir()));
    expect(report).toContain('LEAK: output-1.log:3: sk (2 occurrences) [registered by test/a.test.ts]');
    expect(report).toMatch(/FAIL: 5 leak\(s\)/);
    for (const value of ALL_PLANTED) expect(report.includes(value)).toBe(false);
    expect(report).not.toMatch(/Signature=[0-9a-f]{64}/);
  });

  it('passes a clean capture, and fails an empty one (nothing captured proves nothing)', () => {
    const clean = tempDir();
    writeFileSync(join(clean, 'secrets-1.txt'), secretLine('sk', 'x', PLANTED_SK));
    writeFileSync(join(clean, 'output-1.log'), 'all good\n');
    expect(scanForLeaks(clean).findings).toEqual([]);
    expect(exitCodeOf(scanForLeaks(clean))).toBe(0);

    const empty = tempDir();
    expect(exitCodeOf(scanForLeaks(empty))).toBe(1);
    expect(formatReport(scanForLeaks(empty))).toMatch(/no captured output/);
    expect(exitCodeOf(scanForLeaks(join(empty, 'missing')))).toBe(1);
  });

  it('the CLI exits 1 on a leak, printing no value', () => {
    const tsx = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
    const leaky = spawnSync(tsx, ['scripts/leak-scan.ts', plantedDir()], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(leaky.status).toBe(1);
    expect(leaky.stderr).toContain('leak-scan: LEAK: output-1.log:3: sk');
    for (const value of ALL_PLANTED) expect(`${leaky.stdout}${leaky.stderr}`.includes(value)).toBe(false);
  });
});

describe('capture', () => {
  it('registerSecret + captureOutput of an error whose cause carries the secret: the scan finds it', () => {
    const dir = tempDir();
    const capture = createCapture(dir);
    capture.registerSecret({ sk: PLANTED_SK, 'security token': PLANTED_TOKEN }, PLANTED_QUOTED);
    capture.captureOutput('thrown error', new Error('cannot sign', { cause: { response: { body: `{"sk":"${PLANTED_SK}"}` } } }));
    capture.captureOutput('outcomes', [{ taskId: 'ST1', error: { message: `token ${PLANTED_TOKEN}` } }]);

    const registry = readFileSync(join(dir, `secrets-${process.pid}.txt`), 'utf8');
    for (const value of [PLANTED_SK, PLANTED_TOKEN, PLANTED_QUOTED]) expect(registry.includes(value)).toBe(false);
    expect(registry).toContain('test/leak-scan.test.ts'); // who registered it

    const kinds = scanForLeaks(dir).findings.map((f) => f.kind);
    expect(kinds).toContain('sk');
    expect(kinds).toContain('security token');
    expect(kinds).not.toContain('secret'); // the quoted one was registered but never said
  });

  it('renders errors with their JSON form and cause chain, and survives circular values', () => {
    const err = Object.assign(new Error('outer', { cause: new Error('inner detail') }), { toJSON: () => ({ name: 'X', code: 'C1' }) });
    const text = renderForCapture(err);
    expect(text).toContain('outer');
    expect(text).toContain('inner detail');
    expect(text).toContain('"code":"C1"');
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    expect(renderForCapture(circular)).toContain('[circular]');
  });

  it('the tee installed in this worker copies stdout, stderr and console output into the capture', () => {
    const marker = `leak-capture-marker-${randomBytes(6).toString('hex')}`;
    process.stdout.write(`${marker}-stdout\n`);
    process.stderr.write(`${marker}-stderr\n`);
    console.log(`${marker}-console`, { n: 1 });
    const captured = readFileSync(join(CAPTURE_DIR, `output-${process.pid}.log`), 'utf8');
    expect(captured).toContain(`${marker}-stdout`);
    expect(captured).toContain(`${marker}-stderr`);
    expect(captured).toContain(`${marker}-console { n: 1 }`);
  });
});
