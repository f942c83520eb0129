/**
 * The HTTP core every OpenStack client goes through (undici): the public face of ./http/.
 * client.ts (HttpClient), types.ts (request/response/options), retry.ts (backoff, Retry-After,
 * idempotency), redirect.ts, exchange.ts (one undici exchange and its log lines), dispatcher.ts
 * (Agent and TLS), failure.ts (transport error mapping), redact.ts (log redaction), wire.ts
 * (URL, body and header encoding).
 */
export { HttpClient } from './http/client.ts';
export { redactHeaders, safePath } from './http/redact.ts';
export type { HttpClientOptions, HttpMethod, HttpObserver, HttpRequest, HttpResponse } from './http/types.ts';
