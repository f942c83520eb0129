/**
 * The scale bench's report of the controller's V8 flag variants (bench/scale-report.ts): medians
 * per variant and step, the ratio of the second variant to the first, each variant's slope per
 * 1,000 volumes. Pure formatting of given runs (the bench itself runs against the lab).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ControllerRun,
  type VariantStep,
  variantSummary,
  variantTable,
} from '../../../bench/scale-report.ts';

/** A run whose CPU and memory figures grow with `n` (`k`: the variant's factor). */
function run(n: number, k: number, jitter: number, passSeen = n > 0): ControllerRun {
  const mem = (rss: number, anon: number) => ({ rss, anon, file: rss - anon });
  return {
    readyMs: 500 + jitter,
    startCpu: 400 * k + jitter,
    passMs: passSeen ? 100 + n / 10 : Number.NaN,
    passCpu: (20 + n / 50) * k + jitter,
    passSeen,
    idle: mem((80 + n / 1000) / k, 28),
    listMs: 50 + n / 20 + jitter,
    listCpu: (10 + n / 100) * k + jitter,
    pages: 1 + Math.floor(n / 1000),
    after: mem((80 + (14 * n) / 1000) / k, 28 + n / 1000),
  };
}

const step = (n: number): VariantStep => ({
  n,
  // three runs each: the median is the middle one (jitter 0)
  runs: { image: [-5, 0, 7].map((j) => run(n, 1, j)), opt: [3, 0, -9].map((j) => run(n, 2, j)) },
});

test('variantTable: medians, ratio opt/image per step, both slopes per 1,000 volumes', () => {
  const lines = variantTable([step(0), step(1000), step(3000)]);
  assert.match(lines[0]!, /medians of 3 runs per variant and step/);
  assert.match(lines[0]!, /end seen in 12 of 12 runs with volumes/);
  assert.equal(lines[1], '| figure | 0 | 1000 | 3000 | slope per 1,000 volumes, image / opt |');
  const row = (name: string) => lines.find((l) => l.startsWith(`| ${name} `)) ?? '';
  // pass CPU: image 20 + n/50, opt twice that; slope between the first and last step with volumes
  assert.equal(
    lines.filter((l) => l.startsWith('| — its CPU (ms)'))[0],
    '| — its CPU (ms) | 20 / 40 (×2.00) | 40 / 80 (×2.00) | 80 / 160 (×2.00) | +20.0 / +40.0 |',
  );
  // the listing's CPU: 10 + n/100
  assert.equal(
    lines.filter((l) => l.startsWith('| — its CPU (ms)'))[1],
    '| — its CPU (ms) | 10 / 20 (×2.00) | 20 / 40 (×2.00) | 40 / 80 (×2.00) | +10.0 / +20.0 |',
  );
  assert.equal(
    row('RSS after the listing (MiB)'),
    '| RSS after the listing (MiB) | 80.0 / 40.0 (×0.50) | 94.0 / 47.0 (×0.50) | 122.0 / 61.0 (×0.50) | +14.00 / +7.00 |',
  );
  // the pass's wall time is not known at 0 volumes (nothing stale to see its end by)
  assert.match(
    row('start-up reconciler pass after ready (ms)'),
    /^\| [^|]+\| – \/ – \(×–\) \| 200 \/ 200 \(×1\.00\) \|/,
  );
  assert.equal(lines.length, 3 + 12);
});

test('variantTable: no slopes with fewer than two steps with volumes', () => {
  const lines = variantTable([step(0), step(500)]);
  assert.ok(
    lines.slice(3).every((l) => l.endsWith('|  |')),
    lines.join('\n'),
  );
});

test('variantSummary: one line per step with the ratios', () => {
  const line = variantSummary(step(1000));
  assert.match(line, /^1000 volumes, image \/ opt \(median of 3 runs each\): /);
  assert.match(line, /pass CPU 40 \/ 80 ms \(×2\.00\)/);
  assert.match(line, /its CPU 20 \/ 40 ms \(×2\.00\)/);
  assert.match(line, /RSS after 94\.0 \/ 47\.0 MiB \(×0\.50\)/);
});
