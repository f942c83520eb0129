/**
 * The big fuzz run (issue 11): 20,000 generated hostile requests with a random seed (or --seed)
 * against the driver as a real process in `--mode all` and the lab Cinder; the same harness and
 * invariants as the CI test (test/integration/fuzz/fuzz.test.ts, 2,000 with a fixed seed).
 *   node bench/fuzz.ts [--requests 20000] [--seed N] [--concurrency 8]
 * Prints the seed first (replay: --seed N), then the figures: counts per gRPC code, max and p99
 * latency, Probe loop results, connection teardowns, every violation with its request, and the
 * known (owned, test/support/fuzz/known.ts) violations by id. Exit code 1 on any violation.
 * Needs root (the node service) and the lab (test/lab-up.sh).
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { formatResult, runFuzz } from '../test/support/fuzz/harness.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : randomInt(2 ** 31);
const requests = Number(values.requests);
console.log(`fuzz: seed=${seed} requests=${requests} (replay: bash scripts/bench.sh fuzz --seed ${seed})`);
const t0 = performance.now();
const r = await runFuzz({
  seed,
  requests,
  concurrency: Number(values.concurrency),
  progress: (line) => console.log(`  ${line} (${((performance.now() - t0) / 1000).toFixed(0)} s)`),
});
console.log(formatResult(r));
console.log(
  `wall time ${((performance.now() - t0) / 1000).toFixed(0)} s, ${(r.requests / ((performance.now() - t0) / 1000)).toFixed(1)} requests/s`,
);
process.exitCode = r.violations.length > 0 ? 1 : 0;
