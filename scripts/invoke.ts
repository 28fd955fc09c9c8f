/**
 * npm run invoke -- <function> <event.json> [--sign]
 * Runs one handler in-process on an event file. Configuration only from the environment
 * (COC_ENDPOINT, HUAWEICLOUD_SDK_AK / _SK, WEBHOOK_SECRET, ...); no AWS needed. Outcome events
 * are JSON lines on stdout, then the handler's result as one `{"result": ...}` line; exits 1
 * when the handler throws or the webhook answers with an HTTP error status (4xx/5xx), 2 on a
 * usage error.
 *
 * --sign (webhook only): the sample events carry no valid signature (it would have expired),
 * so this re-signs the event's body, exactly as stored (decoded first when isBase64Encoded),
 * with WEBHOOK_SECRET (`whsec_<base64>`, Standard Webhooks), setting fresh `webhook-id`,
 * `webhook-timestamp` and `webhook-signature` headers.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import { runtime } from '../lib/runtime';
import { RetryableFailure } from '../lib/workflow';
import { CliError, describeFailure, localContext, readEventFile } from './cli';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/** Handlers typed for their own event (e.g. an API Gateway event) take whatever the event file holds. */
const untyped = (m: Promise<{ handler: unknown }>) => m as Promise<{ handler: Handler }>;

const FUNCTIONS: Record<string, () => Promise<{ handler: Handler }>> = {
  stepfunctions: () => import('../functions/stepfunctions'),
  webhook: () => untyped(import('../functions/webhook')),
  eventbridge: () => import('../functions/eventbridge'),
};
const SIGNABLE = new Set(['webhook']);
const FLAGS = new Set(['--sign']);

const USAGE = `usage: npm run invoke -- <${Object.keys(FUNCTIONS).join('|')}> <event.json> [--sign]
  --sign  webhook only: re-sign the event body with WEBHOOK_SECRET (fresh webhook-id, -timestamp, -signature)`;

const SIGNATURE_HEADERS = new Set(['webhook-id', 'webhook-timestamp', 'webhook-signature']);

type Headers = Record<string, unknown>;

/** A copy of the API Gateway event with its body signed now; other headers keep their names and values. */
export function signWebhookEvent(event: unknown, secret: string, now = new Date()): unknown {
  if (typeof event !== 'object' || event === null) throw new CliError('--sign needs an API Gateway event object');
  const e = event as { body?: unknown; isBase64Encoded?: unknown; headers?: Headers | null; multiValueHeaders?: Headers | null };
  const body = typeof e.body === 'string' ? Buffer.from(e.body, e.isBase64Encoded === true ? 'base64' : 'utf8') : Buffer.alloc(0);
  let webhook: Webhook;
  try {
    webhook = new Webhook(secret);
  } catch {
    throw new CliError('WEBHOOK_SECRET is not a Standard Webhooks secret (whsec_<base64>)');
  }
  const id = `msg_${randomUUID().replace(/-/g, '')}`;
  const fresh: Record<string, string> = {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': webhook.sign(id, now, body),
  };
  const without = (h: Headers | null | undefined) =>
    Object.fromEntries(Object.entries(h ?? {}).filter(([k]) => !SIGNATURE_HEADERS.has(k.toLowerCase())));
  return {
    ...e,
    headers: { ...without(e.headers), ...fresh },
    ...(e.multiValueHeaders && {
      multiValueHeaders: { ...without(e.multiValueHeaders), ...Object.fromEntries(Object.entries(fresh).map(([k, v]) => [k, [v]])) },
    }),
  };
}

const httpStatusOf = (result: unknown): number | undefined => {
  const status = (result as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
};

async function main(argv: string[]): Promise<number> {
  const unknownFlag = argv.find((a) => a.startsWith('--') && !FLAGS.has(a));
  const [name, file] = argv.filter((a) => !a.startsWith('--'));
  const sign = argv.includes('--sign');
  const load = name ? FUNCTIONS[name] : undefined;
  if (!load || unknownFlag) {
    const problem = unknownFlag ? `error: unknown option "${unknownFlag}"\n` : name ? `error: unknown function "${name}"\n` : '';
    process.stderr.write(`${problem}${USAGE}\n`);
    return 2;
  }
  if (sign && !SIGNABLE.has(name!)) {
    process.stderr.write(`error: --sign applies to webhook events only\n${USAGE}\n`);
    return 2;
  }
  let event: unknown;
  try {
    event = await readEventFile(file);
    if (sign) {
      const secret = process.env.WEBHOOK_SECRET?.trim();
      if (!secret) throw new CliError('--sign needs WEBHOOK_SECRET (whsec_<base64>) in the environment');
      event = signWebhookEvent(event, secret);
    }
  } catch (e) {
    process.stderr.write(`${describeFailure(e)}\n${e instanceof CliError && !file ? `${USAGE}\n` : ''}`);
    return 2;
  }
  const { handler } = await load();
  try {
    const result = await handler(event, localContext(name!));
    process.stdout.write(`${JSON.stringify({ result })}\n`);
    const status = httpStatusOf(result);
    if (status !== undefined && status >= 400) {
      if (status === 401 && !sign) process.stderr.write('hint: the sample events carry no valid signature: add --sign (with WEBHOOK_SECRET set)\n');
      return 1;
    }
    return 0;
  } catch (e) {
    // In Lambda a transient failure goes back to the trigger's retry; a local run has no
    // retry after it, so the held-back tasks are reported here as failed outcomes.
    if (e instanceof RetryableFailure) await runtime().sink.publish(e.failures);
    process.stderr.write(`${describeFailure(e)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${describeFailure(e)}\n`);
    process.exit(1);
  },
);
