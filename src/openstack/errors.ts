/**
 * Errors of the OpenStack layer. `OpenStackError` is the one type every HTTP failure becomes
 * (HTTP status >= 400, or a transport failure with `status === undefined`); the CSI layer maps it
 * to a gRPC code through its predicates. Messages never contain secrets: URLs are stripped of
 * their query string and bodies are reduced to the service's own fault message.
 */

export interface OpenStackErrorInit {
  status: number | undefined;
  faultMessage: string;
  method: string;
  url: string;
  requestId?: string | undefined;
  retryAfterMs?: number | undefined;
  /** Transport error code (ECONNRESET, UND_ERR_HEADERS_TIMEOUT, ...) when there was no response. */
  code?: string | undefined;
  cause?: unknown;
}

export class OpenStackError extends Error {
  override name = 'OpenStackError';
  /** HTTP status, or undefined when no response was received (connection error, timeout). */
  readonly status: number | undefined;
  /** The service's own words (Cinder fault `message`, Keystone `error.message`, or plain text). */
  readonly faultMessage: string;
  readonly requestId?: string;
  readonly method: string;
  /** Request URL without its query string (which may carry secrets or be long). */
  readonly url: string;
  /** Server's Retry-After, in milliseconds, when it sent one. */
  readonly retryAfterMs?: number;
  /** Transport error code when there was no HTTP response (ECONNRESET, UND_ERR_HEADERS_TIMEOUT...). */
  readonly code?: string;

  constructor(init: OpenStackErrorInit) {
    const url = stripQuery(init.url);
    const where = `${init.method} ${url}`;
    const head = init.status === undefined ? where : `${where} -> HTTP ${init.status}`;
    const rid = init.requestId ? ` (request id ${init.requestId})` : '';
    super(
      `${head}: ${init.faultMessage}${rid}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.status = init.status;
    this.faultMessage = init.faultMessage;
    this.method = init.method;
    this.url = url;
    if (init.requestId !== undefined) this.requestId = init.requestId;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.code !== undefined) this.code = init.code;
  }

  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  /** Quota / limit errors: 413, or Cinder's VolumeLimitExceeded / "quota" wording (some are 400). */
  get overQuota(): boolean {
    if (this.status === 413) return true;
    if (this.status === undefined || this.status === 429) return false;
    return /VolumeLimitExceeded|SnapshotLimitExceeded|GigabytesLimitExceeded|quota/i.test(this.faultMessage);
  }
  get badRequest(): boolean {
    return this.status === 400;
  }
  get unauthorized(): boolean {
    return this.status === 401;
  }
  get forbidden(): boolean {
    return this.status === 403;
  }
  /** Transient: no response (connection trouble, timeout), 429, 502, 503, 504. */
  get retryable(): boolean {
    if (this.status === undefined) return true;
    return this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
  /** True when the request timed out (connect, headers or body timeout). */
  get timedOut(): boolean {
    return this.code !== undefined && /TIMEOUT/i.test(this.code);
  }
}

/** A call above the negotiated microversion, refused locally without contacting the server. */
export class MicroversionError extends Error {
  override name = 'MicroversionError';
}

/** Removes the query string and any userinfo from a URL for messages and logs. */
export function stripQuery(url: string): string {
  const q = url.search(/[?#]/);
  const noQuery = q === -1 ? url : url.slice(0, q);
  return noQuery.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

const MAX_FAULT_CHARS = 1000;

/**
 * Extracts the service's fault message from an error body of any known shape:
 * Cinder/Nova `{"itemNotFound": {"message": "...", "code": 404}}` (any single top-level key),
 * Keystone `{"error": {"message": "...", "code": 401, "title": "Unauthorized"}}`,
 * `{"message": "..."}`, `{"NeutronError": {"message"}}`-style, or plain text / HTML.
 * Falls back to the HTTP reason when the body says nothing.
 */
export function parseFaultMessage(body: unknown, status: number | undefined): string {
  const fromObject = (v: unknown): string | undefined => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const o = v as Record<string, unknown>;
    if (typeof o['message'] === 'string' && o['message'].trim()) return o['message'].trim();
    if (typeof o['faultstring'] === 'string') return o['faultstring'];
    if (typeof o['detail'] === 'string' && o['detail'].trim()) return o['detail'].trim();
    for (const inner of Object.values(o)) {
      if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
        const m = inner as Record<string, unknown>;
        if (typeof m['message'] === 'string' && m['message'].trim()) return m['message'].trim();
      }
    }
    return undefined;
  };
  let text: string | undefined;
  if (typeof body === 'string') {
    const trimmed = body.trim();
    if (trimmed.startsWith('{')) {
      try {
        text = fromObject(JSON.parse(trimmed));
      } catch {
        text = undefined;
      }
    }
    text ??= htmlToText(trimmed);
  } else if (body instanceof Uint8Array) {
    return parseFaultMessage(Buffer.from(body).toString('utf8'), status);
  } else {
    text = fromObject(body);
  }
  if (!text) text = status === undefined ? 'no response' : `HTTP ${status}`;
  return text.length > MAX_FAULT_CHARS ? `${text.slice(0, MAX_FAULT_CHARS)}...` : text;
}

/** webob error pages are HTML: keep their text content, collapsed to one line. */
function htmlToText(s: string): string {
  if (!s.startsWith('<')) return s.replace(/\s+/g, ' ').trim();
  const noTitle = s.replace(/<title>[\s\S]*?<\/title>/i, ' ');
  return noTitle
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Parses Retry-After (seconds or HTTP date) into milliseconds; undefined when absent/invalid. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
