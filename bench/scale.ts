/**
 * Scale bench (issue 13): the controller with thousands of volumes in the lab (backend `fake`).
 *   node bench/scale.ts [--steps 500,1000,2000,5000] [--parallel 25] [--attached 20] [--passes 3]
 *                       [--flag-variants [--variant-runs 3]]
 *   node bench/scale.ts --purge [scale-bench-<hex>]    (what an interrupted run left; default: all)
 *
 * Grows one set of volumes, all named and tagged `scale-bench-<hex>` (cluster id = that prefix),
 * through the steps; at each step it measures
 *  - ListVolumes over all pages (the controller service in this process, the real Cinder client):
 *    wall time, pages, Cinder requests; with Cinder's default page (max_entries 0) and 100;
 *  - the stale-attachment reconciler's pass (src/kube/reconciler/, real Cinder; Kubernetes is the
 *    lab's kube-apiserver when it is up, else an empty stand-in, printed): time and Cinder requests
 *    per pass, median of --passes; `--attached` volumes carry a reserved attachment that no
 *    VolumeAttachment accounts for, so every pass lists the attachments and the Kubernetes objects
 *    and finds them stale (grace 1 h: nothing is deleted);
 *  - the controller process (bin/cinder-csi --mode controller with this cluster id, noauth, log level
 *    info, with the lab's kubeconfig when there is one, so its start-up reconciler pass sees the
 *    volumes too; scale-controller.ts): CPU to ready, its start-up pass (wall and CPU), idle RSS,
 *    a ListVolumes of all pages over gRPC (wall and CPU), RSS after it. `--flag-variants` runs it
 *    `--variant-runs` times with each V8 flag variant (the image's flags, interpreter-only, and `opt`:
 *    V8's optimizing compilers on, through CINDER_CSI_NODE_FLAGS), interleaved in alternating order,
 *    and prints the figures opt/image per step with each variant's slope per 1,000 volumes.
 * Then it prints each figure's growth: the slope per 1,000 volumes between the first and the last
 * step, and how far the middle steps are from that line (linear when small).
 *
 * Bounded: creates run --parallel at a time with 3 tries each, every wait has a limit, and the
 * `finally` deletes the run's attachments and volumes (and waits, bounded, until they are gone);
 * SIGINT/SIGTERM run the same clean-up. `--purge` removes every `scale-bench-*` volume (or one run's).
 *
 * Parts: scale-volumes.ts (parallel creates, listing, clean-up), scale-controller.ts (the controller
 * process and its RSS), scale-report.ts (the rows and the growth table).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { StaticConnectorSource } from '../src/csi/connector-source.ts';
import { createControllerService, META } from '../src/csi/controller/index.ts';
import type { RpcContext } from '../src/csi/rpc.ts';
import type { StaleAttachmentReconcilerOptions } from '../src/kube/reconciler.ts';
import { StaleAttachmentReconciler } from '../src/kube/reconciler.ts';
import { CinderClient } from '../src/openstack/cinder.ts';
import { OpenStackSession } from '../src/openstack/session.ts';
import { silentLogger } from '../src/util/logger.ts';
import { kubeLab } from '../test/integration/kube/kube-lab.ts';
import { csiClientPackage } from '../test/support/csi-client.ts';
import { labConfig } from '../test/support/lab.ts';
import { controllerRun, FLAG_VARIANTS } from './scale-controller.ts';
import {
  type ControllerRun,
  type Listing,
  printGrowth,
  type Row,
  type VariantStep,
  variantMedian,
  variantSummary,
  variantTable,
} from './scale-report.ts';
import { median, PREFIX_ROOT, sleep, volumeOps } from './scale-volumes.ts';

const { values, positionals } = parseArgs({
  options: {
    steps: { type: 'string', default: '500,1000,2000,5000' },
    parallel: { type: 'string', default: '25' },
    attached: { type: 'string', default: '20' },
    passes: { type: 'string', default: '3' },
    'flag-variants': { type: 'boolean', default: false },
    'variant-runs': { type: 'string', default: '3' },
    purge: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const STEPS = values.steps
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0)
  .sort((a, b) => a - b);
const PARALLEL = Math.min(Math.max(Number(values.parallel), 1), 100);
const ATTACHED = Math.max(Number(values.attached), 0);
const PASSES = Math.max(Number(values.passes), 1);
const VARIANTS = values['flag-variants'] ? Object.keys(FLAG_VARIANTS) : ['image'];
const VARIANT_RUNS = values['flag-variants']
  ? Math.min(Math.max(Number(values['variant-runs']) || 1, 1), 20)
  : 1;
const TYPE = process.env['SCALE_BENCH_TYPE'] ?? 'fake';
const MAX_VOLUMES = 20_000;
if (STEPS.length === 0 || STEPS.at(-1)! > MAX_VOLUMES) throw new Error(`--steps: 1..${MAX_VOLUMES}`);
if (!values.purge && !existsSync(join(import.meta.dirname, '../dist/bundle/main.js'))) {
  throw new Error('build first: npm run bundle (bin/cinder-csi runs dist/bundle/main.js)');
}

let requests = 0;
const session = new OpenStackSession({
  config: labConfig('noauth'),
  logger: silentLogger(),
  observer: { onResponse: () => void requests++ },
});
const cinder = new CinderClient({ session: session.service('block-storage'), logger: silentLogger() });

const { pool, tries, listOwn, purge } = volumeOps(cinder, PARALLEL);

if (values.purge) {
  const prefix = positionals.find((a) => a.startsWith(PREFIX_ROOT));
  try {
    await cinder.negotiate();
    const left = await purge(prefix, 30 * 60_000);
    console.log(left === 0 ? `purged ${prefix ?? `${PREFIX_ROOT}*`}` : `${left} volumes left`);
  } finally {
    await session.close();
  }
  process.exit(0);
}

const prefix = `${PREFIX_ROOT}${randomBytes(3).toString('hex')}`;
const svc = createControllerService({
  cinder,
  connectors: new StaticConnectorSource({}),
  clusterId: prefix,
  driverName: 'cinder.csi.dev',
  topologyKey: 'topology.cinder.csi.dev/zone',
  logger: silentLogger(),
});
const ctx = (): RpcContext => ({
  signal: AbortSignal.timeout(600_000),
  deadline: Date.now() + 600_000,
  requestId: 'scale',
  log: silentLogger(),
});

/** Creates volumes `from`..`to-1` and waits (bounded) until none of the run is `creating`. */
async function grow(from: number, to: number): Promise<{ ms: number; errors: number; stuck: number }> {
  const t0 = performance.now();
  await pool(
    Array.from({ length: to - from }, (_, i) => from + i),
    async (i) => {
      // A signal's clean-up runs beside this flow: no create may start once it began.
      if (stopping) return;
      await tries(`create ${prefix}-${i}`, () =>
        cinder.createVolume({
          size: 1,
          name: `${prefix}-${String(i).padStart(5, '0')}`,
          volume_type: TYPE,
          metadata: { [META.cluster]: prefix },
        }),
      );
    },
  );
  const limitMs = 120_000 + (to - from) * 200;
  for (;;) {
    const all = await listOwn(prefix);
    const creating = all.filter((v) => v.status === 'creating').length;
    const errors = all.filter((v) => v.status.startsWith('error')).length;
    if (stopping || (creating === 0 && all.length >= to))
      return { ms: performance.now() - t0, errors, stuck: 0 };
    if (performance.now() - t0 > limitMs) {
      // A few creates the lab lost stay `creating` for ever (the clean-up resets and deletes them);
      // they are still listed, so the step goes on; more than 2 % is a broken lab.
      if (creating <= Math.max(2, to * 0.02) && all.length >= to) {
        return { ms: performance.now() - t0, errors, stuck: creating };
      }
      throw new Error(`${creating} volumes still creating (${all.length}/${to}) after ${limitMs / 1000} s`);
    }
    await sleep(2000);
  }
}

