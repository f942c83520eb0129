/**
 * One listing per tick for concurrent volume-create waits of one Cinder client.
 *
 * A wait alone uses the shared waiter (waiter.ts: its own GETs on the geometric schedule), exactly
 * as before. While another create wait of the same client is in flight, a new wait joins the shared
 * poll instead (and a lone wait joins it at its next check): one timer for all of them, and per
 * tick one `GET /volumes/detail?updated_at=gte:T` (Cinder microversion >= 3.60: time-comparison
 * filters) whose rows answer every joined wait.
 *   - T comes from Cinder's own clock: the `created_at` Cinder returned for the waited volumes
 *     (the oldest of them), floored to the second (`updated_at` is stored with second resolution)
 *     minus a margin for clock skew between Cinder's API and volume services. Never the local clock.
 *   - A volume appears once Cinder updates it after its creation (scheduler, volume service): in
 *     `creating`, then in its final status. A row in a target status ends that wait with the row;
 *     a failure status (as the waiter decides: `failOn`, default `error*`) ends it with the same
 *     WaitFailedError and reason (the latest user message) as the waiter.
 *   - Fall-backs to the waiter (the truth is then one GET per volume again): the listing fails
 *     (the HTTP layer's retries spent, a timeout, an answer of the wrong shape); it is refused
 *     (400 "invalid filter": the operator's resource_filters do not allow `updated_at`, or the
 *     negotiated microversion is below 3.60, checked locally; on the first page only: a later
 *     page's 400/404 is its marker volume deleted meanwhile); it has more pages than
 *     MAX_PAGES; a volume has not appeared NOT_SEEN_MS after its wait joined, or vanished after
 *     appearing. A refusal turns sharing off for the client; any other failure for COOL_DOWN_MS.
 *   - Bounded: one listing in flight at a time (the next tick is armed when it ends), pages of
 *     PAGE_LIMIT, at most MAX_PAGES pages per tick, each listing under LIST_TIMEOUT_MS. Each wait
 *     ends when its signal fires (WaitAbortedError, as the waiter's). No timer and no listing is
 *     left once no wait is joined, so an idle process can exit.
 *   - Tick delays (after the previous listing ended): TICK_FIRST_MS after a wait joined (a new
 *     volume may be ready soon; an armed earlier tick is never postponed), then × TICK_FACTOR up
 *     to TICK_CAP_MS, the waiter's cap: a slow backend costs one listing per 2.5 s for all waits.
 * One poller per CinderClient (no global state); the controller reaches it through
 * `CinderApi.waitForNewVolume`.
 */
import type { Logger } from '../util/logger.ts';
import type { WaitOptions } from './cinder-api.ts';
import type { Volume } from './cinder-types.ts';
import { isFailureStatus, WaitAbortedError, WaitFailedError } from './waiter.ts';

/** What the poller needs from the Cinder client (a double in the unit tests). */
export interface VolumePollerDeps {
  /** True when the listing may be tried (negotiated microversion >= 3.60). */
  supported(): boolean;
  /** One page of volumes with `updated_at >= since` (`since`: Cinder's naive UTC `YYYY-MM-DDTHH:MM:SS`). */
  listChangedSince(
    since: string,
    page: { limit: number; marker: string | undefined },
    signal: AbortSignal,
  ): Promise<{ items: Volume[]; next: string | undefined }>;
  /**
   * The per-volume waiter (waitForVolume). `beforeGet` runs before each of its GETs; what it throws
   * ends the wait with that error (the poller uses it to move a lone wait into the shared poll).
   */
  waitOwn(id: string, wait: WaitOptions, beforeGet?: () => void): Promise<Volume | undefined>;
  /** Why the volume failed (latest user message); errors are ignored. */
  explain(id: string, signal: AbortSignal | undefined): Promise<string | undefined>;
  logger?: Logger;
  /** Timers and local time (monotonic use only: tick delays, NOT_SEEN_MS, cool-down). */
  clock?: PollerClock;
}

export interface PollerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: PollerClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export const POLLER_LIMITS = Object.freeze({
  /** Waits in flight (this one included) from which on a new wait joins the shared poll. */
  SHARE_FROM: 2,
  TICK_FIRST_MS: 150,
  TICK_FACTOR: 1.5,
  TICK_CAP_MS: 2500,
  PAGE_LIMIT: 250,
  MAX_PAGES: 4,
  /** A listing slower than this fails (fall-back): waits joining meanwhile are not held longer. */
  LIST_TIMEOUT_MS: 10_000,
  /** A joined volume not in any listing for this long falls back to its own GETs. */
  NOT_SEEN_MS: 15_000,
  /** Seconds subtracted from the oldest created_at (skew between Cinder's services). */
  MARGIN_S: 5,
  COOL_DOWN_MS: 60_000,
});

