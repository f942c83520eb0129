/**
 * One well-timed first check for Cinder's asynchronous operations.
 *
 * The shared waiter (src/openstack/waiter.ts) polls on a fixed geometric schedule (checks at about
 * 75, 190, 360, 610, 990 ms, ...). A volume or snapshot of one kind (e.g. `volume|fake|none`) takes a
 * fairly stable time on a given cloud, which falls between those checks, so a waiter alone costs
 * several GETs and sees the object up to ~40% late. The pacer learns, per kind, *when* to make one
 * check (`at` ms after the POST started) and adapts it after every wait:
 *   - the check finds the object ready: next time check 3% earlier (probe for the real ready time);
 *   - it does not: hand over to the waiter, and next time check 25% later (at most as late as this
 *     object was actually seen ready).
 * This settles where ~9 checks in 10 hit, so a create costs the name lookup, the POST and about one
 * GET (bench/controller.ts prints the requests per volume), and the object is seen a few % after it
 * became ready. The first wait of a kind has no history: it uses the waiter and learns from it.
 * Bursts (several waits of a kind in flight) skip the early check: their ready times are the
 * backlog's, not the kind's, so they neither use nor teach the learned time.
 * (Concurrent volume-create waits then share one volume listing per tick: src/openstack/volume-poller.ts.)
 * Failure states are always left to the waiter's reporting (`check` only recognises success).
 * A hit only says the object was ready *by* the check, so after a slow spell (a backlog while the
 * controller started) the learned time would stay far too late for ~100 waits at 3% a hit, each of
 * them answered that late. So a learned time over PROBE_FROM_MS, after PROBE_AFTER hits in a row,
 * is probed at half: a hit there halves it, a miss costs one GET and stops the probing until the
 * next run of hits (for a kind that is really that slow: one GET more every third wait, where the
 * waiter alone would poll it many times).
 */
import { sleep } from '../../util/abort.ts';

/** Adaptation of the check time: × SHRINK after a hit, × GROW after a miss. */
const SHRINK = 0.97;
const GROW = 1.25;
const MIN_AT_MS = 10;
/** Waits of one kind in flight from which on the early check is skipped. */
const BURST = 4;
/** A learned time above this, after this many hits in a row, is probed at half (see above). */
const PROBE_FROM_MS = 1000;
const PROBE_AFTER = 2;

export class Pacer {
  readonly #at = new Map<string, number>();
  readonly #inFlight = new Map<string, number>();
  /** Hits in a row of solo waits, per kind. */
  readonly #streak = new Map<string, number>();

  /** When (ms after the start) the early check of `kind` goes out; undefined before any history. */
  estimate(kind: string): number | undefined {
    return this.#at.get(kind);
  }

  /** Records that an object of `kind` was seen ready `ms` after its start, by the waiter. */
  observe(kind: string, ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    const at = this.#at.get(kind);
    // The waiter saw it up to ~40% late: start a little earlier than that.
    this.#at.set(kind, Math.max(MIN_AT_MS, at === undefined ? ms * 0.9 : Math.min(at * GROW, ms)));
  }

  /**
   * Checks once at the learned time after `startedAt` (ms epoch); `check` returns the object when
   * it is ready, `undefined` otherwise (also for failure states, which `fallback` — the shared
   * waiter — handles and reports). Bounded by `signal`.
   */
  async wait<T>(
    kind: string,
    startedAt: number,
    check: () => Promise<T | undefined>,
    fallback: () => Promise<T>,
    signal: AbortSignal,
  ): Promise<T> {
    const others = this.#inFlight.get(kind) ?? 0;
    this.#inFlight.set(kind, others + 1);
    try {
      const at = this.#at.get(kind);
      if (at !== undefined && others < BURST) {
        const solo = others === 0;
        let streak = this.#streak.get(kind) ?? 0;
        if (solo && at > PROBE_FROM_MS && streak >= PROBE_AFTER) {
          await sleep(Math.max(0, startedAt + at / 2 - Date.now()), signal);
          const probed = await check();
          if (probed !== undefined) {
            this.#at.set(kind, Math.max(MIN_AT_MS, at / 2));
            return probed;
          }
          streak = -1; // the hit below brings it to 0: probe again only after PROBE_AFTER more
        }
        await sleep(Math.max(0, startedAt + at - Date.now()), signal);
        const early = await check();
        if (early !== undefined) {
          if (solo) {
            this.#at.set(kind, Math.max(MIN_AT_MS, at * SHRINK));
            this.#streak.set(kind, streak + 1);
          }
          return early;
        }
        if (solo) this.#streak.set(kind, 0);
      }
      const result = await fallback();
      if (others === 0) this.observe(kind, Date.now() - startedAt);
      return result;
    } finally {
      const n = (this.#inFlight.get(kind) ?? 1) - 1;
      if (n > 0) this.#inFlight.set(kind, n);
      else this.#inFlight.delete(kind);
    }
  }
}
