/**
 * The HTTP core every OpenStack client goes through (undici).
 *
 * - One undici `Agent` per client; it keeps one keep-alive `Pool` per origin (scheme+host+port),
 *   so Keystone and Cinder each get their own pooled connections.
 * - Timeouts: connect (`connectTimeoutMs`), time to response headers (`headersTimeoutMs`), idle
 *   time between body chunks (`bodyTimeoutMs`), and optionally a whole-attempt `timeoutMs` per call.
 * - TLS: CA file, client certificate/key, and an explicit `insecure` switch (logged as a warning).
 * - Redirects (301/302/303/307/308) are followed up to `maxRedirects`, absolute or relative
 *   `Location`; https -> http downgrades are refused; auth headers are dropped when the redirect
 *   leaves the origin. 303 turns the request into a GET; the others keep method and body.
 * - Retries with exponential backoff and full jitter (delay = random(0, min(cap, base * 2^n))):
 *   idempotent requests on connection errors, timeouts, 502/503/504 and on 429/413 when the server
 *   sends Retry-After (honoured, capped). A non-idempotent request (POST/PATCH by default) is
 *   retried only when the connection was never established (refused, DNS, connect timeout), i.e.
 *   when the server cannot have seen it.
 * - The caller's AbortSignal stops the in-flight request and any backoff wait (AbortedError).
 * - One debug log line per attempt (operation, method, path, status, duration, request ids,
 *   attempt); headers and bodies only at trace level and only redacted.
 * - Responses with status >= 400 (after retries) throw `OpenStackError` with the parsed fault.
 */
import { readFileSync } from 'node:fs';
import type { Agent, Dispatcher } from 'undici';
import type { TlsConfig } from '../config/types.ts';
import { AbortedError, anySignal, sleep } from '../util/abort.ts';
import { isSecretKey, type Logger, REDACTED, redactDeep } from '../util/logger.ts';
import { OpenStackError, parseFaultMessage, parseRetryAfter, stripQuery } from './errors.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON-serialised unless it is a string or bytes. */
  body?: unknown;
  /** Default: true for GET/HEAD/PUT/DELETE, false for POST/PATCH. */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** Whole-attempt timeout (connect + headers + body) for this call, on top of the client's timeouts. */
  timeoutMs?: number;
  /** e.g. 'cinder.volume.get', for logs and metrics. */
  operation?: string;
  /** Service type for logs and metrics ('block-storage', 'identity', 'image'); set by the session. */
  service?: string;
  /** Parse the body as JSON even without a JSON content type. */
  expectJson?: boolean;
}

export interface HttpResponse<T = unknown> {
  status: number;
  /** Lower-case header names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: T;
  requestId: string | undefined;
  /** Final URL (after redirects). */
  url: string;
}

/** Metrics hook, called once per logical request (after retries and redirects). */
export interface HttpObserver {
  onResponse?(info: {
    service?: string;
    operation: string;
    method: string;
    status: number | 'error';
    durationMs: number;
  }): void;
}

export interface HttpClientOptions {
  logger: Logger;
  tls?: TlsConfig;
  /** TCP + TLS connect timeout (default 10 s). */
  connectTimeoutMs?: number;
  /** Time from sending the request to the response headers (default 60 s). */
  headersTimeoutMs?: number;
  /** Maximum idle time while receiving the body (default 60 s). */
  bodyTimeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Default 5. */
  maxRedirects?: number;
  observer?: HttpObserver;
  /** Backoff base (default 250 ms) and cap (default 5 s) for the full-jitter exponential backoff. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Largest Retry-After honoured (default 30 s); longer values are capped to this. */
  retryAfterMaxMs?: number;
  /** Connections per origin (default 16). */
  connectionsPerOrigin?: number;
  /** Largest response body accepted (default 64 MiB); larger ones fail the request. */
  maxResponseBytes?: number;
}

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  retries: 3,
  maxRedirects: 5,
  backoffBaseMs: 250,
  backoffMaxMs: 5_000,
  retryAfterMaxMs: 30_000,
  connectionsPerOrigin: 16,
  maxResponseBytes: 64 * 1024 * 1024,
} as const;

/** Transport errors after which the server cannot have received the request. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Transport errors worth another attempt of an idempotent request. */
const RETRYABLE_CODES = new Set([
  ...NOT_SENT_CODES,
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'ATTEMPT_TIMEOUT',
]);

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers never forwarded to another origin on redirect. */
const CROSS_ORIGIN_DROP = new Set(['x-auth-token', 'x-service-token', 'authorization', 'cookie']);

/** Failure of one attempt, before the retry decision. */
class AttemptFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.code = code;
  }
}

