import { describe, expect, it } from 'vitest';
import { parseEndpoint } from '../lib/coc/endpoint';
import { loadConfig } from '../lib/config';
import { EnablerError } from '../lib/errors';

function configError(fn: () => unknown): EnablerError {
  try {
    fn();
  } catch (e) {
    expect(e).toMatchObject({ name: 'InvalidConfiguration' });
    return e as EnablerError;
  }
  throw new Error('expected InvalidConfiguration');
}

describe('COC_ENDPOINT', () => {
  it.each(['https://coc.myhuaweicloud.com', 'https://coc-intl.myhuaweicloud.com:8443', 'http://127.0.0.1:8787', 'http://localhost:1', 'http://[::1]:9'])(
    'accepts %s',
    (raw) => expect(parseEndpoint(raw).origin).toBe(new URL(raw).origin),
  );

  it.each([
    ['http://coc.myhuaweicloud.com', 'must use https'],
    ['http://10.0.0.1', 'must use https'],
    ['ftp://coc.myhuaweicloud.com', 'must use https'],
    ['https://coc.myhuaweicloud.com/v1', 'no path or query'],
    ['https://coc.myhuaweicloud.com?x=1', 'no path or query'],
    ['https://user:pass@coc.myhuaweicloud.com', 'user info'],
  ])('refuses %s (%s)', (raw, says) => {
    expect(configError(() => parseEndpoint(raw)).message).toContain(says);
  });

  it('does not echo a value that is not a URL', () => {
    const e = configError(() => parseEndpoint('not a url sk=SECRETVALUE123'));
    expect(e.message).not.toContain('SECRETVALUE123');
  });
});

describe('loadConfig', () => {
  it('has documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      cocEndpoint: 'https://coc.myhuaweicloud.com',
      credentialsCacheTtlMs: 300_000,
      credentialsStaleIfErrorMs: 900_000,
      eventSource: 'coc.task-enabler',
      concurrency: 8,
      maxAttempts: 4,
      attemptTimeoutMs: 5000,
      throttleMinDelayMs: 2000,
      deadlineMarginMs: 1500,
      taskAllowList: [],
      maxApprovalAgeMs: 86_400_000,
      dryRun: false,
      verifyAfterEnable: false,
      webhookBodyLimitBytes: 262_144,
      webhookToleranceSeconds: 300,
    });
    expect(c.credentialsSecretId).toBeUndefined();
    expect(c.eventBusName).toBeUndefined();
  });

  it('reads lists and switches', () => {
    const c = loadConfig({ TASK_ALLOW_LIST: ' ST00000000000000000000000001, ST1234* ,', DRY_RUN: 'yes', VERIFY_AFTER_ENABLE: 'off', EVENT_BUS_NAME: ' ' });
    expect(c.taskAllowList).toEqual(['ST00000000000000000000000001', 'ST1234*']);
    expect(c.dryRun).toBe(true);
    expect(c.verifyAfterEnable).toBe(false);
    expect(c.eventBusName).toBeUndefined();
  });

  it.each([
    [{ ENABLE_CONCURRENCY: '0' }, 'ENABLE_CONCURRENCY must be an integer from 1 to 64'],
    [{ COC_MAX_ATTEMPTS: 'three' }, 'COC_MAX_ATTEMPTS must be an integer'],
    [{ DRY_RUN: 'maybe' }, 'DRY_RUN must be true or false'],
  ])('refuses %j', (env, says) => {
    expect(configError(() => loadConfig(env)).message).toContain(says);
  });
});
