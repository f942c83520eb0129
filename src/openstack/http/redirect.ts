/**
 * Redirects (301/302/303/307/308), absolute or relative `Location`, up to `maxRedirects`;
 * https -> http downgrades and other schemes are refused; auth headers are dropped when the
 * redirect leaves the origin. 303 turns the request into a GET; the others keep method and body.
 */
import { OpenStackError, stripQuery } from '../errors.ts';
import type { HttpMethod, HttpRequest } from './types.ts';
import { type EncodedBody, lowerKeys, type RawResponse } from './wire.ts';

export const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers never forwarded to another origin on redirect. */
const CROSS_ORIGIN_DROP = new Set(['x-auth-token', 'x-service-token', 'authorization', 'cookie']);

/** Sends one exchange: the response (any status), or throws. */
export type SendOnce = (
  url: URL,
  method: HttpMethod,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
) => Promise<RawResponse>;

/** Sends the request via `send`, following redirects; returns the first non-redirect response. */
export async function followRedirects(
  req: HttpRequest,
  firstUrl: URL,
  encoded: EncodedBody,
  maxRedirects: number,
  send: SendOnce,
): Promise<RawResponse> {
  let url = firstUrl;
  let method: HttpMethod = req.method;
  let body = encoded;
  const headers: Record<string, string> = { accept: 'application/json', ...lowerKeys(req.headers) };
  if (body.contentType && headers['content-type'] === undefined) headers['content-type'] = body.contentType;
  for (let redirects = 0; ; redirects++) {
    const res = await send(url, method, headers, body.data);
    const location = res.headers['location'];
    if (!REDIRECT_STATUSES.has(res.status) || !location) return res;
    if (redirects >= maxRedirects) {
      throw new OpenStackError({
        status: res.status,
        faultMessage: `too many redirects (more than ${maxRedirects})`,
        method: req.method,
        url: req.url,
        requestId: res.requestId,
      });
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new OpenStackError({
        status: res.status,
        faultMessage: `invalid redirect Location ${JSON.stringify(stripQuery(location))}`,
        method: req.method,
        url: url.toString(),
      });
    }
    if (url.protocol === 'https:' && next.protocol !== 'https:') {
      throw new OpenStackError({
        status: res.status,
        faultMessage: `refusing redirect from https to ${next.protocol.replace(':', '')} (${stripQuery(next.toString())})`,
        method: req.method,
        url: url.toString(),
      });
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new OpenStackError({
        status: res.status,
        faultMessage: `refusing redirect to unsupported scheme ${next.protocol}`,
        method: req.method,
        url: url.toString(),
      });
    }
    if (next.origin !== url.origin) {
      for (const h of Object.keys(headers)) if (CROSS_ORIGIN_DROP.has(h)) delete headers[h];
    }
    if (res.status === 303 && method !== 'HEAD') {
      method = 'GET';
      body = { data: undefined };
      delete headers['content-type'];
    }
    url = next;
  }
}
