/**
 * The retry policy: exponential backoff with full jitter (delay = random(0, min(cap, base * 2^n))).
 * Idempotent requests are retried on connection errors, timeouts, 502/503/504 and on 429/413 when
 * the server sends Retry-After (honoured, capped). A non-idempotent request (POST/PATCH by default)
 * is retried only when the connection was never established (refused, DNS, connect timeout), i.e.
 * when the server cannot have seen it. The caller's AbortSignal also stops a backoff wait.
 */
import { AbortedError, sleep } from '../../util/abort.ts';
import type { Logger } from '../../util/logger.ts';
import { OpenStackError, parseFaultMessage, parseRetryAfter } from '../errors.ts';
import { AttemptFailure, NOT_SENT_CODES, RETRYABLE_CODES } from './failure.ts';
import { safePath } from './redact.ts';
import type { HttpRequest, HttpResponse, ResolvedHttpOptions } from './types.ts';
import { type RawResponse, toResponse } from './wire.ts';

export type RetryPolicy = Pick<
  ResolvedHttpOptions,
  'retries' | 'backoffBaseMs' | 'backoffMaxMs' | 'retryAfterMaxMs'
>;

/**
 * Runs `attemptOnce` (numbered from 1) until it returns a status < 400 or the policy gives up;
 * throws OpenStackError for the final failure, AbortedError when the caller aborts.
 */
export async function withRetries<T>(
  req: HttpRequest,
  policy: RetryPolicy,
  logger: Logger,
  attemptOnce: (attempt: number) => Promise<RawResponse>,
): Promise<HttpResponse<T>> {
  const idempotent = req.idempotent ?? !(req.method === 'POST' || req.method === 'PATCH');
  const maxAttempts = policy.retries + 1;
  for (let attempt = 1; ; attempt++) {
    if (req.signal?.aborted) throw new AbortedError(req.signal.reason);
    let outcome: RawResponse | AttemptFailure;
    try {
      outcome = await attemptOnce(attempt);
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
      await backoff(req, policy, logger, attempt, undefined, outcome.code);
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
      await backoff(req, policy, logger, attempt, retryAfterMs, `HTTP ${res.status}`);
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

async function backoff(
  req: HttpRequest,
  policy: RetryPolicy,
  logger: Logger,
  attempt: number,
  retryAfterMs: number | undefined,
  why: string,
): Promise<void> {
  const exp = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (attempt - 1));
  const delay =
    retryAfterMs !== undefined ? Math.min(retryAfterMs, policy.retryAfterMaxMs) : Math.random() * exp;
  logger.debug(
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
