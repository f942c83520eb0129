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

/** Bound of a create request the caller may no longer wait for (the HTTP client's own are shorter). */
const CREATE_BOUND_MS = 120_000;

/**
 * The signal of a request that creates something in Cinder (POST /volumes, /snapshots, /backups,
 * /attachments, /groups, /group_snapshots): deliberately not the caller's. A caller that gives up
 * (deadline, cancel) must not abandon a POST that Cinder may still carry out: the handler would
 * return, free its name lock, and the retry, not finding the object yet, would create a second
 * one (seen in the crash suite on the loaded lab: CreateVolume and its retry 5 s apart, two
 * volumes of one name). So the handler waits for Cinder's answer (retries meanwhile get ABORTED
 * "in progress"), bounded by the HTTP client's timeouts; what follows uses the caller's signal.
 */
export function createSignal(): AbortSignal {
  return AbortSignal.timeout(CREATE_BOUND_MS);
}
