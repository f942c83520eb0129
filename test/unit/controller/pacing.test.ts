import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pacer } from '../../../src/csi/controller/pacing.ts';

describe('Pacer', () => {
  it('estimates from the 25th percentile once three samples exist', () => {
    const p = new Pacer();
    assert.equal(p.estimate('k'), undefined);
    for (const ms of [500, 400, 900]) p.observe('k', ms);
    assert.equal(p.estimate('k'), 400);
    for (let i = 0; i < 30; i++) p.observe('k', 100);
    assert.equal(p.estimate('k'), 100, 'only recent history counts');
    p.observe('k', Number.NaN);
    assert.equal(p.estimate('other'), undefined);
  });

  it('checks around the estimate and falls back to the waiter; no history → fallback at once', async () => {
    const p = new Pacer();
    const signal = new AbortController().signal;
    let checks = 0;
    const none = await p.wait(
      'v',
      Date.now(),
      async () => {
        checks++;
        return 'early';
      },
      async () => 'fallback',
      signal,
    );
    assert.equal(none, 'fallback');
    assert.equal(checks, 0);
    for (let i = 0; i < 3; i++) p.observe('v', 100);
    const start = Date.now();
    const readyAt = start + 90;
    const got = await p.wait(
      'v',
      start,
      async () => {
        checks++;
        return Date.now() >= readyAt ? 'ready' : undefined;
      },
      async () => 'fallback',
      signal,
    );
    assert.equal(got, 'ready');
    assert.ok(checks >= 1 && checks <= 3, `checks ${checks}`);
    assert.ok(Date.now() - start < 130);
    const slow = await p.wait(
      'v',
      Date.now(),
      async () => undefined,
      async () => 'fallback',
      signal,
    );
    assert.equal(slow, 'fallback');
    const ac = new AbortController();
    ac.abort(new Error('deadline'));
    await assert.rejects(
      p.wait(
        'v',
        Date.now(),
        async () => undefined,
        async () => 'x',
        ac.signal,
      ),
      { name: 'AbortedError' },
    );
  });
});
