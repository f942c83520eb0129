/**
 * One HTTP exchange over undici: optional whole-attempt timeout, bounded body read, one debug log
 * line (operation, method, path, status, duration, request ids, attempt); headers and bodies only
 * at trace level and only redacted. Transport errors become an AttemptFailure.
 */
import type { Dispatcher } from 'undici';
import { AbortedError, anySignal } from '../../util/abort.ts';
import type { Logger } from '../../util/logger.ts';
import { AttemptFailure, classifyTransportError } from './failure.ts';
import { redactBody, redactHeaders, safePath } from './redact.ts';
import { REDIRECT_STATUSES } from './redirect.ts';
import type { HttpMethod, HttpRequest, ResolvedHttpOptions } from './types.ts';
import { flattenHeaders, parseBody, type RawResponse, readLimited } from './wire.ts';

export interface ExchangeContext {
  logger: Logger;
  dispatcher: () => Promise<Dispatcher>;
  opts: Pick<
    ResolvedHttpOptions,
    'connectTimeoutMs' | 'headersTimeoutMs' | 'bodyTimeoutMs' | 'maxResponseBytes'
  >;
}

/** One HTTP exchange: returns the response (any status) or throws AttemptFailure / AbortedError. */
export async function exchange(
  ctx: ExchangeContext,
  req: HttpRequest,
  url: URL,
  method: HttpMethod,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  operation: string,
  attempt: number,
): Promise<RawResponse> {
  const logger = ctx.logger;
  const started = performance.now();
  const attemptTimeout = req.timeoutMs !== undefined ? AbortSignal.timeout(req.timeoutMs) : undefined;
  const signal = anySignal(req.signal, attemptTimeout);
  const logBase = { operation, service: req.service, method, path: safePath(url.toString()), attempt };
  if (logger.isLevelEnabled('trace')) {
    logger.trace({ ...logBase, headers: redactHeaders(headers), body: redactBody(body) }, 'http request');
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
    const res = await (await ctx.dispatcher()).request(options);
    status = res.statusCode;
    const resHeaders = flattenHeaders(res.headers);
    let raw: string;
    if (method === 'HEAD' || REDIRECT_STATUSES.has(status) || status === 204) {
      await res.body.dump();
      raw = '';
    } else {
      raw = await readLimited(res.body, ctx.opts.maxResponseBytes);
    }
    const requestId = resHeaders['x-openstack-request-id'] ?? resHeaders['x-compute-request-id'];
    const parsed = parseBody(raw, resHeaders['content-type'], req.expectJson === true);
    logger.debug(
      {
        ...logBase,
        status,
        durationMs: Math.round(performance.now() - started),
        requestId,
        computeRequestId: resHeaders['x-compute-request-id'],
      },
      'http',
    );
    if (logger.isLevelEnabled('trace')) {
      logger.trace(
        { ...logBase, status, headers: redactHeaders(resHeaders), body: redactBody(parsed) },
        'http response',
      );
    }
    return { status, headers: resHeaders, body: parsed, requestId, url: url.toString() };
  } catch (err) {
    const durationMs = Math.round(performance.now() - started);
    if (req.signal?.aborted) {
      logger.debug({ ...logBase, status: 'aborted', durationMs }, 'http');
      throw new AbortedError(req.signal.reason);
    }
    if (err instanceof AttemptFailure) {
      logger.debug({ ...logBase, status: 'error', code: err.code, durationMs }, 'http');
      throw err;
    }
    const failure = classifyTransportError(err, {
      attemptTimedOut: attemptTimeout?.aborted === true,
      timeoutMs: req.timeoutMs,
      connectTimeoutMs: ctx.opts.connectTimeoutMs,
      headersTimeoutMs: ctx.opts.headersTimeoutMs,
      bodyTimeoutMs: ctx.opts.bodyTimeoutMs,
      gotHeaders: status !== 0,
    });
    logger.debug({ ...logBase, status: 'error', code: failure.code, durationMs }, 'http');
    throw failure;
  }
}
