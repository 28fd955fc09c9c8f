import {
  GetSecretValueCommand,
  InternalServiceError,
  ResourceNotFoundException,
  SecretsManagerClient,
  SecretsManagerServiceException,
  DecryptionFailure,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CachedSecret } from '../lib/aws/secret-cache';
import { SecretsManagerCredentialSource, parseCredentialsSecret } from '../lib/aws/secrets';
import type { Clock } from '../lib/clock';
import { EnablerError } from '../lib/errors';
import { startSecretsManagerFake, type SecretsManagerFake } from './support/aws-fakes';
import { captureOutput, registerSecret } from './support/leak-capture';
import { caught, everythingSaidBy } from './support/errors';

const ID = 'coc/huawei-credentials';
const TTL = 300_000;
const STALE = 900_000;

/** A clock the test moves by hand: no sleeping, no fake timers. */
function manualClock(start = 1_700_000_000_000) {
  let t = start;
  const clock: Clock & { advance(ms: number): void } = {
    now: () => t,
    random: () => 0.5,
    sleep: async () => {},
    advance: (ms) => {
      t += ms;
    },
  };
  return clock;
}

const awsError = (name: string, status: number, fault: 'client' | 'server' = 'client') =>
  new SecretsManagerServiceException({ name, $fault: fault, $metadata: { httpStatusCode: status }, message: `${name} from AWS` });

// Mock one client instance, not the class, so the real clients used against the fake stay real.
const mockedClient = new SecretsManagerClient({ region: 'us-east-1' });
const sm = mockClient(mockedClient);
beforeEach(() => sm.reset());
afterAll(() => sm.restore());

const newCache = (clock = manualClock(), extra: Partial<ConstructorParameters<typeof CachedSecret>[0]> = {}) =>
  new CachedSecret({ client: mockedClient, secretId: ID, clock, ...extra });

