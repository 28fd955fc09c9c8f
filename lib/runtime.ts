/**
 * The composition root: builds the workflow and its seams from configuration, once per
 * execution environment, so connections and caches survive warm invocations.
 * The only module that knows which adapters exist; the workflow never does.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { EventBridgeSink } from './aws/eventbridge';
import { CachedSecret } from './aws/secret-cache';
import { SecretsManagerCredentialSource } from './aws/secrets';
import { systemClock, type Clock } from './clock';
import { CocClient, type AttemptReport } from './coc/client';
import { loadConfig, type Config } from './config';
import { EnvCredentialSource, type CredentialSource } from './credentials';
import type { Logger } from './log';
import { createObservability } from './observability';
import { EnablerError } from './errors';
import { StdoutSink, type OutcomeSink } from './sink';
import { Workflow } from './workflow';
import type { Outcome } from './domain';

export interface Runtime {
  config: Config;
  workflow: Workflow;
  coc: CocClient;
  credentials: CredentialSource;
  sink: OutcomeSink;
  log: Logger;
  clock: Clock;
  /** The Standard Webhooks signing secret: Secrets Manager (WEBHOOK_SECRET_ID) or WEBHOOK_SECRET. */
  webhookSecret(): Promise<string>;
}

export interface RuntimeOverrides {
  credentials?: CredentialSource;
  sink?: OutcomeSink;
  log?: Logger;
  clock?: Clock;
  onAttempt?: (r: AttemptReport) => void;
  onPublished?: (outcomes: Outcome[]) => void;
  secretsManager?: SecretsManagerClient;
  eventBridge?: EventBridgeClient;
}

/** AWS calls must end well inside an invocation: the SDK's defaults wait without limit. */
const AWS_TIMEOUTS = { connectionTimeout: 1000, requestTimeout: 2000 };

export function createRuntime(config: Config = loadConfig(), overrides: RuntimeOverrides = {}): Runtime {
  const clock = overrides.clock ?? systemClock;
  const observed = createObservability();
  const log = overrides.log ?? observed.log;
  // AWS clients are built only when configured; AWS_ENDPOINT_URL_* point them elsewhere (tests, bench).
  let secretsManager = overrides.secretsManager;
  const secrets = () => (secretsManager ??= new SecretsManagerClient({ requestHandler: AWS_TIMEOUTS }));
  const cacheOpts = { ttlMs: config.credentialsCacheTtlMs, staleIfErrorMs: config.credentialsStaleIfErrorMs, clock };
  const credentials =
    overrides.credentials ??
    (config.credentialsSecretId
      ? SecretsManagerCredentialSource.fromSecretId(secrets(), config.credentialsSecretId, cacheOpts)
      : new EnvCredentialSource());
  const sink =
    overrides.sink ??
    (config.eventBusName
      ? new EventBridgeSink({
          client: overrides.eventBridge ?? new EventBridgeClient({ requestHandler: AWS_TIMEOUTS }),
          eventBusName: config.eventBusName,
          source: config.eventSource,
          clock,
        })
      : new StdoutSink(config.eventSource));
  const webhookSecretCache = config.webhookSecretId
    ? new CachedSecret({ client: secrets(), secretId: config.webhookSecretId, ...cacheOpts })
    : undefined;
  const webhookSecret = async (): Promise<string> => {
    if (webhookSecretCache) return webhookSecretCache.get();
    if (config.webhookSecret) return config.webhookSecret;
    throw new EnablerError('InvalidConfiguration', 'no webhook signing secret: set WEBHOOK_SECRET_ID (Secrets Manager) or WEBHOOK_SECRET');
  };
  const coc = new CocClient({
    endpoint: config.cocEndpoint,
    credentials,
    clock,
    maxAttempts: config.maxAttempts,
    attemptTimeoutMs: config.attemptTimeoutMs,
    baseDelayMs: config.baseDelayMs,
    maxDelayMs: config.maxDelayMs,
    throttleMinDelayMs: config.throttleMinDelayMs,
    deadlineMs: config.deadlineMs,
    onAttempt: overrides.onAttempt ?? observed.onAttempt,
  });
  const workflow = new Workflow({
    coc,
    sink,
    clock,
    log,
    onPublished: overrides.onPublished ?? observed.onPublished,
    policy: {
      concurrency: config.concurrency,
      taskAllowList: config.taskAllowList,
      maxApprovalAgeMs: config.maxApprovalAgeMs,
      dryRun: config.dryRun,
      verifyAfterEnable: config.verifyAfterEnable,
    },
  });
  return { config, workflow, coc, credentials, sink, log, clock, webhookSecret };
}

/** Minimal view of the Lambda context: only the remaining time matters here. */
export interface RemainingTime {
  getRemainingTimeInMillis?: () => number;
}

/**
 * Inside Lambda the deadline is the invocation's remaining time minus a margin that
 * leaves room to publish outcomes; elsewhere the configured budget.
 */
export function deadlineFor(context: RemainingTime | undefined, config: Config, clock: Clock = systemClock): number {
  const remaining = context?.getRemainingTimeInMillis?.();
  if (typeof remaining === 'number' && Number.isFinite(remaining)) {
    return clock.now() + Math.max(0, remaining - config.deadlineMarginMs);
  }
  return clock.now() + config.deadlineMs;
}

let current: Runtime | undefined;

/** The per-environment runtime, built on first use (not at import: keeps cold start lean and config errors catchable). */
export function runtime(): Runtime {
  current ??= createRuntime();
  return current;
}

/** For tests and the local CLIs: drop the cached runtime (closing its connections). */
export function resetRuntime(next?: Runtime): void {
  current?.coc.close();
  current = next;
}
