/**
 * Controller bench on the lab Cinder (keystone, admin project, backend `fake` unless
 * CTL_BENCH_TYPE is set; CTL_BENCH_AUTH=noauth uses the lab's noauth API instead). Run: node bench/controller.ts [--samples 9] [--concurrent 100] [--pairs 2]
 *
 * Every figure is the service path against the raw path in the same run, in interleaved pairs
 * whose order alternates (raw first, then service first, ...), so that load drift on the shared
 * lab hits both alike; ratios are medians of the per-pair ratios. The raw path is what a client
 * with no idempotency needs: POST, then GET every 20 ms until available.
 *  1. CreateVolume vs raw create: latency and Cinder requests per volume of each path.
 *  2. CreateSnapshot (ready_to_use) vs raw POST /snapshots + GET every 20 ms.
 *  3. N concurrent CreateVolume (distinct names) vs N concurrent raw creates, `--pairs` pairs:
 *     wall time, requests per volume of each path, failures, duplicates (volumes sharing a CSI
 *     name: must be 0).
 * Requests are counted by the session's HTTP observer (one per logical request). Every wait is
 * bounded (WAIT_LIMIT_MS); everything is named `ctl-bench-...`, carries this run's cluster id and
 * is deleted in `finally` (snapshots first, then volumes; what cannot be deleted is printed).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { StaticConnectorSource } from '../src/csi/connector-source.ts';
import { createControllerService, META } from '../src/csi/controller/index.ts';
import type { RpcContext } from '../src/csi/rpc.ts';
import { CinderClient } from '../src/openstack/cinder.ts';
import { OpenStackSession } from '../src/openstack/session.ts';
import { silentLogger } from '../src/util/logger.ts';
import { createReq as labCreateReq } from '../test/integration/controller/lab.ts';
import { labConfig } from '../test/support/lab.ts';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '9' },
    concurrent: { type: 'string', default: '100' },
    pairs: { type: 'string', default: '2' },
  },
});
const SAMPLES = Number(values.samples);
const N = Number(values.concurrent);
const PAIRS = Number(values.pairs);
const TYPE = process.env['CTL_BENCH_TYPE'] ?? 'fake';
/** The lab's Keystone-mode API (default) or its noauth API (CTL_BENCH_AUTH=noauth). */
const AUTH = process.env['CTL_BENCH_AUTH'] === 'noauth' ? 'noauth' : 'keystone';
const WAIT_LIMIT_MS = 180_000;
const rand = () => randomBytes(3).toString('hex');

let requests = 0;
const os = new OpenStackSession({
  config: labConfig(AUTH),
  logger: silentLogger(),
  observer: { onResponse: () => void requests++ },
});
const cinder = new CinderClient({ session: os.service('block-storage'), logger: silentLogger() });
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
  signal: AbortSignal.timeout(WAIT_LIMIT_MS),
  deadline: Date.now() + WAIT_LIMIT_MS,
  requestId: 'bench',
  log: silentLogger(),
});
const createReq = (name: string) => labCreateReq(name, { parameters: { type: TYPE } });
const snapshotIds = new Set<string>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GETs `get` every 20 ms until available; bounded. */
async function poll20(what: string, get: () => Promise<{ status: string }>): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    await sleep(20);
    const s = await get();
    if (s.status === 'available') return;
    if (s.status.startsWith('error')) throw new Error(`${what} went to ${s.status}`);
    if (Date.now() > deadline) throw new Error(`${what} still ${s.status} after ${WAIT_LIMIT_MS / 1000} s`);
  }
}

async function rawCreate(name: string): Promise<string> {
  const v = await cinder.createVolume({
    size: 1,
    name,
    volume_type: TYPE,
    metadata: { [META.cluster]: clusterId },
  });
  await poll20(`raw volume ${v.id}`, () => cinder.getVolume(v.id));
  return v.id;
}

async function rawSnapshot(volumeId: string, name: string): Promise<string> {
  const s = await cinder.createSnapshot({
    volume_id: volumeId,
    name,
    metadata: { [META.cluster]: clusterId },
  });
  snapshotIds.add(s.id);
  await poll20(`raw snapshot ${s.id}`, () => cinder.getSnapshot(s.id));
  return s.id;
}

/** Runs `fn`, returning its wall time and the Cinder requests it made (calls run one at a time). */
async function measured<T>(fn: () => Promise<T>): Promise<{ ms: number; reqs: number; value: T }> {
  const r0 = requests;
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, reqs: requests - r0, value };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const f0 = (ms: number) => ms.toFixed(0);

/** Runs the raw and the service side of pair `i` in alternating order. */
async function pair<R, S>(i: number, raw: () => Promise<R>, service: () => Promise<S>): Promise<[R, S]> {
  if (i % 2 === 0) {
    const r = await raw();
    return [r, await service()];
  }
  const s = await service();
  return [await raw(), s];
}

function report(
  what: string,
  n: number,
  raw: { ms: number; reqs: number }[],
  service: { ms: number; reqs: number }[],
  goal: string,
): void {
  const ratios = raw.map((r, i) => service[i]!.ms / r.ms);
  console.log(
    `${what} (${TYPE}, ${raw.length} pairs): service median ${f0(median(service.map((s) => s.ms)))} ms, ` +
      `raw median ${f0(median(raw.map((r) => r.ms)))} ms; ratio median ${median(ratios).toFixed(2)} ` +
      `(pairs ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; goal ${goal})`,
  );
  console.log(
    `  Cinder requests per ${n > 1 ? 'volume' : 'call'}: service ${(median(service.map((s) => s.reqs)) / n).toFixed(2)}, raw@20ms ${(median(raw.map((r) => r.reqs)) / n).toFixed(2)}`,
  );
}

