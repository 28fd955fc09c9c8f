/**
 * One Secrets Manager secret, cached per execution environment.
 *
 * Why a cache: a warm Lambda environment serves many invocations, and reading the secret on
 * every one costs latency, money and Secrets Manager quota. Why a TTL: a rotated secret must be
 * picked up without a redeploy. Why stale-if-error: a Secrets Manager blip (throttling, 5xx,
 * network) should not fail approvals while we still hold a recently good value.
 *
 * Create one instance at module scope (outside the handler) so it lives as long as the
 * execution environment. Nothing here logs, and no message ever carries the secret's value:
 * only its id (name or ARN), which is configuration, not a secret.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { systemClock, type Clock } from '../clock';
import { EnablerError } from '../errors';

export interface CachedSecretOptions {
  client: SecretsManagerClient;
  /** Secret name or ARN. */
  secretId: string;
  /** How long a fetched value is served without asking again. Default 300 000 (5 min). */
  ttlMs?: number;
  /** After the TTL, how much longer the last good value may be served when Secrets Manager fails transiently. Default 900 000 (15 min). */
  staleIfErrorMs?: number;
  clock?: Clock;
}

export const DEFAULT_SECRET_TTL_MS = 300_000;
export const DEFAULT_SECRET_STALE_IF_ERROR_MS = 900_000;

export class CachedSecret {
  readonly secretId: string;

  private readonly client: SecretsManagerClient;
  private readonly ttlMs: number;
  private readonly staleIfErrorMs: number;
  private readonly clock: Clock;
  private value: string | undefined;
  private fetchedAt = 0;
  private inFlight: Promise<string> | undefined;
  private refreshing: Promise<string> | undefined;
  private fetches = 0;
  private failure: EnablerError | undefined;

  constructor(opts: CachedSecretOptions) {
    this.client = opts.client;
    this.secretId = opts.secretId;
    this.ttlMs = opts.ttlMs ?? DEFAULT_SECRET_TTL_MS;
    this.staleIfErrorMs = opts.staleIfErrorMs ?? DEFAULT_SECRET_STALE_IF_ERROR_MS;
    this.clock = opts.clock ?? systemClock;
  }

  /** GetSecretValue calls made so far (for tests and metrics). */
  get fetchCount(): number {
    return this.fetches;
  }

  /** The last failure (secret-free), cleared by the next success: lets callers log that a stale value is in use. */
  get lastError(): EnablerError | undefined {
    return this.failure;
  }

  /** The cached value while younger than the TTL, otherwise a fresh one. */
  async get(): Promise<string> {
    if (this.value !== undefined && this.clock.now() - this.fetchedAt < this.ttlMs) return this.value;
    return this.fetch();
  }

  /**
   * Fetch now, ignoring the TTL: called when the value was rejected (e.g. COC's APIGW.0301), so a
   * rotation is picked up. Never answered with the stale value (that is the one just rejected):
   * a transient failure throws, retryable, so the caller hands the work back for a retry.
   * Concurrent refreshes share one fetch.
   */
  refresh(): Promise<string> {
    this.refreshing ??= this.load(false).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** All callers share one in-flight GetSecretValue: 100 concurrent cold gets make one call. */
  private fetch(): Promise<string> {
    this.inFlight ??= this.load(true).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async load(staleIfError: boolean): Promise<string> {
    this.fetches += 1;
    let value: string;
    try {
      const res = await this.client.send(new GetSecretValueCommand({ SecretId: this.secretId }));
      value = secretText(res.SecretString, res.SecretBinary, this.secretId);
    } catch (e) {
      const error = e instanceof EnablerError ? e : secretReadError(e, this.secretId);
      this.failure = error;
      // Serve the last good value through a transient outage, but never past ttl + staleIfError,
      // and never for a permanent error (deleted secret, revoked access): those must surface.
      if (staleIfError && error.retryable && this.value !== undefined && this.clock.now() - this.fetchedAt < this.ttlMs + this.staleIfErrorMs) {
        return this.value;
      }
      throw error;
    }
    this.value = value;
    this.fetchedAt = this.clock.now();
    this.failure = undefined;
    return value;
  }
}

/** SecretString, or SecretBinary decoded as UTF-8 when that is all the secret holds. */
function secretText(text: string | undefined, binary: Uint8Array | undefined, secretId: string): string {
  if (typeof text === 'string' && text.length > 0) return text;
  if (binary && binary.length > 0) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(binary);
    } catch {
      // No cause: a decoder error could quote the bytes.
      throw new EnablerError('CredentialsUnavailable', `secret ${secretId} is binary and not valid UTF-8`, {
        code: 'SecretNotUtf8',
        retryable: false,
      });
    }
  }
  throw new EnablerError('CredentialsUnavailable', `secret ${secretId} has no SecretString or SecretBinary`, {
    code: 'SecretEmpty',
    retryable: false,
  });
}

