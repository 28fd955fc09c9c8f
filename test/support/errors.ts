import { inspect } from 'node:util';
import { expect } from 'vitest';
import { EnablerError } from '../../lib/errors';

/** The catalogue error a promise rejects with; fails the test if it resolves or throws something else. */
export async function caught(p: Promise<unknown>): Promise<EnablerError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EnablerError);
    return e as EnablerError;
  }
  throw new Error('expected a rejection');
}

/** Every string reachable from a value: message, JSON, inspect output and the cause chain (for secret checks). */
export function everythingSaidBy(v: unknown): string {
  const parts: string[] = [];
  let cur: unknown = v;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 10; depth++) {
    parts.push(String(cur), inspect(cur, { depth: 6 }));
    try {
      parts.push(JSON.stringify(cur));
    } catch {
      /* circular: inspect covered it */
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}
