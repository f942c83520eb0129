/**
 * The chaos workload's retry of one operation (test/support/chaos/op-retry.ts) keeps polling a
 * CreateSnapshot that answers ready_to_use=false for as long as Cinder takes: the lab's
 * cinder-backup took 10-12 min per backup under load, and a 10 min bound counted such a backup as
 * never OK (and left it to the purge). Timers and the clock are Node's mock timers (the retry's
 * backoff and bound are the logic tested; the lab suites run the real driver).
 */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { type OpRecord, retryOp } from '../../support/chaos/op-retry.ts';

async function pollFor(readyAfterMs: number, failEvery = 0, failCode = 14): Promise<OpRecord> {
  const rec: OpRecord = {
    lifecycle: 0,
    kind: 'backup',
    target: 'b',
    tries: 0,
    ok: false,
    attempts: [],
    ms: 0,
  };
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    let settled = false;
    let n = 0;
    const done = retryOp(
      rec,
      async () => {
        if (failEvery > 0 && n++ % failEvery === 0) {
          throw Object.assign(new Error('try failed'), { code: failCode, details: 'injected' });
        }
        return Date.now() >= readyAfterMs;
      },
      { rand: () => 0.5, start: 0 },
    );
    void done.finally(() => {
      settled = true;
    });
    while (!settled) {
      await new Promise<void>((r) => setImmediate(r));
      mock.timers.tick(1000);
    }
    await done;
    return rec;
  } finally {
    mock.timers.reset();
  }
}

test('a backup ready after 12 minutes of ready_to_use=false ends OK', async () => {
  const rec = await pollFor(12 * 60_000);
  assert.equal(rec.ok, true);
  assert.ok(rec.tries > 100, `polled ${rec.tries} times`);
  assert.ok(rec.attempts.every((a) => a.code === 'NOT_READY'));
});

test('an operation never ready still ends, after the bound, as never OK', async () => {
  const rec = await pollFor(Number.POSITIVE_INFINITY);
  assert.equal(rec.ok, false);
  assert.ok(rec.ms >= 30 * 60_000 && rec.ms < 31 * 60_000, `ended after ${rec.ms} ms`);
});

test('a backup ready after 12 minutes with every other try UNAVAILABLE ends OK (transient codes bounded by time)', async () => {
  const rec = await pollFor(12 * 60_000, 2, 14);
  assert.equal(rec.ok, true);
  assert.ok(rec.attempts.some((a) => a.code === 'UNAVAILABLE'));
});

test('40 answers of a permanent code end the operation as never OK', async () => {
  const rec = await pollFor(12 * 60_000, 1, 9);
  assert.equal(rec.ok, false);
  assert.equal(rec.tries, 40);
});