describe('CachedSecret (mocked client)', () => {
  it('asks for the configured secret and serves it from cache until the TTL passes', async () => {
    sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'v1' }).resolves({ SecretString: 'v2' });
    const clock = manualClock();
    const cache = newCache(clock);

    expect(await cache.get()).toBe('v1');
    clock.advance(TTL - 1);
    expect(await cache.get()).toBe('v1');
    expect(cache.fetchCount).toBe(1);

    clock.advance(1);
    expect(await cache.get()).toBe('v2');
    expect(cache.fetchCount).toBe(2);
    expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input)).toEqual([{ SecretId: ID }, { SecretId: ID }]);
  });

  it('honours a custom TTL', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'v' });
    const clock = manualClock();
    const cache = newCache(clock, { ttlMs: 1000 });
    await cache.get();
    clock.advance(999);
    await cache.get();
    clock.advance(1);
    await cache.get();
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('shares one in-flight fetch between 100 concurrent cold gets', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    sm.on(GetSecretValueCommand).callsFake(async () => {
      await gate;
      return { SecretString: 'shared' };
    });
    const cache = newCache();
    const all = Promise.all(Array.from({ length: 100 }, () => cache.get()));
    await new Promise((r) => setImmediate(r));
    release();
    const values = await all;
    expect(new Set(values)).toEqual(new Set(['shared']));
    expect(values).toHaveLength(100);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(cache.fetchCount).toBe(1);
  });

  it('refresh() fetches even when the value is fresh, and concurrent refreshes share one call', async () => {
    let n = 0;
    sm.on(GetSecretValueCommand).callsFake(async () => ({ SecretString: `v${++n}` }));
    const cache = newCache();
    expect(await cache.get()).toBe('v1');
    const refreshed = await Promise.all([cache.refresh(), cache.refresh(), cache.get(), cache.refresh()]);
    // get() during a refresh still returns the fresh cached value; the three refreshes share one call.
    expect(refreshed).toEqual(['v2', 'v2', 'v1', 'v2']);
    expect(await cache.get()).toBe('v2');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('a failed fetch is not cached as in flight: the next call tries again', async () => {
    sm.on(GetSecretValueCommand).rejectsOnce(awsError('ThrottlingException', 400)).resolves({ SecretString: 'ok' });
    const cache = newCache();
    await expect(cache.get()).rejects.toMatchObject({ name: 'CredentialsUnavailable', retryable: true });
    expect(await cache.get()).toBe('ok');
    expect(cache.fetchCount).toBe(2);
  });

  describe('stale-if-error', () => {
    it('serves the last good value on a transient error within ttl + staleIfError', async () => {
      sm.on(GetSecretValueCommand)
        .resolvesOnce({ SecretString: 'good' })
        .rejectsOnce(awsError('ThrottlingException', 400))
        .rejectsOnce(new InternalServiceError({ $metadata: { httpStatusCode: 500 }, message: 'boom' }))
        .rejectsOnce(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      const clock = manualClock();
      const cache = newCache(clock);
      await cache.get();

      clock.advance(TTL);
      expect(await cache.get()).toBe('good');
      expect(cache.lastError).toMatchObject({ code: 'ThrottlingException', retryable: true });
      clock.advance(STALE / 2);
      expect(await cache.get()).toBe('good');
      clock.advance(STALE / 2 - 1); // age = ttl + staleIfError - 1
      expect(await cache.get()).toBe('good');
      // Each stale answer still asked Secrets Manager first.
      expect(cache.fetchCount).toBe(4);
    });

    it('refresh() never answers with the stale value (it is the one just rejected): a transient error throws, retryable', async () => {
      sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'good' }).rejects(awsError('ThrottlingException', 400));
      const cache = newCache();
      await cache.get();
      const e = await caught(cache.refresh());
      expect(e).toMatchObject({ name: 'CredentialsUnavailable', retryable: true, code: 'ThrottlingException' });
      // get() still serves the stale value through the outage.
      expect(await cache.get()).toBe('good');
    });

    it('throws once the value is older than ttl + staleIfError', async () => {
      sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'good' }).rejects(awsError('ThrottlingException', 400));
      const clock = manualClock();
      const cache = newCache(clock);
      await cache.get();
      clock.advance(TTL + STALE);
      const e = await caught(cache.get());
      expect(e).toMatchObject({ name: 'CredentialsUnavailable', retryable: true, code: 'ThrottlingException' });
    });

    it('honours a custom staleIfError window', async () => {
      sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'good' }).rejects(awsError('ThrottlingException', 400));
      const clock = manualClock();
      const cache = newCache(clock, { ttlMs: 1000, staleIfErrorMs: 0 });
      await cache.get();
      clock.advance(1000);
      await expect(cache.get()).rejects.toMatchObject({ name: 'CredentialsUnavailable' });
    });

    it('never serves stale on a permanent error', async () => {
      sm.on(GetSecretValueCommand)
        .resolvesOnce({ SecretString: 'good' })
        .rejects(new ResourceNotFoundException({ $metadata: { httpStatusCode: 400 }, message: 'gone' }));
      const clock = manualClock();
      const cache = newCache(clock);
      await cache.get();
      clock.advance(TTL);
      await expect(cache.get()).rejects.toMatchObject({ name: 'CredentialsUnavailable', retryable: false });
      // Nor on refresh while the value is still fresh.
      await expect(cache.refresh()).rejects.toMatchObject({ code: 'ResourceNotFoundException' });
    });

    it('has nothing to serve before the first success', async () => {
      sm.on(GetSecretValueCommand).rejects(awsError('ThrottlingException', 400));
      await expect(newCache().get()).rejects.toMatchObject({ retryable: true });
    });
  });

  describe('error mapping', () => {
    const cases: { what: string; error: unknown; message: string; code: string; retryable: boolean }[] = [
      {
        what: 'ResourceNotFoundException',
        error: new ResourceNotFoundException({ $metadata: { httpStatusCode: 400 }, message: "can't find" }),
        message: `secret ${ID} not found`,
        code: 'ResourceNotFoundException',
        retryable: false,
      },
      {
        what: 'AccessDeniedException',
        error: awsError('AccessDeniedException', 400),
        message: `access denied reading secret ${ID}`,
        code: 'AccessDeniedException',
        retryable: false,
      },
      {
        what: 'KMS DecryptionFailure',
        error: new DecryptionFailure({ $metadata: { httpStatusCode: 400 }, message: 'kms says no' }),
        message: `access denied reading secret ${ID}`,
        code: 'DecryptionFailure',
        retryable: false,
      },
      {
        what: 'ThrottlingException',
        error: awsError('ThrottlingException', 400),
        message: `Secrets Manager throttled reading secret ${ID}`,
        code: 'ThrottlingException',
        retryable: true,
      },
      {
        what: 'TooManyRequestsException',
        error: awsError('TooManyRequestsException', 400),
        message: `Secrets Manager throttled reading secret ${ID}`,
        code: 'TooManyRequestsException',
        retryable: true,
      },
      {
        what: 'a bare 429',
        error: awsError('SomethingElse', 429),
        message: `Secrets Manager throttled reading secret ${ID}`,
        code: 'SomethingElse',
        retryable: true,
      },
      {
        what: 'InternalServiceError',
        error: new InternalServiceError({ $metadata: { httpStatusCode: 500 }, message: 'oops' }),
        message: `Secrets Manager unavailable reading secret ${ID} (InternalServiceError)`,
        code: 'InternalServiceError',
        retryable: true,
      },
      {
        what: 'an unmodelled 503',
        error: awsError('ServiceUnavailable', 503, 'server'),
        message: `Secrets Manager unavailable reading secret ${ID} (ServiceUnavailable)`,
        code: 'ServiceUnavailable',
        retryable: true,
      },
      {
        what: 'a network error',
        error: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
        message: `Secrets Manager unavailable reading secret ${ID} (ECONNREFUSED)`,
        code: 'ECONNREFUSED',
        retryable: true,
      },
      {
        what: 'an SDK timeout',
        error: Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
        message: `Secrets Manager unavailable reading secret ${ID} (TimeoutError)`,
        code: 'TimeoutError',
        retryable: true,
      },
      {
        what: 'InvalidRequestException (e.g. scheduled for deletion)',
        error: awsError('InvalidRequestException', 400),
        message: `cannot read secret ${ID} (InvalidRequestException)`,
        code: 'InvalidRequestException',
        retryable: false,
      },
    ];
    for (const c of cases) {
      it(`maps ${c.what}`, async () => {
        sm.on(GetSecretValueCommand).rejects(c.error as Error);
        const e = await caught(newCache().get());
        expect({ name: e.name, message: e.message, code: e.code, retryable: e.retryable }).toEqual({
          name: 'CredentialsUnavailable',
          message: c.message,
          code: c.code,
          retryable: c.retryable,
        });
        expect(e.cause).toBe(c.error);
      });
    }

    it('an empty secret is a permanent error', async () => {
      sm.on(GetSecretValueCommand).resolves({ Name: ID });
      await expect(newCache().get()).rejects.toMatchObject({ code: 'SecretEmpty', retryable: false });
    });
  });

  it('decodes SecretBinary as UTF-8 when there is no SecretString', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new TextEncoder().encode('{"ak":"é"}') });
    expect(await newCache().get()).toBe('{"ak":"é"}');
  });

  it('rejects SecretBinary that is not UTF-8 without quoting it', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([0x41, 0x4b, 0xff, 0xfe]) });
    const e = await caught(newCache().get());
    expect(e).toMatchObject({ code: 'SecretNotUtf8', retryable: false });
    expect(e.cause).toBeUndefined();
  });
});

