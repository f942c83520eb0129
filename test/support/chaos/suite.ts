/**
 * The test body the CI chaos suites (test/integration/chaos: crash, faults) share: skip without the
 * lab, the seed (CHAOS_SEED or random, printed so a failure can be reproduced), runChaos with the
 * suites' common settings (EXCLUDED_OPS left out, one backup lifecycle, progress as diagnostics),
 * the run's summary line, and no violation. The suite asserts its own figures on the report.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { labAvailable } from '../lab.ts';
import { EXCLUDED_OPS } from './excluded.ts';
import { type ChaosOptions, type ChaosReport, runChaos, violations } from './run.ts';

export type ChaosSuiteOptions = Omit<ChaosOptions, 'seed' | 'exclude' | 'backupEvery' | 'log'>;

/** Runs the chaos workload for test `t`; undefined when the test skipped (no lab). */
export async function chaosSuiteRun(
  t: TestContext,
  opts: ChaosSuiteOptions,
  summary: (r: ChaosReport) => string,
): Promise<ChaosReport | undefined> {
  const why = await labAvailable();
  if (why) {
    t.skip(why);
    return undefined;
  }
  const seed = Number(process.env['CHAOS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed}`);
  const r = await runChaos({
    seed,
    ...opts,
    exclude: EXCLUDED_OPS.map((e) => e.op),
    // One backup lifecycle (the first): the lab's cinder-backup takes minutes per backup.
    backupEvery: 1000,
    log: (l) => t.diagnostic(l),
  });
  t.diagnostic(summary(r));
  assert.equal(violations(r), 0, `chaos violations (seed ${seed}):\n${r.trace}`);
  return r;
}
