import type { Logger } from '../util/logger.ts';

/**
 * What every CSI RPC handler receives besides its request. Built by the gRPC surface
 * (src/grpc/server.ts) for each call.
 */
export interface RpcContext {
  /** Fires on the call's deadline or when the caller cancels; pass it to every wait and request. */
  readonly signal: AbortSignal;
  /** Milliseconds since epoch when the caller's deadline passes, if it set one. */
  readonly deadline: number | undefined;
  /** Unique id of this call, also in every log line of it. */
  readonly requestId: string;
  /** Child logger bound to method and request id. */
  readonly log: Logger;
}

/**
 * A CSI RPC implementation: request as decoded by proto-loader (snake_case fields, int64 as decimal
 * strings, enums as their names, `defaults: true`, virtual oneof fields), response in the same form
 * (int64 may be given as string, number or bigint-converted string). Throw `CsiError` for expected
 * failures; anything else is reported as INTERNAL.
 */
export type Rpc<Req, Res> = (req: Req, ctx: RpcContext) => Promise<Res>;

/** int64 from the wire (decimal string) to bigint, rejecting garbage. */
export function int64(value: string | number | null | undefined): bigint {
  if (value === null || value === undefined || value === '') return 0n;
  return BigInt(value);
}

/** bigint to the wire form of int64. */
export function toInt64(value: bigint | number): string {
  return typeof value === 'bigint' ? value.toString() : BigInt(Math.trunc(value)).toString();
}
