/**
 * Middleware: refuses what is cheap to refuse before anything expensive (secret fetch,
 * HMAC, parsing) happens, in this order:
 *   405 a method other than POST (with `allow: POST`)
 *   413 a raw body longer than maxBodyBytes (counted without decoding base64)
 *   415 a content type other than JSON: application/json or any application/*+json, with
 *       parameters allowed; a charset, if given, must be UTF-8 (RFC 8259)
 */
import type { MiddlewareObj } from '@middy/core';
import { headerOf, HttpProblem, methodOf, type HttpEvent } from './http';

export interface RequestGuardOptions {
  /** Largest raw body accepted, in bytes; a function is read at each request (lazy configuration). */
  maxBodyBytes: number | (() => number);
}

const JSON_MEDIA_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json$/i;

/** True for application/json and application/*+json, with parameters; a charset must be UTF-8. */
export function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  const [type = '', ...params] = value.split(';').map((p) => p.trim());
  if (!JSON_MEDIA_TYPE.test(type)) return false;
  return params.every((p) => {
    const [key = '', raw = ''] = p.split('=', 2).map((s) => s.trim());
    if (key.toLowerCase() !== 'charset') return true;
    return /^"?utf-?8"?$/i.test(raw);
  });
}

/** Body length in bytes as received: base64 is measured decoded, without decoding it. */
export function rawBodyLength(event: Pick<HttpEvent, 'body' | 'isBase64Encoded'>): number {
  const body = event.body;
  if (typeof body !== 'string' || body.length === 0) return 0;
  return Buffer.byteLength(body, event.isBase64Encoded ? 'base64' : 'utf8');
}

export function requestGuard(options: RequestGuardOptions): MiddlewareObj<HttpEvent> {
  const limit = () => (typeof options.maxBodyBytes === 'function' ? options.maxBodyBytes() : options.maxBodyBytes);
  return {
    before: async ({ event }) => {
      const method = methodOf(event);
      if (method !== 'POST') {
        throw new HttpProblem(405, { error: 'MethodNotAllowed', message: 'use POST' }, `method ${method.slice(0, 16) || 'none'}`, {
          allow: 'POST',
        });
      }
      const max = limit();
      const length = rawBodyLength(event);
      if (length > max) {
        throw new HttpProblem(413, { error: 'PayloadTooLarge', message: `the body must be at most ${max} bytes` }, `body of ${length} bytes`);
      }
      if (!isJsonContentType(headerOf(event, 'content-type'))) {
        throw new HttpProblem(415, { error: 'UnsupportedMediaType', message: 'send the approval as application/json' }, 'content type is not JSON');
      }
    },
  };
}