describe('SecretsManagerCredentialSource (mocked client)', () => {
  const AK = 'AKSECRETVALUE0000001';
  const SK = 'SKSECRETVALUEaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
  const TOKEN = 'TOKENSECRETVALUE-xyz';
  registerSecret({ ak: AK, sk: SK, 'security token': TOKEN });
  const full = JSON.stringify({ ak: AK, sk: SK, security_token: TOKEN, domain_id: 'dom-1', project_id: 'proj-1' });

  const source = (clock = manualClock()) =>
    SecretsManagerCredentialSource.fromSecretId(mockedClient, ID, { clock });

  it('parses the documented format', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: full });
    expect(await source().get()).toEqual({ ak: AK, sk: SK, securityToken: TOKEN, domainId: 'dom-1', projectId: 'proj-1' });
  });

  it('needs only ak and sk, trims values, and treats empty or null optional keys as absent', async () => {
    sm.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({ ak: ` ${AK}\n`, sk: `${SK}\n`, security_token: '', domain_id: null }),
    });
    const creds = await source().get();
    expect(creds).toEqual({ ak: AK, sk: SK });
    expect(Object.keys(creds).sort()).toEqual(['ak', 'sk']);
  });

  it('reuses the parse while the secret string is unchanged, and reparses after a rotation', async () => {
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: full })
      .resolvesOnce({ SecretString: full })
      .resolves({ SecretString: JSON.stringify({ ak: 'AK2', sk: 'SK2' }) });
    const clock = manualClock();
    const src = source(clock);
    const first = await src.get();
    expect(await src.get()).toBe(first); // cache hit: same object
    clock.advance(TTL);
    expect(await src.get()).toBe(first); // refetched, same string: same object
    expect(src.cache.fetchCount).toBe(2);
    const rotated = await src.refresh();
    expect(rotated).toEqual({ ak: 'AK2', sk: 'SK2' });
    expect(await src.get()).toBe(rotated);
  });

  it('returns frozen credentials that do not serialize or inspect their values', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: full });
    const creds = await source().get();
    expect(Object.isFrozen(creds)).toBe(true);
    for (const shown of [JSON.stringify(creds), inspect(creds), JSON.stringify({ nested: creds })]) {
      expect(shown).not.toContain(AK);
      expect(shown).not.toContain(SK);
      expect(shown).not.toContain(TOKEN);
      expect(shown).toContain('[redacted]');
    }
    // Spreading (what a signer might do) still sees the values.
    expect({ ...creds }.ak).toBe(AK);
  });

  const badSecrets: { what: string; raw: string; code: string; says: RegExp; secrets: string[] }[] = [
    { what: 'not JSON', raw: `${AK}:${SK}`, code: 'SecretNotJson', says: /is not JSON/, secrets: [AK, SK] },
    { what: 'truncated JSON', raw: `{"ak":"${AK}","sk":"${SK}`, code: 'SecretNotJson', says: /is not JSON/, secrets: [AK, SK] },
    { what: 'a JSON string', raw: JSON.stringify(`${AK}`), code: 'SecretNotJson', says: /not a JSON object/, secrets: [AK] },
    { what: 'a JSON array', raw: JSON.stringify([AK, SK]), code: 'SecretNotJson', says: /not a JSON object/, secrets: [AK, SK] },
    { what: 'missing sk', raw: JSON.stringify({ ak: AK }), code: 'SecretKeysMissing', says: /lacks key sk\b/, secrets: [AK] },
    {
      what: 'empty ak and sk',
      raw: JSON.stringify({ ak: ' ', sk: '', security_token: TOKEN }),
      code: 'SecretKeysMissing',
      says: /lacks key ak, sk/,
      secrets: [TOKEN],
    },
    {
      what: 'aliases instead of ak/sk',
      raw: JSON.stringify({ access_key: AK, secret_key: SK }),
      code: 'SecretKeysMissing',
      says: /found access_key, secret_key: rename to ak, sk/,
      secrets: [AK, SK],
    },
    {
      what: 'the AK stored as a key name',
      raw: JSON.stringify({ [AK]: SK }),
      code: 'SecretKeysMissing',
      says: /lacks key ak, sk/,
      secrets: [AK, SK],
    },
    {
      what: 'a non-string optional key',
      raw: JSON.stringify({ ak: AK, sk: SK, project_id: 42 }),
      code: 'SecretKeysInvalid',
      says: /key project_id must be a string/,
      secrets: [AK, SK],
    },
  ];
  for (const b of badSecrets) {
    it(`rejects a secret that is ${b.what}, naming the problem but no value`, async () => {
      sm.on(GetSecretValueCommand).resolves({ SecretString: b.raw });
      const e = await caught(source().get());
      captureOutput('aws-secrets error', e);
      expect(e).toMatchObject({ name: 'CredentialsUnavailable', code: b.code, retryable: false });
      expect(e.message).toMatch(b.says);
      expect(e.message).toContain(ID);
      const said = everythingSaidBy(e);
      for (const s of b.secrets) expect(said).not.toContain(s);
      expect(said).not.toContain(b.raw);
    });
  }

  it('parseCredentialsSecret is usable on its own', () => {
    expect(parseCredentialsSecret('{"ak":"a","sk":"b"}', 'x')).toEqual({ ak: 'a', sk: 'b' });
  });
});

