/**
 * Standard Webhooks (https://www.standardwebhooks.com) signature verification over the RAW
 * body, as a middy middleware that must run before any body parser: a parsed and
 * re-serialized body no longer matches its signature.
 *
 * Headers: `webhook-id` (the delivery id: stable across the sender's retries, so it feeds
 * the idempotency key), `webhook-timestamp` (Unix seconds) and `webhook-signature` (one or
 * more space-separated `v1,<base64 HMAC-SHA256>` of `${id}.${timestamp}.${body}`).
 *
 * The secret has the Standard Webhooks form `whsec_<base64 key>` (the key is what follows the
 * prefix, base64-decoded). It is shared with the approval system and never logged or returned.
 *
 * The HMAC is node:crypto's over the raw bytes, not the `standardwebhooks` package's: its
 * pure-JS SHA-256 took about 10 ms for a 256 KiB body (0.3 ms here), work any caller with
 * well-formed headers could make us do before authentication, and its verify() fixes the
 * tolerance at 300 s and reads Date.now(). The tests sign with the package, so the two agree.
 * Signatures are compared in constant time.
 *
 * Every refusal is a 401 with one generic body; the precise reason goes to the log only.
 * Headers are checked before the secret is fetched, so unsigned junk costs no secret read.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import { EnablerError } from '../errors';
import { headerOf, HttpProblem, type HttpEvent } from './http';

export const UNAUTHORIZED_BODY = Object.freeze({ error: 'Unauthorized' });

const MAX_ID_LENGTH = 256;
const MAX_SIGNATURE_HEADER_LENGTH = 4096;

export interface SignedHeaders {
  id: string;
  timestamp: number;
  signatures: string[];
}

export type HeaderCheck = { ok: true; headers: SignedHeaders } | { ok: false; reason: string };

/** The three signature headers, present, well formed, and the timestamp within tolerance of now. */
export function readSignedHeaders(
  get: (name: string) => string | undefined,
  opts: { toleranceSeconds: number; nowMs: number },
): HeaderCheck {
  const id = get('webhook-id');
  const timestamp = get('webhook-timestamp');
  const signature = get('webhook-signature');
  if (!id || !timestamp || !signature) return { ok: false, reason: 'missing signature headers' };
  if (id.length > MAX_ID_LENGTH || !/^[\x21-\x7e]+$/.test(id)) return { ok: false, reason: 'malformed webhook-id' };
  if (!/^\d{1,12}$/.test(timestamp.trim())) return { ok: false, reason: 'malformed webhook-timestamp' };
  if (signature.length > MAX_SIGNATURE_HEADER_LENGTH) return { ok: false, reason: 'webhook-signature too long' };
  const seconds = Number(timestamp.trim());
  const skew = Math.floor(opts.nowMs / 1000) - seconds;
  if (skew > opts.toleranceSeconds) return { ok: false, reason: `timestamp ${skew} s old, tolerance ${opts.toleranceSeconds} s` };
  if (-skew > opts.toleranceSeconds) return { ok: false, reason: `timestamp ${-skew} s in the future, tolerance ${opts.toleranceSeconds} s` };
  return { ok: true, headers: { id, timestamp: seconds, signatures: signature.split(' ').filter(Boolean) } };
}

let keyCache: { secret: string; key: KeyObject } | undefined;

/** The HMAC key of a `whsec_<base64>` secret; a malformed secret is a configuration error that never quotes it. */
function keyOf(secret: string): KeyObject {
  if (keyCache?.secret === secret) return keyCache.key;
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new EnablerError('InvalidConfiguration', 'the webhook secret is not a Standard Webhooks secret (whsec_<base64>)');
  }
  keyCache = { secret, key: createSecretKey(Buffer.from(encoded, 'base64')) };
  return keyCache.key;
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.payload">`, as Standard Webhooks defines it. */
export function sign(secret: string, id: string, timestamp: number, payload: Uint8Array): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.`).update(payload).digest('base64')}`;
}

/** True when one of the passed `v1,` signatures is the HMAC of this id, timestamp and raw payload. */
export function signatureMatches(secret: string, headers: SignedHeaders, payload: Uint8Array): boolean {
  const expected = Buffer.from(sign(secret, headers.id, headers.timestamp, payload));
  let match = false;
  for (const candidate of headers.signatures) {
    const given = Buffer.from(candidate);
    // No early exit: every candidate costs the same, whichever matches.
    if (given.length === expected.length && timingSafeEqual(given, expected)) match = true;
  }
  return match;
}

/** The body bytes exactly as the sender sent them. */
export function rawBodyBytes(event: Pick<HttpEvent, 'body' | 'isBase64Encoded'>): Buffer {
  const body = typeof event.body === 'string' ? event.body : '';
  return Buffer.from(body, event.isBase64Encoded ? 'base64' : 'utf8');
}

export interface StandardWebhookOptions {
  /** The `whsec_...` secret; called only for requests whose headers are well formed and fresh. */
  secret: () => Promise<string>;
  toleranceSeconds: () => number;
  /** Epoch ms. */
  now: () => number;
}

const unauthorized = (reason: string) => new HttpProblem(401, { ...UNAUTHORIZED_BODY }, reason);

/**
 * Verifies the signature over the raw body, then hands the next middleware the body as
 * decoded UTF-8 text (`isBase64Encoded` cleared), so a JSON parser sees exactly what was signed.
 */
export function standardWebhookSignature(options: StandardWebhookOptions): MiddlewareObj<HttpEvent> {
  return {
    before: async ({ event }) => {
      const check = readSignedHeaders((name) => headerOf(event, name), {
        toleranceSeconds: options.toleranceSeconds(),
        nowMs: options.now(),
      });
      if (!check.ok) throw unauthorized(check.reason);
      const raw = rawBodyBytes(event);
      if (!signatureMatches(await options.secret(), check.headers, raw)) throw unauthorized('no matching signature');
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
      } catch {
        throw new HttpProblem(400, { error: 'BadRequest', message: 'the body is not valid UTF-8' }, 'body not UTF-8');
      }
      event.body = text;
      event.isBase64Encoded = false;
    },
  };
}
