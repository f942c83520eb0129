/** Transport failures of one attempt: classification into a code and a readable message. */

/** Transport errors after which the server cannot have received the request. */
export const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Transport errors worth another attempt of an idempotent request. */
export const RETRYABLE_CODES = new Set([
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

/** Failure of one attempt, before the retry decision. */
export class AttemptFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.code = code;
  }
}

export interface TransportContext {
  attemptTimedOut: boolean;
  timeoutMs: number | undefined;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  gotHeaders: boolean;
}

export function classifyTransportError(err: unknown, ctx: TransportContext): AttemptFailure {
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
