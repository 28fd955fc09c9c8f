import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalQuery, canonicalUri, sdkDate, signRequest, uriEncode } from '../lib/coc/signer';
import { officialAuthorization } from './support/official-signer';
import { registerSecret } from './support/leak-capture';

const AK = 'HPUAEXAMPLEAK0000001';
const SK = 'exampleSecretKeyForTests0000000000000000';
registerSecret({ ak: AK, sk: SK });
const TASK_PATH = '/v1/schedule/task/ST0123456789abcdefghijklmn/enable';
const AT = new Date('2026-12-04T19:42:05.123Z');

describe('signer: fixed vectors', () => {
  it('formats X-Sdk-Date as UTC basic ISO 8601', () => {
    expect(sdkDate(AT)).toBe('20261204T194205Z');
  });

  it('encodes path segments per RFC 3986 and always ends the canonical URI in a slash', () => {
    expect(canonicalUri(TASK_PATH)).toBe(`${TASK_PATH}/`);
    expect(canonicalUri('/a b/c:d/é/')).toBe('/a%20b/c%3Ad/%C3%A9/');
    expect(uriEncode("!*'()~-._")).toBe('%21%2A%27%28%29~-._');
  });

  it('sorts query parameters by name, then values, and encodes both', () => {
    expect(canonicalQuery({ b: '2', a: 'x y', c: ['z', 'y'] })).toBe('a=x%20y&b=2&c=y&c=z');
    expect(canonicalQuery({})).toBe('');
  });

  it('produces the Authorization header of the reference vector (EnableScheduledTask)', () => {
    const body = '{"ticket_infos":[{"ticket_id":"CM202405221739540119523656","ticket_type":"CHANGE","scope_id":"cn-north-4"}]}';
    const signed = signRequest(
      {
        method: 'POST',
        origin: new URL('https://coc.myhuaweicloud.com'),
        path: TASK_PATH,
        headers: { 'Content-Type': 'application/json;charset=UTF-8' },
        body,
      },
      { ak: AK, sk: SK },
      AT,
    );
    // Pinned from the official @huaweicloud/huaweicloud-sdk-core signer over the same request.
    expect(signed.headers.Authorization).toBe(
      'SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;x-sdk-date, Signature=' +
        VECTOR_SIGNATURE,
    );
    expect(signed.headers.Host).toBe('coc.myhuaweicloud.com');
    expect(signed.target).toBe(TASK_PATH);
  });

  it('keeps a non-default port in Host, signs the security token and domain id', () => {
    const signed = signRequest(
      { method: 'GET', origin: new URL('http://127.0.0.1:8443'), path: '/v1/schedule/task/ST0123456789abcdefghijklmn' },
      { ak: AK, sk: SK, securityToken: 'tok', domainId: 'acct-1', projectId: 'proj-1' },
      AT,
    );
    expect(signed.headers.Host).toBe('127.0.0.1:8443');
    expect(signed.headers['X-Security-Token']).toBe('tok');
    expect(signed.headers['X-Domain-Id']).toBe('acct-1');
    expect(signed.headers.Authorization).toContain('SignedHeaders=host;x-domain-id;x-project-id;x-sdk-date;x-security-token,');
    expect(signed.headers.Authorization).toBe(
      officialAuthorization(
        {
          method: 'GET',
          endpoint: 'http://127.0.0.1:8443/v1/schedule/task/ST0123456789abcdefghijklmn',
          headers: { 'X-Security-Token': 'tok', 'X-Domain-Id': 'acct-1', 'X-Project-Id': 'proj-1' },
          sdkDate: '20261204T194205Z',
        },
        AK,
        SK,
      ),
    );
  });

  it('omits the default port from Host', () => {
    const signed = signRequest({ method: 'GET', origin: new URL('https://coc.myhuaweicloud.com:443'), path: '/x' }, { ak: AK, sk: SK }, AT);
    expect(signed.headers.Host).toBe('coc.myhuaweicloud.com');
  });

  it('hashes the exact body bytes: a re-serialized body gives another signature', () => {
    const sign = (body: string) =>
      signRequest({ method: 'POST', origin: new URL('https://h'), path: '/p', headers: {}, body }, { ak: AK, sk: SK }, AT).headers
        .Authorization;
    expect(sign('{"a":1}')).not.toBe(sign('{ "a": 1 }'));
    expect(sign('{"a":1}')).toBe(sign('{"a":1}'));
  });
});

// Random requests signed by both; the official SDK is the reference the gateway follows.
const segment = fc.stringMatching(/^[A-Za-z0-9\-._~!*()@:$,;=+]{1,12}$/);
const pathArb = fc.array(segment, { minLength: 1, maxLength: 5 }).chain((segs) =>
  fc.boolean().map((slash) => `/${segs.join('/')}${slash ? '/' : ''}`),
);
const queryArb = fc.dictionary(
  fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/),
  fc.oneof(fc.string({ maxLength: 12 }), fc.array(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 3 })),
  { maxKeys: 4 },
);
const headerArb = fc.dictionary(
  fc.stringMatching(/^x-[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?$/).filter((h) => !['x-sdk-date', 'x-security-token', 'x-domain-id', 'x-project-id'].includes(h)),
  fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/),
  { maxKeys: 4 },
);
const bodyArb = fc.option(
  fc.jsonValue().filter((v) => Boolean(v) && JSON.stringify(v) !== undefined),
  { nil: undefined },
);

describe('signer: property test against the official Huawei SDK signer', () => {
  it('agrees on the Authorization header for random methods, paths, queries, headers and bodies', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
        fc.constantFrom('https://coc.myhuaweicloud.com', 'http://127.0.0.1:18080', 'https://coc-intl.myhuaweicloud.com:8443'),
        pathArb,
        queryArb,
        headerArb,
        bodyArb,
        fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true }),
        fc.stringMatching(/^[A-Z0-9]{20}$/),
        fc.string({ minLength: 1, maxLength: 40 }),
        (method, origin, path, query, headers, data, date, ak, sk) => {
          const at = new Date(Math.floor(date.getTime() / 1000) * 1000);
          const body = data === undefined ? undefined : JSON.stringify(data);
          const ours = signRequest({ method, origin: new URL(origin), path, query, headers, body }, { ak, sk }, at);
          const theirs = officialAuthorization(
            { method, endpoint: `${origin}${path}`, query, headers, data, sdkDate: sdkDate(at) },
            ak,
            sk,
          );
          expect(ours.headers.Authorization).toBe(theirs);
        },
      ),
      { numRuns: 500 },
    );
  });
});

// From the official signer (test/support/official-signer.ts) over the same request, pinned.
const VECTOR_SIGNATURE = '4c6abecdc1372a2114b6205f23719ad843764053f2082bd60a099c1314ddef67';
