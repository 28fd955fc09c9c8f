/**
 * All configuration, read from the environment in one place with documented defaults.
 * README.md's configuration table mirrors this file.
 */
import { EnablerError } from './errors';

export interface Config {
  /** Validated by the COC client, so a bad endpoint still yields one failure outcome per task. */
  cocEndpoint: string;
  /** Secrets Manager secret holding the Huawei AK/SK; unset = HUAWEICLOUD_SDK_* variables. */
  credentialsSecretId?: string;
  credentialsCacheTtlMs: number;
  credentialsStaleIfErrorMs: number;
  /** EventBridge bus for outcome events; unset = JSON lines on stdout. */
  eventBusName?: string;
  eventSource: string;
  /** Tasks enabled at once within one approval. */
  concurrency: number;
  maxAttempts: number;
  attemptTimeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Floor for a 429 without Retry-After (Huawei suggests 2-5 s). */
  throttleMinDelayMs: number;
  /** Overall budget for one approval when no Lambda context gives one. */
  deadlineMs: number;
  /** Time kept back from Lambda's remaining time to emit outcomes. */
  deadlineMarginMs: number;
  /** Task ids or prefixes (ending in `*`) this deployment may enable; empty = any. */
  taskAllowList: string[];
  /** Approvals decided longer ago are refused; 0 = no limit. */
  maxApprovalAgeMs: number;
  dryRun: boolean;
  verifyAfterEnable: boolean;
  webhookSecretId?: string;
  webhookSecret?: string;
  webhookBodyLimitBytes: number;
  webhookToleranceSeconds: number;
}

export const DEFAULT_COC_ENDPOINT = 'https://coc.myhuaweicloud.com';

const invalid = (message: string) => new EnablerError('InvalidConfiguration', message);

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw invalid(`${name} must be an integer from ${min} to ${max}, got "${raw.slice(0, 20)}"`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback = false): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw invalid(`${name} must be true or false, got "${raw.slice(0, 20)}"`);
}

const optional = (env: NodeJS.ProcessEnv, name: string): string | undefined => env[name]?.trim() || undefined;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    cocEndpoint: optional(env, 'COC_ENDPOINT') ?? DEFAULT_COC_ENDPOINT,
    credentialsSecretId: optional(env, 'HUAWEI_CREDENTIALS_SECRET_ID'),
    credentialsCacheTtlMs: int(env, 'CREDENTIALS_CACHE_TTL_SECONDS', 300) * 1000,
    credentialsStaleIfErrorMs: int(env, 'CREDENTIALS_STALE_IF_ERROR_SECONDS', 900) * 1000,
    eventBusName: optional(env, 'EVENT_BUS_NAME'),
    eventSource: optional(env, 'EVENT_SOURCE') ?? 'coc.task-enabler',
    concurrency: int(env, 'ENABLE_CONCURRENCY', 8, 1, 64),
    maxAttempts: int(env, 'COC_MAX_ATTEMPTS', 4, 1, 10),
    attemptTimeoutMs: int(env, 'COC_ATTEMPT_TIMEOUT_MS', 5000, 100),
    baseDelayMs: int(env, 'COC_RETRY_BASE_DELAY_MS', 200, 1),
    maxDelayMs: int(env, 'COC_RETRY_MAX_DELAY_MS', 5000, 1),
    throttleMinDelayMs: int(env, 'COC_THROTTLE_MIN_DELAY_MS', 2000),
    deadlineMs: int(env, 'COC_DEADLINE_MS', 25000, 100),
    deadlineMarginMs: int(env, 'DEADLINE_MARGIN_MS', 1500),
    taskAllowList: (optional(env, 'TASK_ALLOW_LIST') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    maxApprovalAgeMs: int(env, 'MAX_APPROVAL_AGE_SECONDS', 86400) * 1000,
    dryRun: bool(env, 'DRY_RUN'),
    verifyAfterEnable: bool(env, 'VERIFY_AFTER_ENABLE'),
    webhookSecretId: optional(env, 'WEBHOOK_SECRET_ID'),
    webhookSecret: optional(env, 'WEBHOOK_SECRET'),
    webhookBodyLimitBytes: int(env, 'WEBHOOK_BODY_LIMIT_BYTES', 256 * 1024, 1),
    webhookToleranceSeconds: int(env, 'WEBHOOK_TOLERANCE_SECONDS', 300, 1),
  };
}