export class HttpClient {
  readonly #logger: Logger;
  /** Created on the first request: undici is a large module, and a node plugin may never call out. */
  #agent: Agent | undefined;
  readonly #agentOptions: Agent.Options;
  readonly #opts: Required<Omit<HttpClientOptions, 'logger' | 'tls' | 'observer'>>;
  readonly #observer: HttpObserver | undefined;

  constructor(opts: HttpClientOptions) {
    this.#logger = opts.logger;
    this.#observer = opts.observer;
    this.#opts = {
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      headersTimeoutMs: opts.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
      bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
      retries: opts.retries ?? DEFAULTS.retries,
      maxRedirects: opts.maxRedirects ?? DEFAULTS.maxRedirects,
      backoffBaseMs: opts.backoffBaseMs ?? DEFAULTS.backoffBaseMs,
      backoffMaxMs: opts.backoffMaxMs ?? DEFAULTS.backoffMaxMs,
      retryAfterMaxMs: opts.retryAfterMaxMs ?? DEFAULTS.retryAfterMaxMs,
      connectionsPerOrigin: opts.connectionsPerOrigin ?? DEFAULTS.connectionsPerOrigin,
      maxResponseBytes: opts.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
    };
    this.#agentOptions = {
      connections: this.#opts.connectionsPerOrigin,
      headersTimeout: this.#opts.headersTimeoutMs,
      bodyTimeout: this.#opts.bodyTimeoutMs,
      connect: { timeout: this.#opts.connectTimeoutMs, ...tlsConnectOptions(opts.tls, this.#logger) },
    };
  }

  async #dispatcher(): Promise<Agent> {
    if (!this.#agent) {
      // undici is CommonJS: its exports object is the default export, both under Node and in the
      // image's bundle (where named exports of a lazily imported CommonJS chunk do not exist).
      const undici = (await import('undici')).default;
      this.#agent ??= new undici.Agent(this.#agentOptions);
    }
    return this.#agent;
  }

  /** Sends a request (retries, redirects); throws OpenStackError for status >= 400. */
  async request<T>(req: HttpRequest): Promise<HttpResponse<T>> {
    const started = performance.now();
    const operation = req.operation ?? `${req.method.toLowerCase()}`;
    try {
      const res = await this.#withRetries<T>(req, operation);
      this.#observe(req, operation, res.status, started);
      return res;
    } catch (err) {
      this.#observe(
        req,
        operation,
        err instanceof OpenStackError && err.status ? err.status : 'error',
        started,
      );
      throw err;
    }
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    await this.#agent?.close();
  }

  #observe(req: HttpRequest, operation: string, status: number | 'error', started: number): void {
    if (!this.#observer?.onResponse) return;
    try {
      const info: Parameters<NonNullable<HttpObserver['onResponse']>>[0] = {
        operation,
        method: req.method,
        status,
        durationMs: performance.now() - started,
      };
      if (req.service !== undefined) info.service = req.service;
      this.#observer.onResponse(info);
    } catch (err) {
      this.#logger.warn({ err }, 'http observer failed');
    }
  }

  async #withRetries<T>(req: HttpRequest, operation: string): Promise<HttpResponse<T>> {
    const idempotent = req.idempotent ?? !(req.method === 'POST' || req.method === 'PATCH');
    const url = buildUrl(req.url, req.query);
    const encoded = encodeBody(req.body);
    const maxAttempts = this.#opts.retries + 1;
    for (let attempt = 1; ; attempt++) {
      if (req.signal?.aborted) throw new AbortedError(req.signal.reason);
      let outcome: RawResponse | AttemptFailure;
      try {
        outcome = await this.#followRedirects(req, url, encoded, operation, attempt);
      } catch (err) {
        if (err instanceof AttemptFailure) outcome = err;
        else throw err;
      }
      const last = attempt >= maxAttempts;
      if (outcome instanceof AttemptFailure) {
        const retry =
          !last && RETRYABLE_CODES.has(outcome.code) && (idempotent || NOT_SENT_CODES.has(outcome.code));
        if (!retry) {
          const note =
            !idempotent && !NOT_SENT_CODES.has(outcome.code) && RETRYABLE_CODES.has(outcome.code)
              ? ' (not retried: the request may have reached the server)'
              : attempt > 1
                ? ` (after ${attempt} attempts)`
                : '';
          throw new OpenStackError({
            status: undefined,
            faultMessage: outcome.message + note,
            method: req.method,
            url: req.url,
            code: outcome.code,
            cause: outcome.cause,
          });
        }
        await this.#backoff(req, attempt, undefined, outcome.code);
        continue;
      }
      const res = outcome;
      if (res.status < 400) return toResponse<T>(res);
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      const retryableStatus =
        res.status === 502 ||
        res.status === 503 ||
        res.status === 504 ||
        ((res.status === 429 || res.status === 413) && retryAfterMs !== undefined);
      if (!last && idempotent && retryableStatus) {
        await this.#backoff(req, attempt, retryAfterMs, `HTTP ${res.status}`);
        continue;
      }
      throw new OpenStackError({
        status: res.status,
        faultMessage: parseFaultMessage(res.body, res.status),
        method: req.method,
        url: res.url,
        requestId: res.requestId,
        retryAfterMs,
      });
    }
  }

  async #backoff(req: HttpRequest, attempt: number, retryAfterMs: number | undefined, why: string) {
    const exp = Math.min(this.#opts.backoffMaxMs, this.#opts.backoffBaseMs * 2 ** (attempt - 1));
    const delay =
      retryAfterMs !== undefined ? Math.min(retryAfterMs, this.#opts.retryAfterMaxMs) : Math.random() * exp;
    this.#logger.debug(
      {
        operation: req.operation,
        method: req.method,
        path: safePath(req.url),
        attempt,
        why,
        delayMs: Math.round(delay),
      },
      'http retry',
    );
    await sleep(delay, req.signal);
  }

  async #followRedirects(
    req: HttpRequest,
    firstUrl: URL,
    encoded: EncodedBody,
    operation: string,
    attempt: number,
  ): Promise<RawResponse> {
    let url = firstUrl;
    let method: HttpMethod = req.method;
    let body = encoded;
    const headers: Record<string, string> = { accept: 'application/json', ...lowerKeys(req.headers) };
    if (body.contentType && headers['content-type'] === undefined) headers['content-type'] = body.contentType;
    for (let redirects = 0; ; redirects++) {
      const res = await this.#once(req, url, method, headers, body.data, operation, attempt);
      const location = res.headers['location'];
      if (!REDIRECT_STATUSES.has(res.status) || !location) return res;
      if (redirects >= this.#opts.maxRedirects) {
        throw new OpenStackError({
          status: res.status,
          faultMessage: `too many redirects (more than ${this.#opts.maxRedirects})`,
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

  /** One HTTP exchange: returns the response (any status) or throws AttemptFailure / AbortedError. */
  async #once(
    req: HttpRequest,
    url: URL,
    method: HttpMethod,
    headers: Record<string, string>,
    body: string | Uint8Array | undefined,
    operation: string,
    attempt: number,
  ): Promise<RawResponse> {
    const started = performance.now();
    const attemptTimeout = req.timeoutMs !== undefined ? AbortSignal.timeout(req.timeoutMs) : undefined;
    const signal = anySignal(req.signal, attemptTimeout);
    const logBase = { operation, service: req.service, method, path: safePath(url.toString()), attempt };
    if (this.#logger.isLevelEnabled('trace')) {
      this.#logger.trace(
        { ...logBase, headers: redactHeaders(headers), body: redactBody(body) },
        'http request',
      );
    }
    let status = 0;
    try {
      const options: Dispatcher.RequestOptions = {
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body: body ?? null,
      };
      if (signal) options.signal = signal;
      const res = await (await this.#dispatcher()).request(options);
      status = res.statusCode;
      const resHeaders = flattenHeaders(res.headers);
      let raw: string;
      if (method === 'HEAD' || REDIRECT_STATUSES.has(status) || status === 204) {
        await res.body.dump();
        raw = '';
      } else {
        raw = await readLimited(res.body, this.#opts.maxResponseBytes);
      }
      const requestId = resHeaders['x-openstack-request-id'] ?? resHeaders['x-compute-request-id'];
      const parsed = parseBody(raw, resHeaders['content-type'], req.expectJson === true);
      this.#logger.debug(
        {
          ...logBase,
          status,
          durationMs: Math.round(performance.now() - started),
          requestId,
          computeRequestId: resHeaders['x-compute-request-id'],
        },
        'http',
      );
      if (this.#logger.isLevelEnabled('trace')) {
        this.#logger.trace(
          { ...logBase, status, headers: redactHeaders(resHeaders), body: redactBody(parsed) },
          'http response',
        );
      }
      return { status, headers: resHeaders, body: parsed, requestId, url: url.toString() };
    } catch (err) {
      const durationMs = Math.round(performance.now() - started);
      if (req.signal?.aborted) {
        this.#logger.debug({ ...logBase, status: 'aborted', durationMs }, 'http');
        throw new AbortedError(req.signal.reason);
      }
      if (err instanceof AttemptFailure) {
        this.#logger.debug({ ...logBase, status: 'error', code: err.code, durationMs }, 'http');
        throw err;
      }
      const failure = classifyTransportError(err, {
        attemptTimedOut: attemptTimeout?.aborted === true,
        timeoutMs: req.timeoutMs,
        connectTimeoutMs: this.#opts.connectTimeoutMs,
        headersTimeoutMs: this.#opts.headersTimeoutMs,
        bodyTimeoutMs: this.#opts.bodyTimeoutMs,
        gotHeaders: status !== 0,
      });
      this.#logger.debug({ ...logBase, status: 'error', code: failure.code, durationMs }, 'http');
      throw failure;
    }
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  requestId: string | undefined;
  url: string;
}

interface EncodedBody {
  data: string | Uint8Array | undefined;
  contentType?: string;
}

function toResponse<T>(res: RawResponse): HttpResponse<T> {
  return {
    status: res.status,
    headers: res.headers,
    body: res.body as T,
    requestId: res.requestId,
    url: res.url,
  };
}

/** Reads a response body as UTF-8, failing (and dropping the connection) above `limit` bytes. */
async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
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

function encodeBody(body: unknown): EncodedBody {
  if (body === undefined) return { data: undefined };
  if (typeof body === 'string') return { data: body };
  if (body instanceof Uint8Array) return { data: body };
  return { data: JSON.stringify(body), contentType: 'application/json' };
}

function buildUrl(base: string, query: HttpRequest['query']): URL {
  const url = new URL(base);
  if (query) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.append(k, String(v));
  }
  return url;
}

function parseBody(raw: string, contentType: string | undefined, expectJson: boolean): unknown {
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

function lowerKeys(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h) for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** Path plus query with secret-named parameters redacted, for logs. */
export function safePath(url: string): string {
  try {
    const u = new URL(url);
    for (const k of [...u.searchParams.keys()]) if (isSecretKey(k)) u.searchParams.set(k, REDACTED);
    return u.pathname + u.search;
  } catch {
    return stripQuery(url);
  }
}

export function redactHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = isSecretKey(k) ? REDACTED : v;
  return out;
}

const MAX_LOGGED_BODY = 4096;

function redactBody(body: unknown): unknown {
  if (body === undefined) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    try {
      return redactDeep(JSON.parse(text));
    } catch {
      // Unparseable text cannot be redacted field by field: log only its size.
      return `<${text.length} bytes>`;
    }
  }
  const json = JSON.stringify(redactDeep(body));
  return json.length > MAX_LOGGED_BODY ? `${json.slice(0, MAX_LOGGED_BODY)}...` : JSON.parse(json);
}

function tlsConnectOptions(tls: TlsConfig | undefined, logger: Logger): Record<string, unknown> {
  if (!tls) return {};
  const out: Record<string, unknown> = {};
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  if (tls.caFile) out['ca'] = read(tls.caFile, 'CA file');
  if (tls.certFile) out['cert'] = read(tls.certFile, 'client certificate');
  if (tls.keyFile) out['key'] = read(tls.keyFile, 'client key');
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new Error('TLS client certificate and key must be given together');
  }
  if (tls.insecure) {
    out['rejectUnauthorized'] = false;
    logger.warn('TLS certificate verification is DISABLED (insecure): only for tests and labs');
  }
  return out;
}

interface TransportContext {
  attemptTimedOut: boolean;
  timeoutMs: number | undefined;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  gotHeaders: boolean;
}

function classifyTransportError(err: unknown, ctx: TransportContext): AttemptFailure {
  if (ctx.attemptTimedOut) {
    return new AttemptFailure('ATTEMPT_TIMEOUT', `request timed out after ${ctx.timeoutMs} ms`, err);
  }
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  const code =
    typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : 'UNKNOWN';
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new AttemptFailure(code, `connect timed out after ${ctx.connectTimeoutMs} ms`, err);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new AttemptFailure(code, `no response headers within ${ctx.headersTimeoutMs} ms`, err);
    case 'UND_ERR_BODY_TIMEOUT':
      return new AttemptFailure(code, `response body stalled for ${ctx.bodyTimeoutMs} ms`, err);
    case 'ECONNREFUSED':
      return new AttemptFailure(code, 'connection refused', err);
    case 'ECONNRESET':
      return new AttemptFailure(code, 'connection reset by peer', err);
    case 'UND_ERR_SOCKET':
      return new AttemptFailure(code, `connection closed by the server (${msg})`, err);
    default:
      return new AttemptFailure(code, `${msg} (${code})`, err);
  }
}
