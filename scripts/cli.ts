/** Shared bits of the developer CLIs: loading event files and a local Lambda context. */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Context } from 'aws-lambda';
import { isEnablerError } from '../lib/errors';

export class CliError extends Error {
  override readonly name = 'CliError';
}

export async function readEventFile(path: string | undefined): Promise<unknown> {
  if (!path) throw new CliError('no event file given');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? `event file not found: ${path}` : `cannot read event file ${path}: ${code ?? 'error'}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CliError(`event file is not JSON: ${path}: ${(e as Error).message}`);
  }
}

/** A Lambda context for running a handler in-process: the timeout drives the COC deadline. */
export function localContext(functionName: string, timeoutMs = 30_000): Context {
  const endsAt = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** One line for expected errors (catalogue and CLI), the stack only for surprises. */
export function describeFailure(e: unknown): string {
  if (isEnablerError(e) || e instanceof CliError) return `error: ${e.name}: ${e.message}`;
  return `error: unexpected failure: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
}
