/**
 * Mapping of OpenStack-layer failures to CSI errors (gRPC codes from the CSI spec, messages an
 * operator can act on). Shared by the controller and node services.
 *
 *   OpenStackError 404                  -> NOT_FOUND (or the caller's `notFound` override)
 *   OpenStackError over quota (413/...) -> RESOURCE_EXHAUSTED with Cinder's words
 *   OpenStackError 400 about a status   -> FAILED_PRECONDITION ("Volume status must be available")
 *   OpenStackError other 400            -> INVALID_ARGUMENT
 *   OpenStackError 401 / 403            -> UNAUTHENTICATED / PERMISSION_DENIED (driver credentials)
 *   OpenStackError 409                  -> FAILED_PRECONDITION
 *   OpenStackError 500 "Connector doesn't have required information" -> FAILED_PRECONDITION
 *   OpenStackError retryable / 5xx / no response -> UNAVAILABLE (the sidecars retry)
 *   MicroversionError                   -> FAILED_PRECONDITION naming the missing feature
 *   WaitFailedError (resource went to error) -> by its reason: see `classifyFailureReason`
 *   AbortedError / aborted signal       -> DEADLINE_EXCEEDED (deadline) or CANCELLED
 *   CsiError                            -> unchanged
 *   anything else                       -> unchanged (the gRPC wrapper reports INTERNAL)
 *
 * Messages carry the service's fault message and request id, never request bodies (secrets).
 */
import { status } from '@grpc/grpc-js';
import type { CinderApi } from '../openstack/cinder-api.ts';
import { MicroversionError, OpenStackError } from '../openstack/errors.ts';
import { WaitFailedError } from '../openstack/waiter.ts';
import { AbortedError } from '../util/abort.ts';
import { CsiError } from './errors.ts';

export interface CloudErrorOptions {
  /** The call's signal: when it has fired, the failure is reported as deadline/cancel. */
  signal?: AbortSignal | undefined;
  /** Message (or a whole CsiError) to use for a 404 instead of the default NOT_FOUND. */
  notFound?: string | CsiError;
  /** Extra hint appended to DEADLINE_EXCEEDED messages, e.g. "the retry picks the volume up". */
  deadlineHint?: string;
}

/**
 * Maps `err` to a CsiError; `context` says what was being done ("create volume pvc-1"), and errors
 * that are not cloud errors come back unchanged (so `throw fromCloudError(err, ...)` is always
 * right). Without a context (the gRPC server's last-resort `mapError` hook) the result is a
 * CsiError for the error types listed above and `undefined` for anything else.
 */
export function fromCloudError(err: unknown): CsiError | undefined;
export function fromCloudError(err: unknown, context: string, opts?: CloudErrorOptions): Error;
export function fromCloudError(
  err: unknown,
  context?: string,
  opts: CloudErrorOptions = {},
): Error | undefined {
  if (context === undefined) {
    const mapped = mapCloudError(err, 'OpenStack request failed', opts);
    return mapped instanceof CsiError ? mapped : undefined;
  }
  return mapCloudError(err, context, opts);
}

