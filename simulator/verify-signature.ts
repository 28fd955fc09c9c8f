/**
 * Server-side verification of Huawei Cloud's `SDK-HMAC-SHA256` request signatures, as the
 * API gateway in front of COC does it (reference/coc-api.md, "AK/SK request signing").
 *
 * Deliberately independent of the client's signer in lib/coc/: nothing here is imported
 * from lib/, and the encoding is written differently (encodeURIComponent plus fix-ups
 * rather than a hex table), so a bug in one implementation cannot hide in both. The
 * official Huawei signer (`@huaweicloud/huaweicloud-sdk-core`, AKSKSigner) is what the
 * simulator's tests sign with.
 *
 * Everything is a pure function of the received request, the credential lookup and the
 * current time. Failure reasons are safe to return to callers: they never carry a
 * secret key, a signature, a security token or the access key.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNING_ALGORITHM = 'SDK-HMAC-SHA256';
/** How far X-Sdk-Date may be from the verifier's clock, either way. */
export const DATE_WINDOW_MS = 15 * 60 * 1000;

/** What the verifier needs to know about an access key. */
export interface VerifierCredential {
  sk: string;
  /** Temporary credentials: the request must carry this exact `X-Security-Token`. */
  securityToken?: string;
}

/** A request exactly as received: `rawUrl` is the request-line target (path and query, not decoded). */
export interface ReceivedRequest {
  method: string;
  rawUrl: string;
  /** Lowercase names, as node:http gives them (`IncomingMessage.headers`). */
  headers: Record<string, string | string[] | undefined>;
  /** The exact body bytes received (empty for no body). */
  body: Uint8Array;
}

export type VerifyResult =
  | { ok: true; ak: string; signedHeaders: string[] }
  /** `ak` is set when the Authorization header could be parsed, for the caller's records only. */
  | { ok: false; reason: string; ak?: string };

export interface ParsedAuthorization {
  ak: string;
  signedHeaders: string[];
  signature: string;
}