interface Entry {
  id: string;
  /** Cinder's created_at of the volume, floored to the second, minus the margin (ms epoch). */
  sinceMs: number;
  wait: WaitOptions;
  joinedAt: number;
  seen: boolean;
  lastStatus: string | undefined;
  resolve: (v: Volume | undefined) => void;
  reject: (err: unknown) => void;
  onAbort: () => void;
}

/** Cinder's created_at ("2026-12-01T22:57:21.240050", naive UTC) → ms epoch floored to the second. */
export function cinderSecond(createdAt: unknown): number | undefined {
  if (typeof createdAt !== 'string' || createdAt.length > 40) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]00:?00)?$/.exec(createdAt);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}T${m[2]}Z`);
  return Number.isFinite(ms) ? ms : undefined;
}

/** ms epoch → Cinder's naive UTC form `YYYY-MM-DDTHH:MM:SS`. */
export function cinderTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

function refused(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { name?: unknown }).name === 'MicroversionError') return true;
  const status = (err as { status?: unknown }).status;
  return status === 400 || status === 403 || status === 404;
}

/** Thrown by a lone wait's `beforeGet` once other waits share a poll it can join. */
class JoinShared extends Error {}

export class VolumePoller {
  readonly #deps: VolumePollerDeps;
  readonly #clock: PollerClock;
  readonly #entries = new Set<Entry>();
  /** Waits of this poller running on their own waiter (alone, or fallen back). */
  #own = 0;
  #timer: unknown;
  /** When the armed timer fires (clock time). */
  #timerAt = 0;
  #listing: AbortController | undefined;
  #delay: number = POLLER_LIMITS.TICK_FIRST_MS;
  #refused = false;
  #coolUntil = Number.NEGATIVE_INFINITY;
  #ticks = 0;

  constructor(deps: VolumePollerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? realClock;
  }

  /** For tests and metrics: listings made, waits joined now, whether a timer or listing is pending. */
  get stats(): { ticks: number; joined: number; own: number; idle: boolean } {
    return {
      ticks: this.#ticks,
      joined: this.#entries.size,
      own: this.#own,
      idle: this.#timer === undefined && this.#listing === undefined,
    };
  }

  /**
   * Waits for `volume` (just created by this client; its `created_at` as Cinder returned it) to
   * reach `wait.target`, as `waitForVolume` does: same results, same errors.
   */
  wait(volume: { id: string; created_at?: unknown }, wait: WaitOptions): Promise<Volume | undefined> {
    const created = cinderSecond(volume.created_at);
    if (wait.gone || created === undefined || wait.signal?.aborted || !this.#canShare()) {
      return this.#waitOwn(volume.id, wait);
    }
    if (this.#entries.size + this.#own + 1 < POLLER_LIMITS.SHARE_FROM)
      return this.#alone(volume.id, created, wait);
    return this.#join(volume.id, created, wait);
  }

  #canShare(): boolean {
    return !this.#refused && this.#clock.now() >= this.#coolUntil && this.#deps.supported();
  }

  /** A wait alone: the waiter, until other waits share a poll (then it joins them at its next check). */
  async #alone(id: string, created: number, wait: WaitOptions): Promise<Volume | undefined> {
    this.#own++;
    try {
      return await this.#deps.waitOwn(id, wait, () => {
        if (this.#entries.size > 0 && this.#canShare()) throw new JoinShared();
      });
    } catch (err) {
      if (!(err instanceof JoinShared)) throw err;
    } finally {
      this.#own--;
    }
    return this.#join(id, created, wait);
  }

  #join(id: string, created: number, wait: WaitOptions): Promise<Volume | undefined> {
    return new Promise<Volume | undefined>((resolve, reject) => {
      const entry: Entry = {
        id,
        sinceMs: created - POLLER_LIMITS.MARGIN_S * 1000,
        wait,
        joinedAt: this.#clock.now(),
        seen: false,
        lastStatus: undefined,
        resolve,
        reject,
        onAbort: () => {
          if (!this.#leave(entry)) return;
          const what = `volume ${entry.id} to become ${wait.target.join('/')}`;
          reject(new WaitAbortedError(wait.signal?.reason, what, entry.lastStatus));
        },
      };
      this.#entries.add(entry);
      wait.signal?.addEventListener('abort', entry.onAbort, { once: true });
      // A new wait wants early checks: restart the tick delays (never postponing an armed tick).
      this.#delay = POLLER_LIMITS.TICK_FIRST_MS;
      this.#arm(true);
    });
  }

  async #waitOwn(id: string, wait: WaitOptions): Promise<Volume | undefined> {
    this.#own++;
    try {
      return await this.#deps.waitOwn(id, wait);
    } finally {
      this.#own--;
    }
  }

  /** Removes `entry`; false when it had already left. Stops timer and listing when none is left. */
  #leave(entry: Entry): boolean {
    if (!this.#entries.delete(entry)) return false;
    entry.wait.signal?.removeEventListener('abort', entry.onAbort);
    if (this.#entries.size === 0) {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#listing?.abort(new Error('no volume wait left'));
      this.#delay = POLLER_LIMITS.TICK_FIRST_MS;
    }
    return true;
  }

  #fallBack(entry: Entry, why: string): void {
    if (!this.#leave(entry)) return;
    this.#deps.logger?.debug({ volumeId: entry.id, why }, 'shared volume poll: falling back to own GETs');
    this.#waitOwn(entry.id, entry.wait).then(entry.resolve, entry.reject);
  }

  #fail(entry: Entry, v: Volume): void {
    if (!this.#leave(entry)) return;
    const status = String(v.status);
    this.#deps
      .explain(entry.id, entry.wait.signal)
      .catch(() => undefined)
      .then((reason) =>
        entry.reject(new WaitFailedError('volume', entry.id, status, entry.wait.target, reason)),
      );
  }

  /**
   * Arms the next tick `#delay` from now, then grows `#delay`; nothing while a listing runs or no
   * wait is joined. An armed tick stays, unless `sooner` and the new one would come first.
   */
  #arm(sooner = false): void {
    if (this.#listing !== undefined || this.#entries.size === 0) return;
    const at = this.#clock.now() + this.#delay;
    if (this.#timer !== undefined) {
      if (!sooner || at >= this.#timerAt) return;
      this.#clock.clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#tick().catch((err) => {
        // A bug, not Cinder: the waits go on with their own GETs.
        this.#listing = undefined;
        this.#listingFailed(err);
      });
    }, this.#delay);
    this.#delay = Math.min(POLLER_LIMITS.TICK_CAP_MS, Math.round(this.#delay * POLLER_LIMITS.TICK_FACTOR));
  }

  async #tick(): Promise<void> {
    if (this.#entries.size === 0) return;
    const asked = [...this.#entries];
    const since = cinderTime(Math.min(...asked.map((e) => e.sinceMs)));
    const listing = new AbortController();
    this.#listing = listing;
    this.#ticks++;
    const signal = AbortSignal.any([listing.signal, AbortSignal.timeout(POLLER_LIMITS.LIST_TIMEOUT_MS)]);
    const rows = new Map<string, Volume>();
    let truncated = false;
    let failure: unknown;
    let page = 0;
    try {
      let marker: string | undefined;
      const markers = new Set<string>();
      for (; ; page++) {
        const got = await this.#deps.listChangedSince(
          since,
          { limit: POLLER_LIMITS.PAGE_LIMIT, marker },
          signal,
        );
        for (const v of got.items) rows.set(v.id, v);
        if (got.next === undefined) break;
        if (page + 1 >= POLLER_LIMITS.MAX_PAGES || markers.has(got.next)) {
          truncated = true;
          break;
        }
        markers.add(got.next);
        marker = got.next;
      }
    } catch (err) {
      failure = err;
    } finally {
      this.#listing = undefined;
    }
    if (listing.signal.aborted) {
      // Every wait left during the listing; a wait that joined since then starts a new tick.
      this.#arm();
      return;
    }
    // A later page's 400/404 is the marker's volume deleted meanwhile (paging.ts), not a refusal.
    if (failure !== undefined) this.#listingFailed(failure, page === 0);
    else this.#apply(asked, rows, truncated);
    this.#arm();
  }

  #listingFailed(err: unknown, firstPage = true): void {
    if (firstPage && refused(err)) this.#refused = true;
    else this.#coolUntil = this.#clock.now() + POLLER_LIMITS.COOL_DOWN_MS;
    this.#deps.logger?.warn(
      { err: err instanceof Error ? err.message.slice(0, 300) : String(err), refused: this.#refused },
      'shared volume poll: listing failed; waits fall back to their own GETs',
    );
    for (const entry of [...this.#entries]) this.#fallBack(entry, 'listing failed');
  }

  #apply(asked: Entry[], rows: Map<string, Volume>, truncated: boolean): void {
    const now = this.#clock.now();
    const wasAsked = new Set(asked);
    for (const entry of [...this.#entries]) {
      const v = rows.get(entry.id);
      if (v === undefined) {
        // Only a listing that started after the wait joined can tell it is missing.
        if (!wasAsked.has(entry)) continue;
        if (truncated) this.#fallBack(entry, `more than ${POLLER_LIMITS.MAX_PAGES} pages`);
        else if (entry.seen) this.#fallBack(entry, 'left the listing');
        else if (now - entry.joinedAt >= POLLER_LIMITS.NOT_SEEN_MS) this.#fallBack(entry, 'not listed');
        continue;
      }
      entry.seen = true;
      const status = String(v.status);
      entry.lastStatus = status;
      if (entry.wait.target.includes(status)) {
        if (this.#leave(entry)) entry.resolve(v);
      } else if (isFailureStatus(status, entry.wait.failOn)) {
        this.#fail(entry, v);
      }
    }
  }
}
