/**
 * Controller bench on the lab Cinder (keystone, admin project, backend `fake` unless
 * CTL_BENCH_TYPE is set). Run: node bench/controller.ts [--samples 8] [--concurrent 100]
 *
 *  1. CreateVolume through the controller service vs raw POST /volumes + GET every 20 ms until
 *     available: median latency of each and the median ratio (target <= 1.10).
 *  2. CreateSnapshot (ready_to_use) vs raw POST /snapshots + GET every 20 ms: same figures.
 *  3. N concurrent CreateVolume (distinct names) vs N raw concurrent creates (each polled at
 *     20 ms): wall times and ratio (target <= 1.2), Cinder HTTP requests per volume of the service
 *     path (target <= 6; counted by the session's HTTP observer, one per logical request), and
 *     duplicates (volumes sharing a CSI name: must be 0).
 * Everything is named `ctl-bench-...` and deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { StaticConnectorSource } from '../src/csi/connector-source.ts';
import { createControllerService, META } from '../src/csi/controller/index.ts';
import type { RpcContext } from '../src/csi/rpc.ts';
import { CinderClient } from '../src/openstack/cinder.ts';
import { OpenStackSession } from '../src/openstack/session.ts';
import { silentLogger } from '../src/util/logger.ts';
import { labConfig } from '../test/support/lab.ts';

const { values } = parseArgs({
  options: { samples: { type: 'string', default: '8' }, concurrent: { type: 'string', default: '100' } },
});
const SAMPLES = Number(values.samples);
const N = Number(values.concurrent);
const TYPE = process.env['CTL_BENCH_TYPE'] ?? 'fake';
const rand = () => randomBytes(3).toString('hex');

let requests = 0;
const os = new OpenStackSession({
  config: labConfig('keystone'),
  logger: silentLogger(),
  observer: { onResponse: () => void requests++ },
});
const cinder = new CinderClient({ session: os.service('block-storage'), logger: silentLogger() });
await cinder.negotiate();
const clusterId = `ctl-bench-${rand()}`;
const svc = createControllerService({
  cinder,
  connectors: new StaticConnectorSource({}),
  clusterId,
  driverName: 'cinder.csi.dev',
  topologyKey: 'topology.cinder.csi.dev/zone',
  logger: silentLogger(),
});
const ctx = (): RpcContext => ({
  signal: AbortSignal.timeout(300_000),
  deadline: Date.now() + 300_000,
  requestId: 'bench',
  log: silentLogger(),
});
const createReq = (name: string) => ({
  name,
  capacity_range: null,
  volume_capabilities: [
    {
      mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' },
      access_mode: { mode: 'SINGLE_NODE_WRITER' as const },
      access_type: 'mount' as const,
    },
  ],
  parameters: { type: TYPE },
  secrets: {},
  volume_content_source: null,
  accessibility_requirements: null,
  mutable_parameters: {},
});

const rawVolumes: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rawCreate(name: string): Promise<string> {
  const v = await cinder.createVolume({
    size: 1,
    name,
    volume_type: TYPE,
    metadata: { [META.cluster]: clusterId },
  });
  rawVolumes.push(v.id);
  for (;;) {
    await sleep(20);
    const s = await cinder.getVolume(v.id);
    if (s.status === 'available') return v.id;
    if (s.status.startsWith('error')) throw new Error(`raw volume ${v.id} went to ${s.status}`);
  }
}

async function rawSnapshot(volumeId: string, name: string): Promise<string> {
  const s = await cinder.createSnapshot({
    volume_id: volumeId,
    name,
    metadata: { [META.cluster]: clusterId },
  });
  for (;;) {
    await sleep(20);
    const g = await cinder.getSnapshot(s.id);
    if (g.status === 'available') return s.id;
    if (g.status.startsWith('error')) throw new Error(`raw snapshot ${s.id} went to ${g.status}`);
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmt = (ms: number) => `${ms.toFixed(0)} ms`;

async function deleteAllVolumes(): Promise<void> {
  const ids: string[] = [];
  for await (const v of cinder.listVolumes({ metadata: { [META.cluster]: clusterId } })) ids.push(v.id);
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(ids.slice(i, i + 20).map((id) => cinder.deleteVolume(id).catch(() => {})));
  }
}

try {
  // Warm-up: a running controller has learned its ready times (pacing.ts); give it three creates
  // and three snapshots of history first, as after a few minutes of real use.
  const warm = await svc.CreateVolume(createReq(`ctl-bench-warm-${rand()}`), ctx());
  for (let i = 0; i < 2; i++) await svc.CreateVolume(createReq(`ctl-bench-warm-${rand()}`), ctx());
  for (let i = 0; i < 3; i++) {
    const s = await svc.CreateSnapshot(
      {
        name: `ctl-bench-warmsnap-${rand()}`,
        source_volume_id: warm.volume?.volume_id ?? '',
        secrets: {},
        parameters: {},
      },
      ctx(),
    );
    await svc.DeleteSnapshot({ snapshot_id: s.snapshot?.snapshot_id ?? '', secrets: {} }, ctx());
  }

  // 1. single CreateVolume, interleaved samples
  const svcTimes: number[] = [];
  const rawTimes: number[] = [];
  const svcReqs: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const [raw] = await timed(() => rawCreate(`ctl-bench-raw-${rand()}`));
    const before = requests;
    const [t] = await timed(() => svc.CreateVolume(createReq(`ctl-bench-${rand()}`), ctx()));
    svcReqs.push(requests - before);
    rawTimes.push(raw);
    svcTimes.push(t);
  }
  console.log(
    `CreateVolume (${TYPE}, n=${SAMPLES}): service median ${fmt(median(svcTimes))}, raw@20ms median ${fmt(median(rawTimes))}`,
  );
  console.log(
    `  median ratio ${(median(svcTimes) / median(rawTimes)).toFixed(2)} (target <= 1.10); requests/volume median ${median(svcReqs)}`,
  );
  console.log(`  service samples: ${svcTimes.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`  raw samples:     ${rawTimes.map((x) => x.toFixed(0)).join(' ')}`);

  // 2. CreateSnapshot
  const src = await svc.CreateVolume(createReq(`ctl-bench-src-${rand()}`), ctx());
  const srcId = src.volume?.volume_id ?? '';
  const snapSvc: number[] = [];
  const snapRaw: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const [raw, rid] = await timed(() => rawSnapshot(srcId, `ctl-bench-rawsnap-${rand()}`));
    const [t, res] = await timed(() =>
      svc.CreateSnapshot(
        { name: `ctl-bench-snap-${rand()}`, source_volume_id: srcId, secrets: {}, parameters: {} },
        ctx(),
      ),
    );
    if (!res.snapshot?.ready_to_use) throw new Error('snapshot not ready');
    snapRaw.push(raw);
    snapSvc.push(t);
    await cinder.deleteSnapshot(rid);
    await svc.DeleteSnapshot({ snapshot_id: res.snapshot.snapshot_id ?? '', secrets: {} }, ctx());
    await cinder.waitForSnapshot(rid, { target: [], gone: true });
  }
  console.log(
    `CreateSnapshot (n=${SAMPLES}): service median ${fmt(median(snapSvc))}, raw@20ms median ${fmt(median(snapRaw))}`,
  );
  console.log(`  median ratio ${(median(snapSvc) / median(snapRaw)).toFixed(2)} (target <= 1.10)`);
  await deleteAllVolumes();
  await sleep(3000);

  // 3. N concurrent
  const [rawWall] = await timed(() =>
    Promise.all(Array.from({ length: N }, () => rawCreate(`ctl-bench-rawc-${rand()}`))),
  );
  await deleteAllVolumes();
  await sleep(5000);
  const names = Array.from({ length: N }, (_, i) => `ctl-bench-c${i}-${rand()}`);
  const before = requests;
  const [svcWall, results] = await timed(() =>
    Promise.allSettled(names.map((n) => svc.CreateVolume(createReq(n), ctx()))),
  );
  const used = requests - before;
  const failed = results.filter((r) => r.status === 'rejected');
  const byName = new Map<string, number>();
  for await (const v of cinder.listVolumes({ metadata: { [META.cluster]: clusterId } })) {
    const n = v.metadata?.[META.csiName];
    if (n) byName.set(n, (byName.get(n) ?? 0) + 1);
  }
  const duplicates = [...byName.values()].filter((c) => c > 1).length;
  console.log(
    `${N} concurrent CreateVolume: service wall ${fmt(svcWall)}, raw@20ms wall ${fmt(rawWall)}, ratio ${(svcWall / rawWall).toFixed(2)} (target <= 1.2)`,
  );
  console.log(
    `  failures ${failed.length}${failed.length ? ` (${String((failed[0] as PromiseRejectedResult).reason)})` : ''}; Cinder requests ${used} = ${(used / N).toFixed(2)} per volume (target <= 6); duplicates ${duplicates} (must be 0)`,
  );
} finally {
  await deleteAllVolumes();
  await os.close();
}
