/**
 * npm run invoke -- <function> <event.json> [--sign]
 * Runs one handler in-process on an event file. Configuration only from the environment
 * (COC_ENDPOINT, HUAWEICLOUD_SDK_AK / _SK, ...); no AWS needed. Outcome events are JSON
 * lines on stdout, then the handler's result as one `{"result": ...}` line; exits 1 when
 * the handler throws, 2 on a usage error.
 */
import type { Context } from 'aws-lambda';
import { CliError, describeFailure, localContext, readEventFile } from './cli';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

const FUNCTIONS: Record<string, () => Promise<{ handler: Handler }>> = {
  stepfunctions: () => import('../functions/stepfunctions'),
};

const USAGE = `usage: npm run invoke -- <${Object.keys(FUNCTIONS).join('|')}> <event.json>`;

async function main(argv: string[]): Promise<number> {
  const [name, file] = argv.filter((a) => !a.startsWith('--'));
  const load = name ? FUNCTIONS[name] : undefined;
  if (!load) {
    process.stderr.write(`${name ? `error: unknown function "${name}"\n` : ''}${USAGE}\n`);
    return 2;
  }
  let event: unknown;
  try {
    event = await readEventFile(file);
  } catch (e) {
    process.stderr.write(`${describeFailure(e)}\n${e instanceof CliError && !file ? `${USAGE}\n` : ''}`);
    return 2;
  }
  const { handler } = await load();
  try {
    const result = await handler(event, localContext(name!));
    process.stdout.write(`${JSON.stringify({ result })}\n`);
    return 0;
  } catch (e) {
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
