import { AbortedError } from '../util/abort.ts';

/** A failed Kubernetes API call: HTTP status (undefined for transport errors) and the server's reason. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly status: number | undefined;
  readonly reason: string | undefined;
  constructor(
    message: string,
    status: number | undefined,
    reason: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = status;
    this.reason = reason;
  }
  get forbidden(): boolean {
    return this.status === 403;
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  /** Transport failure, timeout or a 5xx/429: worth retrying. */
  get transient(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

/**
 * Converts whatever the client library threw into a KubeApiError with a short message:
 * `<what>: HTTP 403 Forbidden: nodes "n1" is forbidden: User ... cannot patch ...`.
 * Never includes request headers (the bearer token).
 */
export function toKubeApiError(err: unknown, what: string): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof AbortedError)
    return new KubeApiError(`${what}: ${err.message}`, undefined, 'Aborted', { cause: err });
  const e = err as {
    code?: unknown;
    statusCode?: unknown;
    body?: unknown;
    message?: unknown;
    name?: unknown;
  };
  const status =
    typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined) {
    let body: unknown = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // not a Status object
      }
    }
    const b = (body ?? {}) as { reason?: unknown; message?: unknown };
    const reason = typeof b.reason === 'string' ? b.reason : undefined;
    const message =
      typeof b.message === 'string' ? b.message : typeof body === 'string' ? body.slice(0, 300) : '';
    return new KubeApiError(
      `${what}: HTTP ${status}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`,
      status,
      reason,
      { cause: err },
    );
  }
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new KubeApiError(`${what}: request timed out or was cancelled`, undefined, 'Timeout', {
      cause: err,
    });
  }
  return new KubeApiError(`${what}: Kubernetes API unreachable: ${message}`, undefined, undefined, {
    cause: err,
  });
}