async function listAll(maxEntries: number): Promise<Listing> {
  const r0 = requests;
  const t0 = performance.now();
  let token = '';
  let pages = 0;
  let n = 0;
  do {
    const res = await svc.ListVolumes({ max_entries: maxEntries, starting_token: token }, ctx());
    pages++;
    n += res.entries?.length ?? 0;
    token = res.next_token ?? '';
    if (pages > 10_000) throw new Error('ListVolumes: more than 10,000 pages');
  } while (token);
  return { ms: performance.now() - t0, pages, reqs: requests - r0, n };
}

type Kube = StaleAttachmentReconcilerOptions['kube'];
const emptyKube: Kube = {
  listVolumeAttachments: async () => [],
  listPersistentVolumes: async () => [],
  createEvent: async () => {},
  nodes: {
    list: async () => ({ items: [], resourceVersion: '0' }),
    watch: async () => {},
  } as unknown as Kube['nodes'],
};

/** The controller process `VARIANT_RUNS` times per flag variant, alternating their order. */
async function controllers(n: number, stale: number, settleMs: number): Promise<VariantStep> {
  const runs: Record<string, ControllerRun[]> = Object.fromEntries(VARIANTS.map((v) => [v, []]));
  for (let i = 0; i < VARIANT_RUNS; i++) {
    for (const v of i % 2 ? [...VARIANTS].reverse() : VARIANTS) {
      const run = await controllerRun({
        prefix,
        dir,
        kubeconfig,
        v8Flags: FLAG_VARIANTS[v],
        stale,
        settleMs,
      });
      runs[v]!.push(run);
    }
  }
  const step = { n, runs };
  if (VARIANTS.length > 1) console.log(variantSummary(step));
  return step;
}
const image = (step: VariantStep, f: (r: ControllerRun) => number) => variantMedian(step, 'image', f);

