/**
 * Logs and metrics. In Lambda: Powertools Logger (structured JSON with the Lambda request
 * id; approval and task ids come as fields on every workflow line) and Powertools Metrics
 * (EMF: Enabled / AlreadyEnabled / Failed counts and CocLatency). Elsewhere: JSON lines on
 * stderr and no metrics, so stdout keeps only outcome events.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { MiddlewareObj, Request } from '@middy/core';
import type { AttemptReport } from './coc/client';
import type { Outcome } from './domain';
import { jsonLogger, type LogFields, type Logger } from './log';

export const inLambda = (env: NodeJS.ProcessEnv = process.env): boolean => Boolean(env.AWS_LAMBDA_FUNCTION_NAME);

export interface Observability {
  log: Logger;
  onPublished(outcomes: Outcome[]): void;
  onAttempt(r: AttemptReport): void;
}

const SERVICE = process.env.POWERTOOLS_SERVICE_NAME ?? 'coc-task-enabler';
const OUTCOME_METRIC = { enabled: 'Enabled', already_enabled: 'AlreadyEnabled', would_enable: 'WouldEnable', failed: 'Failed' } as const;

let powertools: { logger: PowertoolsLogger; metrics: Metrics } | undefined;

function lambdaTools() {
  powertools ??= {
    logger: new PowertoolsLogger({ serviceName: SERVICE }),
    metrics: new Metrics({ serviceName: SERVICE, namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'CocTaskEnabler' }),
  };
  return powertools;
}

function adapt(l: PowertoolsLogger): Logger {
  const at = (fn: (m: string, f: Record<string, never>) => void) => (m: string, f: LogFields = {}) => fn(m, f as Record<string, never>);
  return { debug: at(l.debug.bind(l)), info: at(l.info.bind(l)), warn: at(l.warn.bind(l)), error: at(l.error.bind(l)) };
}

export function createObservability(env: NodeJS.ProcessEnv = process.env): Observability {
  if (!inLambda(env)) return { log: jsonLogger(env.LOG_LEVEL), onPublished() {}, onAttempt() {} };
  const { logger, metrics } = lambdaTools();
  const log = adapt(logger);
  return {
    log,
    // One value per outcome kind and batch: Powertools keeps every value it is given.
    onPublished: (outcomes) => {
      const counts = new Map<Outcome['outcome'], number>();
      for (const o of outcomes) counts.set(o.outcome, (counts.get(o.outcome) ?? 0) + 1);
      for (const [kind, n] of counts) metrics.addMetric(OUTCOME_METRIC[kind], MetricUnit.Count, n);
    },
    onAttempt: (r) => {
      metrics.addMetric('CocLatency', MetricUnit.Milliseconds, r.durationMs);
      // Attempts that will be retried; final answers are in the outcomes (and failures logged there).
      if (r.error || r.status === 429 || (r.status ?? 0) >= 500) log.info('COC attempt failed transiently', { ...r });
    },
  };
}

/**
 * One middy middleware for every door: in Lambda it adds the request id to every log
 * line and flushes metrics after the invocation (success or failure); elsewhere nothing.
 */
export function observability(): MiddlewareObj {
  let parts: MiddlewareObj[] | undefined;
  // Decided at the first invocation, not at import, so the same bundle runs locally too.
  const active = () => {
    if (!inLambda()) return [];
    const { logger, metrics } = lambdaTools();
    parts ??= [injectLambdaContext(logger, { resetKeys: true }), logMetrics(metrics, { captureColdStartMetric: true })];
    return parts;
  };
  const run = (phase: 'before' | 'after' | 'onError', reversed: boolean) => async (req: Request) => {
    const order = reversed ? [...active()].reverse() : active();
    for (const p of order) await p[phase]?.(req);
  };
  return { before: run('before', false), after: run('after', true), onError: run('onError', true) };
}
