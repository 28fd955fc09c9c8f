import { EnablerError } from '../errors';

const invalid = (message: string) => new EnablerError('InvalidConfiguration', message);

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** COC_ENDPOINT: HTTPS only, except plain HTTP to a loopback host (the local simulator). */
export function parseEndpoint(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not echoed: a mistyped value could hold anything, a credential included.
    throw invalid('COC_ENDPOINT is not a URL (expected https://host[:port])');
  }
  if (url.username || url.password) throw invalid('COC_ENDPOINT must not carry user info');
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
    throw invalid(`COC_ENDPOINT must use https (plain http only for loopback), got ${url.protocol}//${url.host}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`COC_ENDPOINT must use https, got ${url.protocol}`);
  if (url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw invalid('COC_ENDPOINT must be scheme://host[:port] with no path or query');
  }
  return url;
}

