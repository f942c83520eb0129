/**
 * Maps what the host and OpenStack layers throw to CsiError codes with messages an operator can
 * act on. Messages are built from fields already free of secrets (CommandError masks them); no
 * stack traces. Unknown errors are rethrown unchanged and become INTERNAL in the gRPC wrapper.
 */
import { status } from '@grpc/grpc-js';
import { ConnectError, UnsupportedConnectionError } from '../../host/connector.ts';
import { CommandError } from '../../host/exec.ts';
import { FilesystemCorruptError, FilesystemMismatchError } from '../../host/filesystem.ts';
import { MountBusyError } from '../../host/mount.ts';
import { MicroversionError, OpenStackError } from '../../openstack/errors.ts';
import { AbortedError } from '../../util/abort.ts';
import { CsiError } from '../errors.ts';

function networkError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|UND_ERR)/.test(code);
}

/**
 * Converts `e` into a CsiError; `what` names the operation for the message ("staging volume X").
 * Returns the original error when it is not one we know how to classify.
 */
export function toCsiError(e: unknown, what: string): unknown {
  if (e instanceof CsiError) return e;
  if (e instanceof AbortedError) {
    return new CsiError(
      status.DEADLINE_EXCEEDED,
      `${what}: interrupted by the caller's deadline or cancellation`,
    );
  }
  if (
    e instanceof FilesystemMismatchError ||
    e instanceof FilesystemCorruptError ||
    e instanceof MountBusyError
  ) {
    return new CsiError(status.FAILED_PRECONDITION, `${what}: ${e.message}`);
  }
  if (e instanceof UnsupportedConnectionError) {
    return new CsiError(status.FAILED_PRECONDITION, `${what}: ${e.message}`);
  }
  if (e instanceof ConnectError) {
    return new CsiError(
      e.transient ? status.UNAVAILABLE : status.FAILED_PRECONDITION,
      `${what}: ${e.message}`,
    );
  }
  if (e instanceof CommandError) {
    if (e.notFound) {
      return new CsiError(status.FAILED_PRECONDITION, `${what}: ${e.cmd} is not installed on the node`);
    }
    if (e.timedOut || e.aborted) {
      return new CsiError(status.DEADLINE_EXCEEDED, `${what}: ${e.message}`);
    }
    // A host tool that ran and failed is the node's state, not a driver bug: the message says which
    // command and why, so the operator can act (INTERNAL stays reserved for real bugs).
    return new CsiError(status.FAILED_PRECONDITION, `${what}: ${e.message}`);
  }
  if (e instanceof OpenStackError) {
    const msg = `${what}: Cinder: ${e.message}`;
    if (e.notFound) return new CsiError(status.NOT_FOUND, msg);
    if (e.unauthorized || e.forbidden) {
      return new CsiError(
        status.FAILED_PRECONDITION,
        `${msg} (check the node plugin's OpenStack credentials)`,
      );
    }
    if (e.timedOut) return new CsiError(status.DEADLINE_EXCEEDED, msg);
    if (e.retryable || (e.status !== undefined && e.status >= 500))
      return new CsiError(status.UNAVAILABLE, msg);
    return new CsiError(status.FAILED_PRECONDITION, msg);
  }
  if (e instanceof MicroversionError) {
    return new CsiError(status.FAILED_PRECONDITION, `${what}: ${e.message}`);
  }
  if (networkError(e)) {
    return new CsiError(status.UNAVAILABLE, `${what}: ${(e as Error).message}`);
  }
  return e;
}
