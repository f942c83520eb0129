/**
 * The fuzz suite in CI (issue 11): 2,000 generated hostile requests with a fixed seed against the
 * driver as a real process (`--mode all`, roots under a temp dir) and the lab Cinder. The bigger
 * run with a random seed is `scripts/bench.sh fuzz`. Invariants: test/support/fuzz/harness.ts;
 * known, owned violations: test/support/fuzz/known.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatResult, formatViolation, runFuzz } from '../../support/fuzz/harness.ts';
import { labAvailable } from '../../support/lab.ts';

const SEED = Number(process.env['CSI_FUZZ_SEED'] ?? 20261201);
const REQUESTS = Number(process.env['CSI_FUZZ_REQUESTS'] ?? 2000);

test(`${REQUESTS} hostile requests (seed ${SEED}): no INTERNAL/UNKNOWN, no teardown, no leak, no slow reply`, async (t) => {
  const skip = await labAvailable();
  if (skip) return t.skip(skip);
  if (process.getuid?.() !== 0) return t.skip('needs root (the node service in --mode all)');
  const r = await runFuzz({ seed: SEED, requests: REQUESTS });
  t.diagnostic(formatResult(r));
  assert.ok(r.requests >= REQUESTS, `ran ${r.requests} of ${REQUESTS} requests`);
  assert.ok(r.probes.ok > 0, 'the concurrent Probe loop ran');
  assert.deepEqual(
    r.violations.map((v) => `seed=${SEED} ${formatViolation(v)}`),
    [],
    'invariant violations (replay with CSI_FUZZ_SEED)',
  );
});
