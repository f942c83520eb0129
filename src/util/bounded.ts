/**
 * Bounded work over caller-supplied lists: a fixed number of tasks in flight, stopping early, and
 * messages that quote only a few items.
 */

/**
 * Runs `fn` over `items` with at most `limit` calls in flight. `fn` returns `true` to stop: no
 * further items are started (calls already running finish). A throw also stops the run and is
 * rethrown once the running calls have settled. Returns how many items were started.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<boolean>,
): Promise<number> {
  let next = 0;
  let stop = false;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!stop && next < items.length) {
      const i = next++;
      try {
        if ((await fn(items[i] as T, i)) === true) stop = true;
      } catch (err) {
        stop = true;
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
  return next;
}

/** `a, b, c and 7 more` — at most `max` items, each cut to `width` characters. */
export function fewOf(items: readonly string[], max = 5, width = 64): string {
  const shown = items.slice(0, max).map((s) => (s.length > width ? `${s.slice(0, width)}…` : s));
  const rest = items.length - shown.length;
  return rest > 0 ? `${shown.join(', ')} and ${rest} more` : shown.join(', ');
}
