import { status } from '@grpc/grpc-js';

export { status as Code } from '@grpc/grpc-js';

/**
 * An error meant for the CSI caller: a gRPC status code from the CSI spec and a message an
 * operator can act on. Anything else that escapes an RPC handler is a bug and becomes INTERNAL.
 */
export class CsiError extends Error {
  override name = 'CsiError';
  readonly code: status;
  constructor(code: status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export const invalidArgument = (msg: string) => new CsiError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new CsiError(status.NOT_FOUND, msg);
export const alreadyExists = (msg: string) => new CsiError(status.ALREADY_EXISTS, msg);
export const failedPrecondition = (msg: string) => new CsiError(status.FAILED_PRECONDITION, msg);
export const resourceExhausted = (msg: string) => new CsiError(status.RESOURCE_EXHAUSTED, msg);
export const aborted = (msg: string) => new CsiError(status.ABORTED, msg);
export const outOfRange = (msg: string) => new CsiError(status.OUT_OF_RANGE, msg);
export const unavailable = (msg: string) => new CsiError(status.UNAVAILABLE, msg);
export const deadlineExceeded = (msg: string) => new CsiError(status.DEADLINE_EXCEEDED, msg);
export const unimplemented = (msg: string) => new CsiError(status.UNIMPLEMENTED, msg);

/** How much of any caller input a message may quote, and how long a message may be at all. */
export const QUOTE_CHARS = 64;
export const MESSAGE_MAX_BYTES = 1024;

/**
 * A caller's value for an error message: at most `max` characters of it, JSON-quoted (control
 * characters, NUL and quotes escaped), with "…" and the full length when cut. Use it for every
 * input a message names, so no message echoes a huge or unprintable input.
 */
export function quote(value: unknown, max = QUOTE_CHARS): string {
  const s = typeof value === 'string' ? value : String(value);
  const head = Array.from(s.slice(0, max * 2))
    .slice(0, max)
    .join('');
  if (head.length === s.length) return JSON.stringify(s);
  return `${JSON.stringify(head)}… (${Buffer.byteLength(s)} bytes)`;
}

/**
 * The message as sent to the caller and logged: at most MESSAGE_MAX_BYTES of UTF-8 (cut on a
 * character boundary, "…" appended), control characters other than tab and newline replaced.
 * The gRPC wrapper applies it to every error, so no code path can send a huge grpc-message
 * (HTTP/2 refuses such a header and tears down the whole connection).
 */
export function capMessage(message: string, maxBytes = MESSAGE_MAX_BYTES): string {
  let s = message.length > maxBytes ? message.slice(0, maxBytes) : message;
  s = s.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '\uFFFD');
  if (Buffer.byteLength(s) <= maxBytes && s.length === message.length) return s;
  const budget = maxBytes - Buffer.byteLength('…');
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > budget) break;
    out += ch;
    bytes += n;
  }
  return `${out}…`;
}
