/**
 * Huawei Cloud credentials from a Secrets Manager secret.
 *
 * The secret is a JSON object, in exactly one documented format (one format means one thing to
 * get right when rotating, and a clear error when it is wrong):
 *
 *   {"ak": "...", "sk": "...", "security_token": "...", "domain_id": "...", "project_id": "..."}
 *
 * `ak` and `sk` are required; the others are optional (empty string or null = absent). Values
 * are trimmed, since a pasted trailing newline is a common rotation mistake.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CredentialSource, Credentials } from '../credentials';
import { EnablerError } from '../errors';
import { CachedSecret, type CachedSecretOptions } from './secret-cache';

const REQUIRED = ['ak', 'sk'] as const;
const OPTIONAL = { security_token: 'securityToken', domain_id: 'domainId', project_id: 'projectId' } as const;
/** Names people commonly use instead; mentioned in the error as a hint. Only these fixed names are ever echoed. */
const ALIASES = ['access_key', 'secret_key', 'accessKey', 'secretKey', 'AK', 'SK', 'HUAWEICLOUD_SDK_AK', 'HUAWEICLOUD_SDK_SK'];

export class SecretsManagerCredentialSource implements CredentialSource {
  readonly cache: CachedSecret;
  /** The parse of the last string seen: a cache hit returns the same frozen object without JSON.parse. */
  private parsed: { raw: string; credentials: Credentials } | undefined;

  constructor(opts: { cache: CachedSecret }) {
    this.cache = opts.cache;
  }

  static fromSecretId(
    client: SecretsManagerClient,
    secretId: string,
    opts: Omit<CachedSecretOptions, 'client' | 'secretId'> = {},
  ): SecretsManagerCredentialSource {
    return new SecretsManagerCredentialSource({ cache: new CachedSecret({ ...opts, client, secretId }) });
  }

  async get(): Promise<Credentials> {
    return this.parse(await this.cache.get());
  }

  /** Forces a refetch (called after COC rejects the credentials) so a rotated secret is used. */
  async refresh(): Promise<Credentials> {
    return this.parse(await this.cache.refresh());
  }

  private parse(raw: string): Credentials {
    if (this.parsed?.raw === raw) return this.parsed.credentials;
    const credentials = parseCredentialsSecret(raw, this.cache.secretId);
    this.parsed = { raw, credentials };
    return credentials;
  }
}

const fail = (code: string, message: string) => new EnablerError('CredentialsUnavailable', message, { code, retryable: false });

/**
 * Parses the documented secret format. Errors name the secret id and key names, never values:
 * the JSON.parse error is deliberately dropped (V8 quotes the input in it), and unknown key names
 * are not listed (someone may have stored `{"<AK>": "<SK>"}`).
 */
export function parseCredentialsSecret(raw: string, secretId: string): Credentials {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw fail('SecretNotJson', `secret ${secretId} is not JSON; expected {"ak": "...", "sk": "..."}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fail('SecretNotJson', `secret ${secretId} is not a JSON object; expected {"ak": "...", "sk": "..."}`);
  }
  const obj = json as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v.trim() : undefined);

  const missing = REQUIRED.filter((k) => !text(obj[k]));
  if (missing.length > 0) {
    const aliases = ALIASES.filter((k) => Object.prototype.hasOwnProperty.call(obj, k));
    const hint = aliases.length > 0 ? ` (found ${aliases.join(', ')}: rename to ak, sk)` : '';
    throw fail(
      'SecretKeysMissing',
      `secret ${secretId} lacks key ${missing.join(', ')} (must be non-empty strings)${hint}`,
    );
  }

  const invalid = Object.keys(OPTIONAL).filter((k) => obj[k] !== undefined && obj[k] !== null && typeof obj[k] !== 'string');
  if (invalid.length > 0) throw fail('SecretKeysInvalid', `secret ${secretId} key ${invalid.join(', ')} must be a string`);

  const credentials: Credentials = { ak: text(obj.ak)!, sk: text(obj.sk)! };
  for (const [key, field] of Object.entries(OPTIONAL)) {
    const value = text(obj[key]);
    if (value) credentials[field] = value;
  }
  return redacted(credentials);
}

/**
 * Frozen, and redacted if logged by accident: JSON.stringify and console.log/util.inspect show
 * only which fields are set. The hooks are non-enumerable, so spreading and equality see plain data.
 */
function redacted(c: Credentials): Credentials {
  const shape = () => Object.fromEntries(Object.keys(c).map((k) => [k, '[redacted]']));
  Object.defineProperty(c, 'toJSON', { value: shape, enumerable: false });
  Object.defineProperty(c, Symbol.for('nodejs.util.inspect.custom'), { value: shape, enumerable: false });
  return Object.freeze(c);
}
