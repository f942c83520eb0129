/**
 * The shared poll of concurrent volume-create waits (src/openstack/volume-poller.ts), on a fake
 * clock against a double of Cinder (a map of volumes): its listing (`updated_at >= since`) and the
 * per-volume waiter (GETs on the waiter's schedule, on the same fake clock). A double because the
 * cases here (a listing answering 500 or 400, pagination past the cap, a volume never listed) cannot
 * be produced on the lab Cinder on demand; test/integration/controller/shared-poll.test.ts runs the
 * poller against the real one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WaitOptions } from '../../../src/openstack/cinder-api.ts';
import type { Volume } from '../../../src/openstack/cinder-types.ts';
import {
  cinderSecond,
  cinderTime,
  POLLER_LIMITS,
  type PollerClock,
  VolumePoller,
} from '../../../src/openstack/volume-poller.ts';
import {
  isFailureStatus,
  pollDelays,
  WaitAbortedError,
  WaitFailedError,
} from '../../../src/openstack/waiter.ts';
import { AbortedError } from '../../../src/util/abort.ts';

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

class FakeClock implements PollerClock {
  t = 0;
  #id = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(++this.#id, { at: this.t + ms, fn });
    return this.#id;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms) as number;
      const onAbort = () => {
        this.timers.delete(id);
        reject(new AbortedError(signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  /** Runs every timer due within `ms`, in order, letting promises settle in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = [...this.timers.entries()]
        .filter(([, x]) => x.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
    }
    this.t = end;
    await flush();
  }
}

const CREATED = '2026-12-01T22:57:21.240050';

/** Cinder as the poller sees it: volumes (listed once `changed`), its listing, GETs, the waiter. */
function fakeCinder(clock: FakeClock, shared = true) {
  const vols = new Map<string, { id: string; status: string; created_at: string; changed: boolean }>();
  const calls = { lists: 0, gets: 0, own: 0, since: [] as string[] };
  let listFailure: unknown;
  let failFrom = 0;
  let pages = 1;
  const volume = (v: { id: string; status: string; created_at: string }) =>
    ({ id: v.id, status: v.status, size: 1, created_at: v.created_at }) as unknown as Volume;
  const poller = new VolumePoller({
    clock,
    supported: () => shared,
    async listChangedSince(since, page) {
      calls.lists++;
      calls.since.push(since);
      await new Promise((r) => setImmediate(r));
      if (listFailure && Number(page.marker ?? 0) >= failFrom) throw listFailure;
      const items = [...vols.values()].filter((v) => v.changed).map(volume);
      const n = Number(page.marker ?? 0) + 1;
      return { items, next: n < pages ? String(n) : undefined };
    },
    // The waiter (waiter.ts) on the fake clock: GETs on its schedule, same results and errors.
    async waitOwn(id, wait: WaitOptions, beforeGet) {
      calls.own++;
      let last: string | undefined;
      try {
        for (const delay of pollDelays()) {
          await clock.sleep(delay, wait.signal);
          beforeGet?.();
          calls.gets++;
          const v = vols.get(id);
          if (!v) throw Object.assign(new Error('404'), { notFound: true });
          last = v.status;
          if (wait.target.includes(v.status)) return volume(v);
          if (isFailureStatus(v.status, wait.failOn))
            throw new WaitFailedError('volume', id, v.status, wait.target, `reason of ${id}`);
        }
      } catch (err) {
        if (wait.signal?.aborted) throw new WaitAbortedError(wait.signal.reason, `volume ${id}`, last);
        throw err;
      }
      throw new Error('unreachable');
    },
    explain: async (id) => `reason of ${id}`,
  });
  return {
    poller,
    calls,
    /** Listing pages from `fromPage` (0: the first) fail with `err`. */
    failListing(err: unknown, fromPage = 0) {
      listFailure = err;
      failFrom = fromPage;
    },
    setPages(n: number) {
      pages = n;
    },
    create(id: string, createdAt = CREATED) {
      vols.set(id, { id, status: 'creating', created_at: createdAt, changed: false });
      return { id, created_at: createdAt };
    },
    /** Cinder updates the volume (updated_at >= created_at): it shows in the listing, unless `unlisted`. */
    set(id: string, status: string, unlisted = false) {
      const v = vols.get(id)!;
      v.status = status;
      v.changed = !unlisted;
    },
  };
}

const createWait = (signal?: AbortSignal): WaitOptions => ({
  target: ['available'],
  failOn: ['error', 'error_restoring', 'deleting', 'error_deleting'],
  ...(signal ? { signal } : {}),
});

