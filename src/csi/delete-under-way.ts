/**
 * A Cinder DELETE whose answer may have been lost after Cinder acted (issue 10). The HTTP client
 * repeats an idempotent DELETE after a reset, and the CO repeats the RPC; Cinder refuses the
 * repeat with HTTP 400 because the object is already `deleting` ("Volume status must be available
 * or error ...", "GroupSnapshot status must be available or error ..."), or answers 404 once it is
 * gone. Both mean the delete is under way, so the caller goes on to wait for the object to
 * disappear. Any other failure, including a 400 about a real precondition (attached, has
 * snapshots, used as a source) while the object is not `deleting`, is thrown unchanged.
 */
import { ignoreNotFound } from '../openstack/cinder.ts';
import { OpenStackError } from '../openstack/errors.ts';

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
      const now = await ignoreNotFound(current()).then(
        (o) => (o ? String(o.status) : 'gone'),
        () => 'unknown',
      );
      if (now === 'gone' || now === 'deleting') return;
    }
    throw err;
  }
}