function mapCloudError(err: unknown, context: string, opts: CloudErrorOptions): Error {
  if (err instanceof CsiError) return err;
  const aborted = err instanceof AbortedError || (opts.signal?.aborted === true && isAbortLike(err));
  if (aborted) {
    const reason = err instanceof AbortedError ? err.reason : opts.signal?.reason;
    const hint = opts.deadlineHint ? `; ${opts.deadlineHint}` : '';
    if (isDeadlineReason(reason) || !opts.signal?.aborted) {
      return new CsiError(status.DEADLINE_EXCEEDED, `${context}: the call's deadline passed${hint}`, {
        cause: err,
      });
    }
    return new CsiError(status.CANCELLED, `${context}: cancelled by the caller${hint}`, { cause: err });
  }
  if (err instanceof MicroversionError) {
    return new CsiError(status.FAILED_PRECONDITION, `${context}: ${err.message}`, { cause: err });
  }
  if (err instanceof WaitFailedError) {
    const reason = err.reason ?? `went to status ${err.status}`;
    return new CsiError(
      classifyFailureReason(reason),
      `${context}: ${err.resource} ${err.id} failed: ${reason}`,
      {
        cause: err,
      },
    );
  }
  if (err instanceof OpenStackError) return fromOpenStackError(err, context, opts);
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * A Cinder 500 that every retry gets again (cinder.exception.InvalidConnectorException): the node's
 * connector misses a field the backend needs. Not Cinder's health, so not UNAVAILABLE.
 */
const NO_CONNECTOR_INFO = /connector doesn't have required information/i;

function fromOpenStackError(err: OpenStackError, context: string, opts: CloudErrorOptions): CsiError {
  const words = `${err.faultMessage}${err.requestId ? ` (request id ${err.requestId})` : ''}`;
  const make = (code: status, text: string) => new CsiError(code, `${context}: ${text}`, { cause: err });
  if (err.notFound) {
    if (opts.notFound instanceof CsiError) return opts.notFound;
    return new CsiError(status.NOT_FOUND, opts.notFound ?? `${context}: not found: ${words}`, { cause: err });
  }
  if (err.overQuota) return make(status.RESOURCE_EXHAUSTED, `quota exceeded: ${words}`);
  if (err.badRequest) {
    return /status|in-use|attached|busy|has snapshots|dependent/i.test(err.faultMessage)
      ? make(status.FAILED_PRECONDITION, words)
      : make(status.INVALID_ARGUMENT, words);
  }
  if (err.unauthorized)
    return make(status.UNAUTHENTICATED, `OpenStack refused the driver's credentials: ${words}`);
  if (err.forbidden) return make(status.PERMISSION_DENIED, `OpenStack denied the operation: ${words}`);
  if (err.conflict) return make(status.FAILED_PRECONDITION, words);
  if (err.status === 500 && NO_CONNECTOR_INFO.test(err.faultMessage)) {
    return make(
      status.FAILED_PRECONDITION,
      `${words}; the node's host connector lacks what the volume's backend needs ` +
        '(for iSCSI: an initiator name in /etc/iscsi/initiatorname.iscsi on the node)',
    );
  }
  if (err.retryable || (err.status !== undefined && err.status >= 500)) {
    return make(status.UNAVAILABLE, `OpenStack is unavailable: ${err.message}`);
  }
  return make(status.FAILED_PRECONDITION, words);
}

/**
 * The gRPC code for the reason a resource went to `error` (usually the Cinder user message, e.g.
 * "schedule allocate volume:Could not find any available weighted backend."):
 * capacity/quota → RESOURCE_EXHAUSTED, a bad request (type, image, size) → INVALID_ARGUMENT,
 * anything else (driver or backend failure) → UNAVAILABLE so that the CO retries.
 */
export function classifyFailureReason(reason: string): status {
  if (
    /quota|limit exceeded|insufficient|not enough|no valid backend|could not find any available|capacity|free space/i.test(
      reason,
    )
  ) {
    return status.RESOURCE_EXHAUSTED;
  }
  if (/invalid|not found|does not exist|unsupported|not supported|too (small|large)|image/i.test(reason)) {
    return status.INVALID_ARGUMENT;
  }
  return status.UNAVAILABLE;
}

function isAbortLike(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError' || err.name === 'AbortedError' || err.name === 'TimeoutError') return true;
  return err instanceof OpenStackError && err.status === undefined;
}

function isDeadlineReason(reason: unknown): boolean {
  return reason instanceof Error && (reason.name === 'DeadlineError' || reason.name === 'TimeoutError');
}

/**
 * Why a Cinder resource failed, in Cinder's words: the newest user message about it (the messages
 * API), or undefined when Cinder left none or the lookup itself failed.
 */
export async function latestUserMessage(
  cinder: CinderApi,
  resourceId: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const messages = await cinder.listMessages({ resource_uuid: resourceId }, { signal }).catch(() => []);
  return messages.sort((a, b) => (a.created_at < b.created_at ? 1 : -1))[0]?.user_message;
}