const dir = mkdtempSync(join(tmpdir(), 'bench-scale-'));
let stopping = false;
const onSignal = () => {
  if (stopping) return;
  stopping = true;
  console.error(`interrupted: deleting ${prefix}'s volumes (bounded, 10 min)`);
  void purge(prefix, 600_000).finally(() => process.exit(130));
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

const rows: Row[] = [];
const steps: VariantStep[] = [];
const lab = await kubeLab().catch((err: Error) => ({ reason: err.message, admin: undefined, close() {} }));
const kube: Kube = lab.admin ?? emptyKube;
const kubeconfig = lab.admin ? (lab as { adminKubeconfig: string }).adminKubeconfig : undefined;
try {
  csiClientPackage();
  await cinder.negotiate();
  console.log(
    `scale bench ${prefix}: steps ${STEPS.join(', ')}, ${PARALLEL} creates in flight, ${ATTACHED} reserved attachments, ` +
      `Kubernetes: ${lab.admin ? 'lab kube-apiserver' : `empty stand-in (${lab.reason})`}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  const reconciler = new StaleAttachmentReconciler({
    cinder,
    kube,
    driverName: 'cinder.csi.dev',
    clusterVolumes: { filters: { metadata: { [META.cluster]: prefix } } },
    attachmentHostMetadataPrefix: META.attachmentPrefix,
    graceMs: 3_600_000,
    logger: silentLogger(),
  });
  const base = await controllers(0, 0, 2000);
  steps.push(base);
  console.log(
    `0 volumes: controller RSS ${image(base, (r) => r.after.rss).toFixed(1)} MiB (anon ${image(base, (r) => r.after.anon).toFixed(1)})${kubeconfig ? ', with the Kubernetes client' : ''}`,
  );
  let have = 0;
  for (const n of STEPS) {
    if (stopping) break;
    const g = await grow(have, n);
    if (have === 0 && ATTACHED > 0) {
      const first = (await listOwn(prefix)).filter((v) => v.status === 'available').slice(0, ATTACHED);
      await pool(first, async (v) => {
        await tries(`attach ${v.id}`, () => cinder.createAttachment({ volume_uuid: v.id }));
      });
    }
    have = n;
    const list0 = await listAll(0);
    const list100 = await listAll(100);
    const passes: { ms: number; reqs: number; examined: number }[] = [];
    for (let i = 0; i < PASSES; i++) {
      const r0 = requests;
      const t0 = performance.now();
      const res = await reconciler.runOnce();
      passes.push({ ms: performance.now() - t0, reqs: requests - r0, examined: res.examined });
    }
    const passMs = median(passes.map((p) => p.ms));
    const step = await controllers(n, passes[0]!.examined, Math.max(2000, passMs * 2));
    steps.push(step);
    const proc = {
      rss: image(step, (r) => r.after.rss),
      anon: image(step, (r) => r.after.anon),
      listMs: image(step, (r) => r.listMs),
    };
    const row: Row = {
      n,
      createS: g.ms / 1000,
      list0,
      list100,
      passMs,
      passReqs: median(passes.map((p) => p.reqs)),
      examined: passes[0]!.examined,
      rss: proc.rss,
      anon: proc.anon,
      grpcListMs: proc.listMs,
    };
    rows.push(row);
    console.log(
      `${n} volumes (created in ${row.createS.toFixed(0)} s, ${g.errors} in error, ${g.stuck} stuck creating): ` +
        `ListVolumes all pages ${list0.ms.toFixed(0)} ms / ${list0.pages} pages / ${list0.reqs} Cinder requests (${list0.n} entries; gRPC to the process ${proc.listMs.toFixed(0)} ms), ` +
        `page 100: ${list100.ms.toFixed(0)} ms / ${list100.pages} pages / ${list100.reqs} requests; ` +
        `reconciler pass ${passMs.toFixed(0)} ms, ${row.passReqs} Cinder requests, ${row.examined} attachments examined; ` +
        `controller RSS ${proc.rss.toFixed(1)} MiB (anon ${proc.anon.toFixed(1)}); load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
    );
  }
  printGrowth(rows);
  if (VARIANTS.length > 1) for (const line of variantTable(steps)) console.log(line);
} finally {
  if (!stopping) {
    const t0 = performance.now();
    const left = await purge(prefix, 1_800_000);
    console.log(`clean-up: ${left} left, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  lab.close();
  rmSync(dir, { recursive: true, force: true });
  await session.close();
}
