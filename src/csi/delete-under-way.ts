/**
 * A Cinder DELETE whose answer may have been lost after Cinder acted (issue 10). The HTTP client
 * repeats an idempotent DELETE after a reset, and the CO repeats the RPC; Cinder refuses the
 * repeat with HTTP 400 because the object is already `deleting` ("Volume status must be available
 * or error ...", "GroupSnapshot status must be available or error ..."), or answers 404 once it is
 * gone. Both mean the delete is under way, so the caller goes on to wait for the object to
 * disappear. Any other failure, including a 400 about a real precondition (attached, has
 * snapshots, used as a source) while the object is not `deleting`, is thrown unchanged. When the
 * one GET after a 400 fails transiently (no answer, 5xx, 429), it cannot tell which case it is: the
 * answer is UNAVAILABLE, for the CO to retry, not the 400's permanent code.
 */
import { ignoreNotFound } from '../openstack/cinder.ts';
import { OpenStackError } from '../openstack/errors.ts';
import { capMessage, unavailable } from './errors.ts';

/**
 * Runs `del`; a 404, or a 400 while `current()` finds the object `deleting` or gone, is success.
 * `current` (one GET of the object) is called only after a 400.
 */
export async function deleteUnderWay(
  del: () => Promise<unknown>,
  current: () => Promise<{ status?: string | null }>,
): Promise<void> {
  try {
    await ignoreNotFound(del());
  } catch (err) {
    if (err instanceof OpenStackError && err.badRequest) {
      let now: string;
      try {
        const o = await ignoreNotFound(current());
        now = o ? String(o.status) : 'gone';
      } catch (lookupErr) {
        // An aborted call keeps its own code (DEADLINE_EXCEEDED / CANCELLED); a lookup refused for
        // good (403, ...) leaves the 400 as the answer.
        if (!(lookupErr instanceof OpenStackError)) throw lookupErr;
        const transient = lookupErr.retryable || (lookupErr.status ?? 0) >= 500;
        if (!transient) throw err;
        throw unavailable(
          capMessage(
            `Cinder refused the delete (${err.message}) and reading the object's status then failed ` +
              `(${lookupErr.message}): an earlier delete may be under way; retry`,
          ),
        );
      }
      if (now === 'gone' || now === 'deleting') return;
    }
    throw err;
  }
}