/** RFC 3986 percent-encoding: everything but ALPHA / DIGIT / "-" / "." / "_" / "~", as UTF-8 bytes, upper-case hex. */
export function encodeRfc3986(value: string): string {
  // encodeURIComponent leaves ! ' ( ) * alone, which RFC 3986 reserves: fix those up.
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Percent-decoding for query components; a malformed escape leaves the component as received. */
function decodeComponent(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Each segment of the raw (still percent-encoded) path is encoded again, as the signer
 * encodes the path it puts on the wire; the result always ends in `/`.
 * `/v1/schedule/task/ST1/enable` -> `/v1/schedule/task/ST1/enable/`.
 */
export function canonicalUri(rawPath: string): string {
  let out = '';
  let start = 0;
  for (;;) {
    const slash = rawPath.indexOf('/', start);
    const segment = slash === -1 ? rawPath.slice(start) : rawPath.slice(start, slash);
    out += encodeSegment(segment);
    if (slash === -1) break;
    out += '/';
    start = slash + 1;
  }
  return out.endsWith('/') ? out : `${out}/`;
}

const PLAIN_SEGMENT = /^[A-Za-z0-9\-._~]*$/;

function encodeSegment(segment: string): string {
  if (PLAIN_SEGMENT.test(segment)) return segment; // the common case, no allocation
  // node:http hands the request target over as latin1 text: re-encode the bytes as they came.
  let out = '';
  for (const byte of Buffer.from(segment, 'latin1')) {
    const c = String.fromCharCode(byte);
    out += PLAIN_SEGMENT.test(c) ? c : `%${byte < 16 ? '0' : ''}${byte.toString(16).toUpperCase()}`;
  }
  return out;
}

/**
 * Parameters decoded, then encoded (RFC 3986) and sorted by encoded name, then encoded
 * value; `name=value` joined with `&` (a parameter without `=` gets an empty value).
 */
export function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    pairs.push([encodeRfc3986(decodeComponent(name)), encodeRfc3986(decodeComponent(value))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

const AUTH_PREFIX = `${SIGNING_ALGORITHM} `;
const HEX_SIGNATURE = /^[0-9a-fA-F]{64}$/;

/** `SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>`; undefined when malformed. */
export function parseAuthorization(header: string): ParsedAuthorization | undefined {
  if (!header.startsWith(AUTH_PREFIX)) return undefined;
  const fields: Record<string, string> = {};
  for (const item of header.slice(AUTH_PREFIX.length).split(',')) {
    const trimmed = item.trim();
    const eq = trimmed.indexOf('=');
    if (eq <= 0) return undefined;
    const key = trimmed.slice(0, eq);
    if (key in fields) return undefined;
    fields[key] = trimmed.slice(eq + 1);
  }
  const ak = fields.Access;
  const signed = fields.SignedHeaders;
  const signature = fields.Signature;
  if (!ak || !signed || !signature || Object.keys(fields).length !== 3) return undefined;
  return { ak, signedHeaders: signed.split(';'), signature };
}

const SDK_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** `YYYYMMDDTHHMMSSZ` (UTC) to epoch milliseconds; undefined unless it is a real instant in that exact form. */
export function parseSdkDate(value: string): number | undefined {
  const m = SDK_DATE.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Reject rollovers such as month 13 or 25:00 that Date.UTC would silently normalise.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) {
    return undefined;
  }
  return ms;
}

function headerValue(headers: ReceivedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

const sha256Hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The canonical request for the given signed headers (which must already be validated). */
export function canonicalRequest(req: ReceivedRequest, signedHeaders: readonly string[]): string {
  const q = req.rawUrl.indexOf('?');
  const rawPath = q === -1 ? req.rawUrl : req.rawUrl.slice(0, q);
  const rawQuery = q === -1 ? '' : req.rawUrl.slice(q + 1);
  let headers = '';
  for (const name of signedHeaders) headers += `${name}:${(headerValue(req.headers, name) ?? '').trim()}\n`;
  return [
    req.method.toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    headers,
    signedHeaders.join(';'),
    sha256Hex(req.body),
  ].join('\n');
}

export function stringToSign(sdkDate: string, canonical: string): string {
  return `${SIGNING_ALGORITHM}\n${sdkDate}\n${sha256Hex(canonical)}`;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verify a received request. `lookup` maps an access key to its credential (undefined:
 * unknown key); `nowMs` is the verifier's clock for the X-Sdk-Date window.
 */
export function verifySdkHmacSha256(
  req: ReceivedRequest,
  lookup: (ak: string) => VerifierCredential | undefined,
  nowMs: number,
): VerifyResult {
  const header = headerValue(req.headers, 'authorization');
  if (header === undefined || header === '') return { ok: false, reason: 'Authorization header is missing' };
  if (!header.startsWith(AUTH_PREFIX)) return { ok: false, reason: `Authorization must use the ${SIGNING_ALGORITHM} algorithm` };
  const auth = parseAuthorization(header);
  if (!auth) return { ok: false, reason: 'Authorization header is malformed (expected Access, SignedHeaders, Signature)' };
  const { ak, signedHeaders, signature } = auth;
  const fail = (reason: string): VerifyResult => ({ ok: false, reason, ak });

  for (let i = 0; i < signedHeaders.length; i++) {
    const name = signedHeaders[i]!;
    if (name === '' || name !== name.toLowerCase()) return fail('SignedHeaders must be lowercase header names');
    if (i > 0 && signedHeaders[i - 1]! >= name) return fail('SignedHeaders must be sorted and without duplicates');
    if (headerValue(req.headers, name) === undefined) return fail(`signed header ${name} is not in the request`);
  }
  if (!signedHeaders.includes('host')) return fail('the host header must be signed');
  if (!signedHeaders.includes('x-sdk-date')) return fail('the x-sdk-date header must be signed');

  const sdkDate = headerValue(req.headers, 'x-sdk-date')!.trim();
  const signedAt = parseSdkDate(sdkDate);
  if (signedAt === undefined) return fail('X-Sdk-Date must be UTC in the form YYYYMMDDTHHMMSSZ');
  if (Math.abs(nowMs - signedAt) > DATE_WINDOW_MS) return fail('X-Sdk-Date is more than 15 minutes away from the server time');

  if (!HEX_SIGNATURE.test(signature)) return fail('Signature must be 64 hexadecimal characters');
  const credential = lookup(ak);
  if (!credential) return fail('the access key is unknown');

  if (credential.securityToken !== undefined) {
    const token = headerValue(req.headers, 'x-security-token');
    if (token === undefined) return fail('X-Security-Token is required for temporary credentials');
    if (!sameText(token, credential.securityToken)) return fail('X-Security-Token does not match the access key');
  }

  const expected = createHmac('sha256', credential.sk).update(stringToSign(sdkDate, canonicalRequest(req, signedHeaders))).digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail('the signature does not match');
  return { ok: true, ak, signedHeaders };
}
