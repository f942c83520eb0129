/**
 * Chaos figures (issue 10): the controller as a real process behind the fault proxy, a workload
 * retrying each CSI call the way the sidecars do, invariants checked against Cinder directly.
 *
 *   node bench/chaos.ts                    the three standard runs: 1,000 operations at 10 % faults,
 *                                          300 at 30 %, 50 kill rounds
 *   node bench/chaos.ts --ops 100 --rate 0.1 [--kills 15] [--seed N] [--concurrency 3] [--type tgt]
 *   add --exclude ci (the CI suites' exclusion list) or --exclude publish,backup to skip kinds
 *   node bench/chaos.ts --purge chaos-<seed>-<hex>   removes what an interrupted run left
 *
 * Prints per run: operations (OK / total), lifecycles, Cinder requests, faults by kind, retries,
 * kills, leaks, duplicates, INTERNAL, operations never OK, time; and on any violation the seed and
 * the operation trace. Exit code 1 when a run had a violation. Needs the lab (test/lab-up.sh).
 */
import { parseArgs } from 'node:util';
import { EXCLUDED_OPS } from '../test/support/chaos/excluded.ts';
import { RARE_POINTS } from '../test/support/chaos/kills.ts';
import { OP_KINDS, type OpKind } from '../test/support/chaos/ops.ts';
import {
  type ChaosOptions,
  type ChaosReport,
  purgeRun,
  runChaos,
  violations,
} from '../test/support/chaos/run.ts';
import { labAvailable } from '../test/support/lab.ts';

const { values } = parseArgs({
  options: {
    ops: { type: 'string' },
    rate: { type: 'string' },
    kills: { type: 'string' },
    seed: { type: 'string' },
    concurrency: { type: 'string' },
    type: { type: 'string' },
    verbose: { type: 'boolean' },
    purge: { type: 'string' },
    exclude: { type: 'string' },
  },
});

const why = await labAvailable();
if (why) {
  console.error(`bench/chaos: ${why}`);
  process.exit(2);
}

if (values.purge) {
  if (!/^chaos-[0-9a-z]+-/.test(values.purge))
    throw new Error('--purge takes a run prefix: chaos-<seed>-...');
  const left = await purgeRun(values.purge);
  console.log(`purged ${values.purge}*: ${left} objects could not be removed`);
  process.exit(left > 0 ? 1 : 0);
}

const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const common: Partial<ChaosOptions> = {
  concurrency: Number(values.concurrency ?? 4),
  ...(values.type ? { volumeType: values.type } : {}),
  ...(values.exclude ? { exclude: parseExclude(values.exclude) } : {}),
  ...(values.verbose ? { log: (l: string) => console.log(`  ${l}`) } : {}),
  progress: (l: string) => console.log(`  .. ${l}`),
};
const runs: ChaosOptions[] =
  values.ops || values.kills
    ? [
        {
          seed,
          operations: Number(values.ops ?? 100),
          faultRate: Number(values.rate ?? (values.kills ? 0 : 0.1)),
          killRounds: Number(values.kills ?? 0),
          killFocus: RARE_POINTS,
          ...common,
        },
      ]
    : [
        { seed, operations: 1000, faultRate: 0.1, ...common },
        { seed: seed + 1, operations: 300, faultRate: 0.3, ...common },
        { seed: seed + 2, operations: 15, faultRate: 0, killRounds: 50, killFocus: RARE_POINTS, ...common },
      ];

let bad = 0;
for (const o of runs) {
  const label = o.killRounds
    ? `${o.killRounds} kill rounds`
    : `${o.operations} operations at ${Math.round(o.faultRate * 100)} % faults`;
  console.log(`== chaos: ${label} (seed ${o.seed})`);
  const r = await runChaos(o);
  print(r);
  if (violations(r) > 0) {
    bad++;
    console.log(r.trace);
  }
}
process.exit(bad > 0 ? 1 : 0);

/** `ci` = the CI suites' list (test/support/chaos/excluded.ts), else comma-separated kinds. */
function parseExclude(text: string): OpKind[] {
  if (text === 'ci') return EXCLUDED_OPS.map((e) => e.op);
  const kinds = text.split(',').filter(Boolean);
  for (const k of kinds) {
    if (!(OP_KINDS as readonly string[]).includes(k)) throw new Error(`--exclude: unknown operation ${k}`);
  }
  return kinds as OpKind[];
}

function print(r: ChaosReport): void {
  const f = r.faults;
  const rows: [string, string][] = [
    ['operations OK / run', `${r.okOps} / ${r.ops} (${r.lifecycles} volume lifecycles)`],
    ['Cinder requests', String(r.requests)],
    [
      'faults injected',
      `${f.http500 + f.http503 + f.drop + f.delay} (500: ${f.http500}, 503: ${f.http503}, dropped after Cinder acted: ${f.drop}, delayed past the deadline: ${f.delay})`,
    ],
    [
      'faults by method',
      Object.entries(r.faultsByMethod)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || '-',
    ],
    ['retries (CSI calls repeated)', String(r.retries)],
    [
      'kills',
      `${r.kills}${
        r.kills
          ? ` (${Object.entries(r.killPoints)
              .map(([k, n]) => `${k}: ${n}`)
              .join('; ')})`
          : ''
      }`,
    ],
    [
      'non-OK answers by code',
      Object.entries(r.codes)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || '-',
    ],
    ['leaked objects', String(r.leaked.length)],
    ['duplicate objects', String(r.duplicates.length + r.duplicateAttachments.length)],
    ['INTERNAL answers (operations)', String(r.internal.length)],
    ['operations never OK', String(r.neverOk.length)],
    [
      'median time per operation',
      Object.entries(r.medianMs)
        .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`)
        .join(', '),
    ],
    ['time', `${(r.ms / 1000).toFixed(1)} s`],
  ];
  for (const [k, v] of rows) console.log(`  ${k.padEnd(30)} ${v}`);
  for (const l of [...r.leaked, ...r.duplicates, ...r.duplicateAttachments, ...r.internal, ...r.neverOk]) {
    console.log(`  ! ${l}`);
  }
  if (r.purgeLeft > 0) console.log(`  ! purge could not remove ${r.purgeLeft} objects of this run`);
}
