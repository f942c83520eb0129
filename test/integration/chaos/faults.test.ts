/**
 * Fault proxy suite (issue 10): the controller as a real process, its Cinder endpoint behind a
 * proxy that fails 10 % of the requests (500/503 before forwarding, a reset after Cinder acted, an
 * answer held past the call's deadline); a workload retrying each CSI call like the sidecars.
 * Checked against Cinder directly: nothing leaked or duplicated, no INTERNAL, every operation OK.
 * On failure the message carries the seed and the trace; reproduce with CHAOS_SEED=<seed>.
 * Bigger runs: `scripts/bench.sh chaos`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chaosSuiteRun } from '../../support/chaos/suite.ts';

test('chaos: 100 operations at 10 % Cinder faults strand nothing', async (t) => {
  const r = await chaosSuiteRun(
    t,
    { operations: 100, faultRate: 0.1, concurrency: 4 },
    (r) =>
      `${r.okOps}/${r.ops} operations OK, ${r.requests} Cinder requests, faults ${JSON.stringify(r.faults)}, ` +
      `${r.retries} retries, ${(r.ms / 1000).toFixed(0)} s`,
  );
  if (!r) return;
  assert.ok(
    r.faults.http500 + r.faults.http503 + r.faults.drop + r.faults.delay > 0,
    'no fault was injected',
  );
  assert.equal(r.purgeLeft, 0, 'the run left objects the purge could not remove');
});
