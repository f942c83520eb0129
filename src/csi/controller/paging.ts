import { fromCloudError } from '../cloud-errors.ts';
import { aborted, invalidArgument } from '../errors.ts';
import type { RpcContext } from '../rpc.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * One page of a CSI List* call on a Cinder listing: `starting_token` is Cinder's marker (the last id
 * of the previous page), `max_entries` its limit. A token that is not an id, or that Cinder does not
 * know, is ABORTED as the spec asks (the CO restarts the listing).
 */
export async function cinderPage<T>(
  kind: 'volume' | 'snapshot',
  req: { starting_token: string; max_entries: number },
  ctx: RpcContext,
  fetch: (q: { limit: number | undefined; marker: string | undefined }) => Promise<{
    items: T[];
    next: string | undefined;
  }>,
): Promise<{ items: T[]; next: string | undefined }> {
  if (req.max_entries < 0) throw invalidArgument('max_entries must not be negative');
  const token = req.starting_token || undefined;
  if (token !== undefined && !UUID_RE.test(token)) {
    throw aborted(`starting_token "${token.slice(0, 64)}" is not valid`);
  }
  try {
    return await fetch({ limit: req.max_entries > 0 ? req.max_entries : undefined, marker: token });
  } catch (err) {
    const e = err as { badRequest?: boolean; notFound?: boolean; faultMessage?: string };
    // Cinder answers an unknown marker with 404 "Volume <marker> could not be found" (or 400 "marker").
    if (
      token &&
      (e.badRequest || e.notFound) &&
      (/marker/i.test(e.faultMessage ?? '') || e.faultMessage?.includes(token))
    ) {
      throw aborted(`starting_token ${token} is not valid (no such ${kind} in this listing)`);
    }
    throw fromCloudError(err, `list ${kind}s`, { signal: ctx.signal });
  }
}