/** Deletes this run's snapshots, then its volumes, waiting (bounded) until they are gone. */
async function deleteAll(): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (const id of snapshotIds) await cinder.deleteSnapshot(id).catch(() => {});
  for (const id of snapshotIds) {
    await cinder
      .waitForSnapshot(id, {
        target: [],
        gone: true,
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      })
      .then(() => snapshotIds.delete(id))
      .catch(() => {});
  }
  for (;;) {
    const left: { id: string; status: string }[] = [];
    for await (const v of cinder.listVolumes({ metadata: { [META.cluster]: clusterId } })) left.push(v);
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      console.error(
        `cleanup: ${left.length} volumes left: ${left
          .slice(0, 10)
          .map((v) => `${v.id} (${v.status})`)
          .join(', ')}`,
      );
      return;
    }
    const deletable = left.filter((v) => !v.status.startsWith('delet') && v.status !== 'creating');
    for (let i = 0; i < deletable.length; i += 20) {
      await Promise.all(deletable.slice(i, i + 20).map((v) => cinder.deleteVolume(v.id).catch(() => {})));
    }
    await sleep(1000);
  }
}

try {
  await cinder.negotiate();
  // Warm-up: a running controller has learned when to check (pacing.ts); give it eight creates
  // and five snapshots of history first, as after a few minutes of real use.
  const warm = await svc.CreateVolume(createReq(`ctl-bench-warm-${rand()}`), ctx());
  for (let i = 0; i < 7; i++) await svc.CreateVolume(createReq(`ctl-bench-warm-${rand()}`), ctx());
  for (let i = 0; i < 5; i++) {
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
  await rawCreate(`ctl-bench-warmraw-${rand()}`);

  // 1. single CreateVolume
  const vRaw: { ms: number; reqs: number }[] = [];
  const vSvc: { ms: number; reqs: number }[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const [r, s] = await pair(
      i,
      () => measured(() => rawCreate(`ctl-bench-raw-${rand()}`)),
      () => measured(() => svc.CreateVolume(createReq(`ctl-bench-${rand()}`), ctx())),
    );
    vRaw.push(r);
    vSvc.push(s);
  }
  report('CreateVolume', 1, vRaw, vSvc, '<= 1.05');

  // 2. CreateSnapshot
  const src = await svc.CreateVolume(createReq(`ctl-bench-src-${rand()}`), ctx());
  const srcId = src.volume?.volume_id ?? '';
  const sRaw: { ms: number; reqs: number }[] = [];
  const sSvc: { ms: number; reqs: number }[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const [r, s] = await pair(
      i,
      () => measured(() => rawSnapshot(srcId, `ctl-bench-rawsnap-${rand()}`)),
      () =>
        measured(async () => {
          const res = await svc.CreateSnapshot(
            { name: `ctl-bench-snap-${rand()}`, source_volume_id: srcId, secrets: {}, parameters: {} },
            ctx(),
          );
          if (res.snapshot?.snapshot_id) snapshotIds.add(res.snapshot.snapshot_id);
          if (!res.snapshot?.ready_to_use) throw new Error('snapshot not ready');
          return res;
        }),
    );
    sRaw.push(r);
    sSvc.push(s);
  }
  report('CreateSnapshot', 1, sRaw, sSvc, '<= 1.10');
  await deleteAll();
  await sleep(3000);

  // 3. N concurrent, in alternating pairs of batches; each batch deleted before the next.
  const cRaw: { ms: number; reqs: number }[] = [];
  const cSvc: { ms: number; reqs: number }[] = [];
  let failures = 0;
  let duplicates = 0;
  let firstFailure = '';
  const batch = async (kind: 'raw' | 'svc') => {
    const r = await measured(
      (): Promise<PromiseSettledResult<unknown>[]> =>
        kind === 'raw'
          ? Promise.allSettled(Array.from({ length: N }, () => rawCreate(`ctl-bench-rawc-${rand()}`)))
          : Promise.allSettled(
              Array.from({ length: N }, (_, i) =>
                svc.CreateVolume(createReq(`ctl-bench-c${i}-${rand()}`), ctx()),
              ),
            ),
    );
    const failed = r.value.filter((x) => x.status === 'rejected');
    if (kind === 'svc') {
      failures += failed.length;
      if (failed[0] && !firstFailure) firstFailure = String((failed[0] as PromiseRejectedResult).reason);
      const byName = new Map<string, number>();
      for await (const v of cinder.listVolumes({ metadata: { [META.cluster]: clusterId } })) {
        const n = v.metadata?.[META.csiName];
        if (n) byName.set(n, (byName.get(n) ?? 0) + 1);
      }
      duplicates += [...byName.values()].filter((c) => c > 1).length;
    } else if (failed.length > 0) {
      throw new Error(
        `raw batch: ${failed.length} failed: ${String((failed[0] as PromiseRejectedResult).reason)}`,
      );
    }
    await deleteAll();
    await sleep(3000);
    return { ms: r.ms, reqs: r.reqs };
  };
  for (let i = 0; i < PAIRS; i++) {
    const [r, s] = await pair(
      i,
      () => batch('raw'),
      () => batch('svc'),
    );
    cRaw.push(r);
    cSvc.push(s);
  }
  report(`${N} concurrent CreateVolume (wall)`, N, cRaw, cSvc, '<= 1.0');
  console.log(
    `  failures ${failures}${firstFailure ? ` (${firstFailure})` : ''}; duplicates ${duplicates} (must be 0)`,
  );
} finally {
  await deleteAll();
  await os.close();
}
