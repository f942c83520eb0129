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
