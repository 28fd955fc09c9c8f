/**
 * Huawei Cloud API Gateway AK/SK signing (SDK-HMAC-SHA256), as a pure function of
 * request, credentials and signing time so fixed vectors can test it. Written here
 * rather than taken from the official SDK, which pulls axios, lodash, moment and log4js
 * into a Lambda bundle (DESIGN.md); the official signer is the oracle in tests.
 */
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { Credentials } from '../credentials';

export const ALGORITHM = 'SDK-HMAC-SHA256';

export interface SignableRequest {
  method: string;
  /** scheme://host[:port]; the Host header omits the scheme's default port. */
  origin: URL;
  /** Decoded path, e.g. `/v1/schedule/task/ST.../enable`; segments are encoded here. */
  path: string;
  query?: Record<string, string | string[]>;
  /** Headers to send and sign (Content-Type normally); names in any case. */
  headers?: Record<string, string>;
  /** The exact bytes that will be sent. */
  body?: string | Uint8Array;
  /** Hex SHA-256 of `body`, when the caller already has it (one body sent for many tasks). */
  bodySha256?: string;
}

export interface SignedRequest {
  /** Request-line target: encoded path plus query string. */
  target: string;
  /** Everything to send, Authorization included. */
  headers: Record<string, string>;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const ALL_UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
const HEX = '0123456789ABCDEF';

/** RFC 3986 percent-encoding of UTF-8 bytes: everything but unreserved characters. */
export function uriEncode(s: string): string {
  if (ALL_UNRESERVED.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

export const encodePath = (path: string): string => path.split('/').map(uriEncode).join('/');

/** The gateway's canonical URI always ends in `/`, although the request line need not. */
export function canonicalUri(path: string): string {
  const encoded = encodePath(path);
  return encoded.endsWith('/') ? encoded : `${encoded}/`;
}

/** Sorted by raw name, then value, as Huawei's own signers do; names and values encoded. */
export function canonicalQuery(query: Record<string, string | string[]> = {}): string {
  const pairs: string[] = [];
  for (const name of Object.keys(query).sort()) {
    const value = query[name]!;
    const values = Array.isArray(value) ? [...value].sort() : [value];
    for (const v of values) pairs.push(`${uriEncode(name)}=${uriEncode(v)}`);
  }
  return pairs.join('&');
}

const pad = (n: number) => (n < 10 ? `0${n}` : String(n));
let lastDate = { second: NaN, text: '' };

/** X-Sdk-Date: UTC `YYYYMMDDTHHMMSSZ`. Remembered per second: it is on every request's path. */
export function sdkDate(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastDate.second) {
    const text = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
    lastDate = { second, text };
  }
  return lastDate.text;
}

export const sha256Hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

let lastKey: { sk: string; key: KeyObject } | undefined;
/** The HMAC key object for the last SK used: one credential signs many requests. */
function hmacKey(sk: string): KeyObject {
  if (lastKey?.sk !== sk) lastKey = { sk, key: createSecretKey(Buffer.from(sk, 'utf8')) };
  return lastKey.key;
}

export function signRequest(req: SignableRequest, creds: Credentials, signingTime: Date): SignedRequest {
  const headers: Record<string, string> = {};
  if (req.headers) for (const name of Object.keys(req.headers)) headers[name] = req.headers[name]!;
  headers.Host = req.origin.host;
  const date = sdkDate(signingTime);
  headers['X-Sdk-Date'] = date;
  if (creds.securityToken) headers['X-Security-Token'] = creds.securityToken;
  if (creds.domainId) headers['X-Domain-Id'] = creds.domainId;
  if (creds.projectId) headers['X-Project-Id'] = creds.projectId;

  // Lower-cased names, sorted; a name given twice in different case keeps the last value.
  const values: Record<string, string> = Object.create(null);
  for (const name of Object.keys(headers)) values[name.toLowerCase()] = headers[name]!.trim();
  const names = Object.keys(values).sort();
  const signedHeaders = names.join(';');
  let canonicalHeaders = '';
  for (const name of names) canonicalHeaders += `${name}:${values[name]}\n`;

  const encodedPath = encodePath(req.path);
  const query = canonicalQuery(req.query);
  const canonicalRequest = [
    req.method.toUpperCase(),
    encodedPath.endsWith('/') ? encodedPath : `${encodedPath}/`,
    query,
    canonicalHeaders,
    signedHeaders,
    req.bodySha256 ?? sha256Hex(req.body ?? ''),
  ].join('\n');
  const stringToSign = `${ALGORITHM}\n${date}\n${sha256Hex(canonicalRequest)}`;
  const signature = createHmac('sha256', hmacKey(creds.sk)).update(stringToSign).digest('hex');
  headers.Authorization = `${ALGORITHM} Access=${creds.ak}, SignedHeaders=${signedHeaders}, Signature=${signature}`;

  return { target: query ? `${encodedPath}?${query}` : encodedPath, headers };
}