describe('against the loopback Secrets Manager fake (real SDK client)', () => {
  let fake: SecretsManagerFake;
  const CREDS = JSON.stringify({ ak: 'AKFAKEVALUE', sk: 'SKFAKEVALUE' });
  registerSecret({ 'fake ak': 'AKFAKEVALUE', 'fake sk': 'SKFAKEVALUE' });
  const client = (maxAttempts = 1) =>
    new SecretsManagerClient({
      endpoint: fake.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts,
    });

  beforeAll(async () => {
    fake = await startSecretsManagerFake({ secrets: { [ID]: CREDS } });
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => {
    fake.setSecret(ID, CREDS);
    fake.allow(ID);
  });

  it('reads a secret by name and by ARN', async () => {
    const before = fake.calls();
    expect(await new CachedSecret({ client: client(), secretId: ID }).get()).toBe(CREDS);
    expect(await new CachedSecret({ client: client(), secretId: fake.arnOf(ID) }).get()).toBe(CREDS);
    expect(fake.calls() - before).toBe(2);
  });

  it('decodes a binary secret sent base64 on the wire', async () => {
    fake.setSecret('bin', new TextEncoder().encode(CREDS));
    const src = SecretsManagerCredentialSource.fromSecretId(client(), 'bin');
    expect(await src.get()).toEqual({ ak: 'AKFAKEVALUE', sk: 'SKFAKEVALUE' });
  });

  it('maps a missing secret and denied access', async () => {
    await expect(new CachedSecret({ client: client(), secretId: 'nope' }).get()).rejects.toMatchObject({
      message: 'secret nope not found',
      code: 'ResourceNotFoundException',
      status: 400,
      retryable: false,
    });
    fake.deny(ID);
    await expect(new CachedSecret({ client: client(), secretId: ID }).get()).rejects.toMatchObject({
      message: `access denied reading secret ${ID}`,
      code: 'AccessDeniedException',
      retryable: false,
    });
  });

  it('maps throttling, 500 and a dropped connection as retryable (SDK retries off)', async () => {
    const cache = new CachedSecret({ client: client(1), secretId: ID });
    fake.failNext(1, 'ThrottlingException');
    await expect(cache.get()).rejects.toMatchObject({ code: 'ThrottlingException', status: 400, retryable: true });
    fake.failNext(1, 'InternalServiceError');
    await expect(cache.get()).rejects.toMatchObject({ code: 'InternalServiceError', status: 500, retryable: true });
    fake.dropNext(1);
    await expect(cache.get()).rejects.toMatchObject({ name: 'CredentialsUnavailable', retryable: true });
    expect(await cache.get()).toBe(CREDS);
  });

  it('picks up a rotation on refresh, and serves stale through a real throttle', async () => {
    const clock = manualClock();
    const src = SecretsManagerCredentialSource.fromSecretId(client(1), ID, { clock });
    expect((await src.get()).ak).toBe('AKFAKEVALUE');
    fake.setSecret(ID, JSON.stringify({ ak: 'AKROTATED', sk: 'SKROTATED' }));
    expect((await src.get()).ak).toBe('AKFAKEVALUE'); // within the TTL: cached
    expect((await src.refresh()).ak).toBe('AKROTATED');

    clock.advance(TTL);
    fake.failNext(1, 'ThrottlingException');
    expect((await src.get()).ak).toBe('AKROTATED');
    expect(src.cache.lastError?.code).toBe('ThrottlingException');
    // A stale answer does not restart the TTL: the next get asks again and clears the error.
    fake.setSecret(ID, JSON.stringify({ ak: 'AKTHIRD', sk: 'SKTHIRD' }));
    expect((await src.get()).ak).toBe('AKTHIRD');
    expect(src.cache.lastError).toBeUndefined();
  });

  it("the SDK's own retry strategy recovers from a single throttle", async () => {
    const before = fake.calls();
    fake.failNext(1, 'ThrottlingException');
    const cache = new CachedSecret({ client: client(2), secretId: ID });
    expect(await cache.get()).toBe(CREDS);
    expect(cache.fetchCount).toBe(1);
    expect(fake.calls() - before).toBe(2);
  });

  it('100 concurrent cold gets make one request to the service', async () => {
    fake.setLatency(20);
    try {
      const before = fake.calls();
      const cache = new CachedSecret({ client: client(), secretId: ID });
      const values = await Promise.all(Array.from({ length: 100 }, () => cache.get()));
      expect(values.every((v) => v === CREDS)).toBe(true);
      expect(fake.calls() - before).toBe(1);
    } finally {
      fake.setLatency(0);
    }
  });
});
