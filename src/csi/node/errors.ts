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
import { StateFileError } from './state.ts';

/** Longest path quoted whole in a message; longer ones are cut to a prefix and their length. */
const QUOTE_MAX = 160;
const QUOTE_PREFIX = 128;

/** `p` for a message: whole when short, else a prefix and the byte length (never the whole input). */
export function quotePath(p: string | undefined): string {
  if (p === undefined) return '(no path)';
  if (p.length <= QUOTE_MAX) return p;
  return `${p.slice(0, QUOTE_PREFIX)}...(${Buffer.byteLength(p)} bytes)`;
}

/** The gRPC code and words for each errno a path operation can produce. */
const ERRNO: Record<string, [status, string]> = {
  ENOENT: [status.FAILED_PRECONDITION, 'does not exist'],
  ENOTDIR: [status.FAILED_PRECONDITION, 'a component of the path is not a directory'],
  ENAMETOOLONG: [
    status.INVALID_ARGUMENT,
    'name too long (at most 255 bytes per component and 4095 for the path)',
  ],
  ELOOP: [status.FAILED_PRECONDITION, 'too many levels of symbolic links'],
  EACCES: [status.FAILED_PRECONDITION, 'permission denied'],
  EPERM: [status.FAILED_PRECONDITION, 'operation not permitted'],
  EINVAL: [status.INVALID_ARGUMENT, 'invalid argument'],
  EROFS: [status.FAILED_PRECONDITION, 'read-only filesystem'],
  EBUSY: [status.FAILED_PRECONDITION, 'device or resource busy'],
  EIO: [status.UNAVAILABLE, 'I/O error (is the storage connection down?)'],
  EEXIST: [status.FAILED_PRECONDITION, 'already exists (and is not what the driver expects there)'],
  EISDIR: [status.FAILED_PRECONDITION, 'is a directory'],
  ENOTEMPTY: [status.FAILED_PRECONDITION, 'directory not empty'],
  ENOSPC: [status.RESOURCE_EXHAUSTED, 'no space left on the node filesystem'],
  EDQUOT: [status.RESOURCE_EXHAUSTED, 'disk quota exceeded'],
  ENXIO: [status.FAILED_PRECONDITION, 'no such device (is the storage connection down?)'],
  ENODEV: [status.FAILED_PRECONDITION, 'no such device (is the storage connection down?)'],
  ESTALE: [status.FAILED_PRECONDITION, 'stale file handle'],
  EXDEV: [status.FAILED_PRECONDITION, 'crosses a filesystem boundary'],
  ETXTBSY: [status.FAILED_PRECONDITION, 'text file busy'],
  EMFILE: [status.UNAVAILABLE, 'too many open files in the plugin'],
  ENFILE: [status.UNAVAILABLE, 'too many open files on the node'],
  ENOMEM: [status.UNAVAILABLE, 'out of memory'],
  EAGAIN: [status.UNAVAILABLE, 'resource temporarily unavailable'],
  EINTR: [status.UNAVAILABLE, 'interrupted'],
};

/** A system call's error as Node reports it (fs/promises, statfs, ...): `code`, `errno`, `syscall`. */
export function isErrnoError(e: unknown): e is NodeJS.ErrnoException & { code: string } {
  if (!(e instanceof Error)) return false;
  const x = e as NodeJS.ErrnoException;
  return typeof x.code === 'string' && /^E[A-Z0-9]+$/.test(x.code) && typeof x.errno === 'number';
}

/** The errno code of `e` ('ENOENT', ...), or undefined when it is not a system call's error. */
export function errnoCode(e: unknown): string | undefined {
  return isErrnoError(e) ? e.code : undefined;
}

/** A path that names nothing: missing, or a component is not a directory (so it cannot exist). */
export function isMissingPath(e: unknown): boolean {
  const c = errnoCode(e);
  return c === 'ENOENT' || c === 'ENOTDIR';
}

/**
 * A CsiError for a system call's error: the code from the table above (FAILED_PRECONDITION for
 * any other errno: the node's state, not a driver bug) and a message naming the call, a short
 * prefix of the path, and the reason. Node's own message (the whole path) is not used.
 */
export function errnoToCsiError(e: NodeJS.ErrnoException & { code: string }, what: string): CsiError {
  const [code, text] = ERRNO[e.code] ?? [status.FAILED_PRECONDITION, 'system call failed'];
  const call = e.syscall ? `${e.syscall} ` : '';
  const where = e.path !== undefined ? `${quotePath(e.path)}: ` : '';
  return new CsiError(code, `${what}: ${call}${where}${text} (${e.code})`);
}

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
  if (isErrnoError(e)) return errnoToCsiError(e, what);
  if (e instanceof StateFileError) return new CsiError(status.FAILED_PRECONDITION, `${what}: ${e.message}`);
  return e;
}