// ---------------------------------------------------------------------------------------------
// AWS error classification, shared with the EventBridge sink (lib/aws/eventbridge.ts).

export type AwsErrorKind = 'throttled' | 'unavailable' | 'permanent';

const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
]);
const UNAVAILABLE_NAMES = new Set([
  'InternalServiceError',
  'InternalServiceErrorException',
  'InternalFailure',
  'InternalException',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
// Node socket errors the SDK passes through when the connection fails or drops.
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface AwsErrorShape {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

/** The AWS error name (SDK v3 sets `name` to the service's error code), or the Node socket code. */
export function awsErrorCode(e: unknown): string {
  const err = (e ?? {}) as AwsErrorShape;
  if (typeof err.code === 'string' && NETWORK_CODES.has(err.code)) return err.code;
  return typeof err.name === 'string' && err.name !== 'Error' ? err.name : typeof err.code === 'string' ? err.code : 'UnknownError';
}

export const awsErrorStatus = (e: unknown): number | undefined => (e as AwsErrorShape | undefined)?.$metadata?.httpStatusCode;

/** Throttled and unavailable are worth retrying; anything not recognised as transient is permanent. */
export function awsErrorKind(e: unknown): AwsErrorKind {
  const err = (e ?? {}) as AwsErrorShape;
  const name = typeof err.name === 'string' ? err.name : '';
  const status = awsErrorStatus(e);
  if (THROTTLING_NAMES.has(name) || status === 429 || err.$retryable?.throttling === true) return 'throttled';
  if (UNAVAILABLE_NAMES.has(name) || (status !== undefined && status >= 500)) return 'unavailable';
  if (typeof err.code === 'string' && NETWORK_CODES.has(err.code)) return 'unavailable';
  return 'permanent';
}

const ACCESS_DENIED = new Set(['AccessDeniedException', 'AccessDenied', 'DecryptionFailure', 'KMSAccessDeniedException', 'KMSDisabledException', 'KMSInvalidStateException', 'KMSNotFoundException']);

/** A GetSecretValue failure as CredentialsUnavailable. The SDK error is kept as cause: it never carries the value. */
export function secretReadError(e: unknown, secretId: string): EnablerError {
  const code = awsErrorCode(e);
  const status = awsErrorStatus(e);
  const kind = awsErrorKind(e);
  const details = { code, status, cause: e, retryable: kind !== 'permanent' };
  if (kind === 'throttled') return new EnablerError('CredentialsUnavailable', `Secrets Manager throttled reading secret ${secretId}`, details);
  if (kind === 'unavailable') {
    return new EnablerError('CredentialsUnavailable', `Secrets Manager unavailable reading secret ${secretId} (${code})`, details);
  }
  if (code === 'ResourceNotFoundException') return new EnablerError('CredentialsUnavailable', `secret ${secretId} not found`, details);
  if (ACCESS_DENIED.has(code)) return new EnablerError('CredentialsUnavailable', `access denied reading secret ${secretId}`, details);
  return new EnablerError('CredentialsUnavailable', `cannot read secret ${secretId} (${code})`, details);
}
