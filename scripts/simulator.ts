/**
 * Run the local COC simulator on its own:
 *
 *   npm run simulator -- [--port 8787] [--demo] [--latency MS] [--rate-limit PER_SECOND]
 *
 * Binds 127.0.0.1 only. Credentials it accepts come from the environment, the names
 * Huawei's SDKs read:
 *   HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK          (both, or neither)
 *   HUAWEICLOUD_SDK_SECURITY_TOKEN                  optional: temporary credentials
 *   HUAWEICLOUD_SDK_DOMAIN_ID                       optional: the account id
 * When AK and SK are unset it accepts the documented demo pair (not a real key):
 *   AK DEMOAKEXAMPLE0000000   SK demo-secret-key-not-real
 * Credentials are never printed.
 *
 * --demo seeds one task of each interesting state (DEMO_TASKS). Stop with Ctrl-C
 * (SIGINT) or SIGTERM.
 */
import { parseArgs } from 'node:util';
import { CONTROL_API_HELP, DEMO_CREDENTIAL, DEMO_TASKS, startCocSimulator } from '../simulator/coc-simulator';
import type { SimCredential } from '../simulator/coc-simulator';

const USAGE = 'usage: npm run simulator -- [--port 8787] [--demo] [--latency MS] [--rate-limit PER_SECOND]';

function fatal(message: string): never {
  process.stderr.write(`simulator: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function numberArg(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) fatal(`--${name} must be a number >= ${min}`);
  return n;
}

function credentialFromEnv(env: NodeJS.ProcessEnv): { credential: SimCredential; demo: boolean } {
  const ak = env.HUAWEICLOUD_SDK_AK;
  const sk = env.HUAWEICLOUD_SDK_SK;
  if (!ak && !sk) return { credential: { ...DEMO_CREDENTIAL }, demo: true };
  if (!ak || !sk) fatal('set both HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or neither for the demo credentials');
  const token = env.HUAWEICLOUD_SDK_SECURITY_TOKEN;
  const domainId = env.HUAWEICLOUD_SDK_DOMAIN_ID;
  return {
    credential: { ak, sk, ...(token && { securityToken: token }), ...(domainId && { domainId }) },
    demo: false,
  };
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '8787' },
        demo: { type: 'boolean', default: false },
        latency: { type: 'string' },
        'rate-limit': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    fatal(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n\n${CONTROL_API_HELP}\n`);
    return;
  }
  const port = numberArg(values.port, 'port', 0)!;
  if (!Number.isInteger(port) || port > 65535) fatal('--port must be an integer from 0 to 65535');
  const latencyMs = numberArg(values.latency, 'latency', 0);
  const rateLimitPerSecond = numberArg(values['rate-limit'], 'rate-limit', Number.MIN_VALUE);
  const { credential, demo } = credentialFromEnv(process.env);

  const sim = await startCocSimulator({
    port,
    credentials: [credential],
    ...(latencyMs !== undefined && { latencyMs }),
    ...(rateLimitPerSecond !== undefined && { rateLimitPerSecond }),
  });
  if (values.demo) for (const t of DEMO_TASKS) sim.seedTask(t.taskId, t.seed);

  const lines = [
    `COC simulator listening on ${sim.url}`,
    `  set COC_ENDPOINT=${sim.url}`,
    demo
      ? '  credentials: the demo pair documented in scripts/simulator.ts (HUAWEICLOUD_SDK_AK/SK unset)'
      : `  credentials: from HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK${credential.securityToken ? ' (+ security token)' : ''}${credential.domainId ? ' (+ domain id)' : ''}`,
  ];
  if (latencyMs) lines.push(`  latency: ${latencyMs} ms per answer`);
  if (rateLimitPerSecond) lines.push(`  rate limit: ${rateLimitPerSecond} requests/s`);
  if (values.demo) {
    lines.push('  demo tasks:');
    for (const t of DEMO_TASKS) lines.push(`    ${t.taskId}  ${t.note}`);
  }
  lines.push('', CONTROL_API_HELP, '', 'Ctrl-C to stop.');
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    const { requests } = sim.stats();
    sim.close().then(
      () => {
        process.stdout.write(`\n${signal}: stopped after ${requests} API requests\n`);
        process.exit(0);
      },
      (e: unknown) => {
        process.stderr.write(`simulator: close failed: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  const code = (e as { code?: string }).code;
  fatal(code === 'EADDRINUSE' ? 'the port is already in use' : e instanceof Error ? e.message : String(e));
});