/** Settles `p` into a record the test can inspect after advancing the clock. */
/** Two create waits whose volumes turn `available` at once; both must have ended OK 3 s later. */
async function bothEndOk(f: ReturnType<typeof fakeCinder>, clock: FakeClock, x: string, y: string) {
  const a = track(f.poller.wait(f.create(x), createWait()));
  const b = track(f.poller.wait(f.create(y), createWait()));
  f.set(x, 'available');
  f.set(y, 'available');
  await clock.advance(3000);
  assert.equal(a.done && b.done, true, `${x} and ${y} ended OK`);
}

function track<T>(p: Promise<T>) {
  const r: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(r, { done: true, value }),
    (error) => Object.assign(r, { done: true, error }),
  );
  return r;
}

describe('VolumePoller', () => {
  it("takes T from Cinder's created_at: floored to the second, minus the margin", () => {
    const s = cinderSecond(CREATED)!;
    assert.equal(cinderTime(s), '2026-12-01T22:57:21');
    assert.equal(cinderTime(s - POLLER_LIMITS.MARGIN_S * 1000), '2026-12-01T22:57:16');
    assert.equal(cinderSecond('2026-12-01T22:57:21Z'), s);
    assert.equal(cinderSecond('yesterday'), undefined);
    assert.equal(cinderSecond(undefined), undefined);
  });

  it('a wait alone is the waiter, exactly: its own GETs, no listing', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    const w = track(f.poller.wait(f.create('v1'), createWait()));
    await clock.advance(500);
    f.set('v1', 'available');
    await clock.advance(2000);
    assert.equal(w.done && (w.value as Volume).status, 'available');
    assert.equal(f.calls.lists, 0);
    assert.ok(f.calls.gets >= 4, `${f.calls.gets} GETs`);
    assert.equal(clock.timers.size, 0);
  });

  /** 20 creates whose POSTs return over 1 s; Cinder updates each 0.1 s apart, a third later still. */
  async function burst(shared: boolean) {
    const clock = new FakeClock();
    const f = fakeCinder(clock, shared);
    const ws = [];
    for (let i = 0; i < 20; i++) {
      ws.push(track(f.poller.wait(f.create(`v${i}`), createWait())));
      await clock.advance(50);
    }
    for (let i = 0; i < 20; i++) {
      f.set(`v${i}`, i % 3 === 0 ? 'creating' : 'available');
      await clock.advance(100);
    }
    for (let i = 0; i < 20; i += 3) f.set(`v${i}`, 'available');
    await clock.advance(5000);
    assert.ok(
      ws.every((w) => w.done && (w.value as Volume).status === 'available'),
      'every wait ended with its volume',
    );
    assert.equal(clock.timers.size, 0, 'no timer left');
    assert.equal(f.poller.stats.idle, true);
    return f.calls;
  }

  it('a burst of 20 waits: one listing per tick serves them all, far fewer requests, no timer left', async () => {
    const own = await burst(false);
    const shared = await burst(true);
    console.log(
      `# 20 waits: per-volume ${own.gets} GETs; shared ${shared.lists} listings + ${shared.gets} GETs`,
    );
    assert.equal(own.lists, 0);
    assert.ok(own.gets >= 20 * 5, `${own.gets}`);
    assert.ok(shared.lists + shared.gets < 20, `${shared.lists} listings + ${shared.gets} GETs`);
    assert.ok(shared.gets <= 2, `only the lone first wait GETs until it joins: ${shared.gets}`);
    assert.ok(new Set(shared.since).has('2026-12-01T22:57:16'));
  });

  it('a lone wait joins the shared poll at its next check once another wait shares it', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    const a = track(f.poller.wait(f.create('a'), createWait()));
    await clock.advance(100); // one GET of a
    const b = track(f.poller.wait(f.create('b'), createWait()));
    await clock.advance(300);
    const gets = f.calls.gets;
    assert.equal(f.poller.stats.joined, 2);
    f.set('a', 'available');
    f.set('b', 'available');
    await clock.advance(3000);
    assert.equal(a.done && b.done, true);
    assert.equal(f.calls.gets, gets, 'no GET after joining');
    assert.equal(clock.timers.size, 0);
  });

  it('a volume going to error ends its wait with the WaitFailedError and reason of the waiter', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    const a = track(f.poller.wait(f.create('a'), createWait()));
    const b = track(f.poller.wait(f.create('b'), createWait()));
    await clock.advance(200);
    f.set('b', 'error');
    await clock.advance(1000);
    assert.ok(b.error instanceof WaitFailedError);
    assert.equal(b.error.status, 'error');
    assert.equal(b.error.reason, 'reason of b');
    assert.match(b.error.message, /volume b went to status "error" while waiting for available: reason of b/);
    assert.equal(a.done, false);
    f.set('a', 'deleting'); // in failOn: also a failure
    await clock.advance(3000);
    assert.ok(a.error instanceof WaitFailedError && a.error.status === 'deleting');
    assert.equal(clock.timers.size, 0);
  });

  it('the signal ends a joined wait (WaitAbortedError), the others go on; none left: no timer, no listing', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    const ac = new AbortController();
    const a = track(f.poller.wait(f.create('a'), createWait(ac.signal)));
    const b = track(f.poller.wait(f.create('b'), createWait()));
    const c = track(f.poller.wait(f.create('c'), createWait()));
    f.set('a', 'creating');
    await clock.advance(400);
    ac.abort(new Error('deadline'));
    await flush();
    assert.ok(a.error instanceof WaitAbortedError && a.error instanceof AbortedError);
    assert.match(
      a.error.message,
      /deadline while waiting for volume a to become available \(last status: creating\)/,
    );
    f.set('b', 'available');
    f.set('c', 'available');
    await clock.advance(3000);
    assert.equal(b.done && c.done, true);
    assert.equal(clock.timers.size, 0);
    assert.equal(f.poller.stats.idle, true);
  });

  it('a listing answering 500: every joined wait falls back to its own GETs, new ones too for a while', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    const a = track(f.poller.wait(f.create('a'), createWait()));
    const b = track(f.poller.wait(f.create('b'), createWait()));
    f.failListing(Object.assign(new Error('HTTP 500'), { status: 500, retryable: true }));
    await clock.advance(300);
    assert.equal(f.calls.lists, 1);
    assert.equal(f.calls.own, 3, 'the lone first wait, then both fall back');
    f.set('a', 'available');
    f.set('b', 'error');
    await clock.advance(5000);
    assert.equal(a.done && (a.value as Volume).id, 'a');
    assert.ok(b.error instanceof WaitFailedError && b.error.reason === 'reason of b');
    await bothEndOk(f, clock, 'c', 'd');
    assert.equal(f.calls.lists, 1, 'no listing during the cool-down');
    assert.equal(clock.timers.size, 0);
  });

  it('a listing refused (400: filter not allowed): fall back, and sharing stays off', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    f.failListing(Object.assign(new Error('HTTP 400 Invalid filter keys: updated_at'), { status: 400 }));
    await bothEndOk(f, clock, 'a', 'b');
    assert.equal(f.calls.lists, 1);
    clock.t += POLLER_LIMITS.COOL_DOWN_MS * 10;
    f.failListing(undefined);
    await bothEndOk(f, clock, 'c', 'd');
    assert.equal(f.calls.lists, 1, 'refused once: no more listings on this client');
  });

  it("a later page's 404 (its marker volume deleted meanwhile) is not a refusal: sharing resumes after the cool-down", async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    f.setPages(3);
    f.failListing(Object.assign(new Error('HTTP 404 Volume 1 could not be found'), { status: 404 }), 1);
    await bothEndOk(f, clock, 'a', 'b');
    assert.equal(f.calls.lists, 2, 'the first page, then the failing second');
    clock.t += POLLER_LIMITS.COOL_DOWN_MS;
    f.failListing(undefined);
    f.setPages(1);
    await bothEndOk(f, clock, 'c', 'd');
    assert.equal(f.calls.lists, 3, 'the shared poll again after the cool-down');
    assert.equal(clock.timers.size, 0);
  });

  it('more pages than the cap: the waits not found fall back to their own GETs', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    f.setPages(POLLER_LIMITS.MAX_PAGES + 1);
    const a = track(f.poller.wait(f.create('a'), createWait()));
    const b = track(f.poller.wait(f.create('b'), createWait()));
    await clock.advance(300);
    assert.equal(f.calls.lists, POLLER_LIMITS.MAX_PAGES, 'at most MAX_PAGES pages per tick');
    assert.equal(f.poller.stats.joined, 0);
    f.set('a', 'available');
    f.set('b', 'available');
    await clock.advance(3000);
    assert.equal(a.done && b.done, true);
    assert.equal(clock.timers.size, 0);
  });

  it('a volume not listed for NOT_SEEN_MS falls back to its own GETs (clock skew, lost update)', async () => {
    const clock = new FakeClock();
    const f = fakeCinder(clock);
    const a = track(f.poller.wait(f.create('a'), createWait()));
    const b = track(f.poller.wait(f.create('b'), createWait()));
    await clock.advance(POLLER_LIMITS.NOT_SEEN_MS - 3000);
    assert.equal(f.calls.own, 1);
    await clock.advance(POLLER_LIMITS.TICK_CAP_MS + 3000);
    assert.equal(f.calls.own, 3, 'both fell back');
    assert.equal(a.done || b.done, false);
    const lists = f.calls.lists;
    // Available but never listed (e.g. updated_at below T): the GETs find it.
    f.set('a', 'available', true);
    f.set('b', 'available', true);
    await clock.advance(3000);
    assert.equal(a.done && b.done, true);
    assert.equal(f.calls.lists, lists);
    assert.equal(clock.timers.size, 0);
  });
});
