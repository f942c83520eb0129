import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pacer } from '../../../src/csi/controller/pacing.ts';

const signal = new AbortController().signal;
/** A start far enough in the past that the pacer's sleep is zero (no timing in these tests). */
const past = () => Date.now() - 1_000_000;

describe('Pacer', () => {
  it('without history uses the waiter alone and learns from when it saw the object', async () => {
    const p = new Pacer();
    let checks = 0;
    const r = await p.wait(
      'k',
      Date.now() - 400,
      async () => {
        checks++;
        return 'early';
      },
      async () => 'waiter',
      signal,
    );
    assert.equal(r, 'waiter');
    assert.equal(checks, 0);
    const at = p.estimate('k');
    assert.ok(at !== undefined && at >= 0.9 * 400 && at < 0.9 * 1000, `learned ${at}`);
    assert.equal(p.estimate('other'), undefined);
  });

  it('one early check: a hit returns at once and moves the next check earlier', async () => {
    const p = new Pacer();
    p.observe('k', 1000);
    const before = p.estimate('k')!;
    let fallbacks = 0;
    const r = await p.wait(
      'k',
      past(),
      async () => 'ready',
      async () => {
        fallbacks++;
        return 'waiter';
      },
      signal,
    );
    assert.equal(r, 'ready');
    assert.equal(fallbacks, 0);
    assert.ok(p.estimate('k')! < before);
  });

  it('a miss hands over to the waiter and moves the next check later, at most to when it was seen', async () => {
    const p = new Pacer();
    p.observe('k', 100);
    const before = p.estimate('k')!;
    let checks = 0;
    const r = await p.wait(
      'k',
      past(),
      async () => {
        checks++;
        return undefined;
      },
      async () => 'waiter',
      signal,
    );
    assert.equal(r, 'waiter');
    assert.equal(checks, 1);
    assert.equal(p.estimate('k'), before * 1.25);
    p.observe('k', 50);
    assert.equal(p.estimate('k'), 50, 'never later than an observed ready time');
  });

  it('settles where most single checks hit (about one GET per wait)', async () => {
    const p = new Pacer();
    const readyMs = 300;
    p.observe('k', 700); // first learned from a late waiter observation
    let hits = 0;
    let waits = 0;
    for (let i = 0; i < 200; i++) {
      const at = p.estimate('k')!;
      const r = await p.wait(
        'k',
        past(),
        async () => (at >= readyMs ? 'ready' : undefined),
        async () => 'waiter',
        signal,
      );
      if (i >= 100) {
        waits++;
        if (r === 'ready') hits++;
      }
    }
    assert.ok(hits / waits >= 0.8, `hit rate ${hits / waits}`);
    const at = p.estimate('k')!;
    assert.ok(at >= readyMs * 0.9 && at <= readyMs * 1.3, `check at ${at} for ready at ${readyMs}`);
  });

  it('after a slow spell the learned time comes back within a few waits: a late time is probed at half', async () => {
    const p = new Pacer();
    p.observe('k', 20_000); // learned while Cinder had a backlog; now it is ready within 300 ms
    let checks = 0;
    let waits = 0;
    while (p.estimate('k')! > 1000 && waits < 100) {
      waits++;
      const r = await p.wait(
        'k',
        past(),
        async () => {
          checks++;
          return 'ready';
        },
        async () => 'waiter',
        signal,
      );
      assert.equal(r, 'ready');
    }
    // 3% a hit alone would take ~95 waits, each answered ~18 s late.
    assert.ok(waits <= 10, `${waits} waits until the check time is back under 1 s`);
    assert.equal(checks, waits, 'a probe that hits is the only GET of its wait');
  });

  it('a probe that misses costs one GET and stops the probing until two more hits', async () => {
    const p = new Pacer();
    p.observe('k', 20_000 / 0.9); // at = 20 s: a kind that is really that slow
    /** One wait whose checks answer `answers` in turn; returns how many checks it made. */
    const waitWith = async (...answers: boolean[]) => {
      let n = 0;
      await p.wait(
        'k',
        past(),
        async () => (answers[n++] ? 'ready' : undefined),
        async () => 'waiter',
        signal,
      );
      return n;
    };
    assert.equal(await waitWith(true), 1, 'no probe before two hits in a row');
    assert.equal(await waitWith(true), 1);
    const before = p.estimate('k')!;
    assert.equal(
      await waitWith(false, true),
      2,
      'the probe at half missed, the check at the learned time hit',
    );
    assert.equal(p.estimate('k'), before * 0.97, 'a missed probe does not move the time');
    assert.equal(await waitWith(true), 1, 'no probe right after a missed one');
    assert.equal(await waitWith(true), 1);
    const again = p.estimate('k')!;
    assert.equal(await waitWith(true), 1, 'two hits later the probe is back, and a hit halves the time');
    assert.equal(p.estimate('k'), again / 2);
  });

  it('a burst of waits of one kind skips the early check and teaches nothing', async () => {
    const p = new Pacer();
    p.observe('k', 100);
    const before = p.estimate('k');
    let checks = 0;
    const gates: (() => void)[] = [];
    const waits = Array.from({ length: 6 }, () =>
      p.wait(
        'k',
        past(),
        async () => {
          checks++;
          return undefined;
        },
        () => new Promise<string>((resolve) => gates.push(() => resolve('waiter'))),
        signal,
      ),
    );
    while (gates.length < 6) await new Promise((r) => setImmediate(r));
    for (const open of gates) open();
    assert.deepEqual(await Promise.all(waits), Array(6).fill('waiter'));
    assert.equal(checks, 4, 'only the first four (fewer than BURST others in flight) check early');
    assert.equal(p.estimate('k'), before! * 1.25, 'only the solo wait (the first) adjusts the time');
  });

  it('the caller signal bounds the wait', async () => {
    const p = new Pacer();
    p.observe('k', 60_000);
    const ac = new AbortController();
    ac.abort(new Error('deadline'));
    await assert.rejects(
      p.wait(
        'k',
        Date.now(),
        async () => undefined,
        async () => 'x',
        ac.signal,
      ),
      { name: 'AbortedError' },
    );
  });
});
