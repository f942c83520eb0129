/** Request and response encoding: URL and query, body serialisation, header maps, bounded body reads. */
import type { Dispatcher } from 'undici';
import { AttemptFailure } from './failure.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

/** One exchange's response, any status, before the retry decision. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  requestId: string | undefined;
  url: string;
}

export interface EncodedBody {
  data: string | Uint8Array | undefined;
  contentType?: string;
}

export function toResponse<T>(res: RawResponse): HttpResponse<T> {
  return {
    status: res.status,
    headers: res.headers,
    body: res.body as T,
    requestId: res.requestId,
    url: res.url,
  };
}

/** Reads a response body as UTF-8, failing (and dropping the connection) above `limit` bytes. */
export async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      body.destroy();
      throw new AttemptFailure('RESPONSE_TOO_LARGE', `response body larger than ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function encodeBody(body: unknown): EncodedBody {
  if (body === undefined) return { data: undefined };
  if (typeof body === 'string') return { data: body };
  if (body instanceof Uint8Array) return { data: body };
  return { data: JSON.stringify(body), contentType: 'application/json' };
}

export function buildUrl(base: string, query: HttpRequest['query']): URL {
  const url = new URL(base);
  if (query) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.append(k, String(v));
  }
  return url;
}

export function parseBody(raw: string, contentType: string | undefined, expectJson: boolean): unknown {
  if (raw === '') return undefined;
  if (expectJson || (contentType !== undefined && /[/+]json\b/i.test(contentType))) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

export function lowerKeys(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h) for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

export function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
