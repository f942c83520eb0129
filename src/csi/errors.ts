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
