/**
 * The composition root: builds the workflow and its seams from configuration, once per
 * execution environment, so connections and caches survive warm invocations.
 * The only module that knows which adapters exist; the workflow never does.
 */
import { systemClock, type Clock } from './clock';
import { CocClient, type AttemptReport } from './coc/client';
import { loadConfig, type Config } from './config';
import { EnvCredentialSource, type CredentialSource } from './credentials';
import { jsonLogger, type Logger } from './log';
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
}

export interface RuntimeOverrides {
  credentials?: CredentialSource;
  sink?: OutcomeSink;
  log?: Logger;
  clock?: Clock;
  onAttempt?: (r: AttemptReport) => void;
  onOutcome?: (o: Outcome) => void;
}

export function createRuntime(config: Config = loadConfig(), overrides: RuntimeOverrides = {}): Runtime {
  const clock = overrides.clock ?? systemClock;
  const log = overrides.log ?? jsonLogger();
  const credentials = overrides.credentials ?? new EnvCredentialSource();
  const sink = overrides.sink ?? new StdoutSink(config.eventSource);
  const coc = new CocClient({
    endpoint: config.cocEndpoint,
    credentials,
    clock,
    maxAttempts: config.maxAttempts,
    attemptTimeoutMs: config.attemptTimeoutMs,
    baseDelayMs: config.baseDelayMs,
    maxDelayMs: config.maxDelayMs,
    deadlineMs: config.deadlineMs,
    onAttempt:
      overrides.onAttempt ??
      ((r) => (r.error || (r.status ?? 0) >= 400 ? log.debug('COC attempt', { ...r }) : undefined)),
  });
  const workflow = new Workflow({
    coc,
    sink,
    clock,
    log,
    onOutcome: overrides.onOutcome,
    policy: {
      concurrency: config.concurrency,
      taskAllowList: config.taskAllowList,
      maxApprovalAgeMs: config.maxApprovalAgeMs,
      dryRun: config.dryRun,
      verifyAfterEnable: config.verifyAfterEnable,
    },
  });
  return { config, workflow, coc, credentials, sink, log, clock };
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
