/** The public shapes of the HTTP core: requests, responses, the metrics hook, client options. */
import type { TlsConfig } from '../../config/types.ts';
import type { Logger } from '../../util/logger.ts';

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

/** The numeric options with their defaults applied. */
export type ResolvedHttpOptions = Required<Omit<HttpClientOptions, 'logger' | 'tls' | 'observer'>>;

export const HTTP_DEFAULTS = {
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
