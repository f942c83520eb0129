/**
 * The HTTP core every OpenStack client goes through (undici).
 *
 * - One undici `Agent` per client; it keeps one keep-alive `Pool` per origin (scheme+host+port),
 *   so Keystone and Cinder each get their own pooled connections (dispatcher.ts).
 * - Timeouts: connect (`connectTimeoutMs`), time to response headers (`headersTimeoutMs`), idle
 *   time between body chunks (`bodyTimeoutMs`), and optionally a whole-attempt `timeoutMs` per call.
 * - TLS: CA file, client certificate/key, and an explicit `insecure` switch (logged as a warning).
 * - Redirects are followed up to `maxRedirects` (redirect.ts).
 * - Retries with exponential backoff and full jitter, idempotency-aware (retry.ts).
 * - The caller's AbortSignal stops the in-flight request and any backoff wait (AbortedError).
 * - One debug log line per attempt; headers and bodies only at trace level and only redacted
 *   (exchange.ts, redact.ts).
 * - Responses with status >= 400 (after retries) throw `OpenStackError` with the parsed fault.
 */
import type { Logger } from '../../util/logger.ts';
import { OpenStackError } from '../errors.ts';
import { agentOptions, LazyAgent } from './dispatcher.ts';
import { type ExchangeContext, exchange } from './exchange.ts';
import { followRedirects } from './redirect.ts';
import { withRetries } from './retry.ts';
import {
  HTTP_DEFAULTS,
  type HttpClientOptions,
  type HttpObserver,
  type HttpRequest,
  type HttpResponse,
  type ResolvedHttpOptions,
} from './types.ts';
import { buildUrl, encodeBody } from './wire.ts';

export class HttpClient {
  readonly #logger: Logger;
  readonly #agent: LazyAgent;
  readonly #opts: ResolvedHttpOptions;
  readonly #observer: HttpObserver | undefined;
  readonly #exchange: ExchangeContext;

  constructor(opts: HttpClientOptions) {
    this.#logger = opts.logger;
    this.#observer = opts.observer;
    this.#opts = {
      connectTimeoutMs: opts.connectTimeoutMs ?? HTTP_DEFAULTS.connectTimeoutMs,
      headersTimeoutMs: opts.headersTimeoutMs ?? HTTP_DEFAULTS.headersTimeoutMs,
      bodyTimeoutMs: opts.bodyTimeoutMs ?? HTTP_DEFAULTS.bodyTimeoutMs,
      retries: opts.retries ?? HTTP_DEFAULTS.retries,
      maxRedirects: opts.maxRedirects ?? HTTP_DEFAULTS.maxRedirects,
      backoffBaseMs: opts.backoffBaseMs ?? HTTP_DEFAULTS.backoffBaseMs,
      backoffMaxMs: opts.backoffMaxMs ?? HTTP_DEFAULTS.backoffMaxMs,
      retryAfterMaxMs: opts.retryAfterMaxMs ?? HTTP_DEFAULTS.retryAfterMaxMs,
      connectionsPerOrigin: opts.connectionsPerOrigin ?? HTTP_DEFAULTS.connectionsPerOrigin,
      maxResponseBytes: opts.maxResponseBytes ?? HTTP_DEFAULTS.maxResponseBytes,
    };
    const agent = new LazyAgent(agentOptions(this.#opts, opts.tls, this.#logger));
    this.#agent = agent;
    this.#exchange = { logger: this.#logger, dispatcher: () => agent.get(), opts: this.#opts };
  }

  /** Sends a request (retries, redirects); throws OpenStackError for status >= 400. */
  async request<T>(req: HttpRequest): Promise<HttpResponse<T>> {
    const started = performance.now();
    const operation = req.operation ?? `${req.method.toLowerCase()}`;
    try {
      const res = await this.#send<T>(req, operation);
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
    await this.#agent.close();
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

  #send<T>(req: HttpRequest, operation: string): Promise<HttpResponse<T>> {
    const url = buildUrl(req.url, req.query);
    const encoded = encodeBody(req.body);
    return withRetries<T>(req, this.#opts, this.#logger, (attempt) =>
      followRedirects(req, url, encoded, this.#opts.maxRedirects, (u, method, headers, body) =>
        exchange(this.#exchange, req, u, method, headers, body, operation, attempt),
      ),
    );
  }
}
