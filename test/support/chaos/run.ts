/**
 * One chaos run on the lab Cinder (noauth api): the driver as a real process behind a fault proxy,
 * the workload (workload.ts), optionally kill rounds (kills.ts), then the invariants against
 * Cinder directly (invariants.ts), then a purge of whatever the run left. Used by
 * test/integration/chaos/*.test.ts (bounded sizes) and bench/chaos.ts (the big runs).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { OpenStackSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { FAULT_KINDS, type FaultKind, FaultProxy, mulberry32 } from '../fault-proxy.ts';
import { labConfig, labNoauth } from '../lab.ts';
import { DriverProcess } from './driver-process.ts';
import { classify, inventorySize, purge, settledInventory } from './invariants.ts';
import { KillSwitch } from './kills.ts';
import { opTrace } from './op-retry.ts';
import type { OpKind } from './ops.ts';
import { Workload } from './workload.ts';

export interface ChaosOptions {
  seed: number;
  /** CSI operations to run at least (11 or 15 per volume lifecycle). */
  operations: number;
  /** Fraction of Cinder requests that get a fault. */
  faultRate: number;
  weights?: Partial<Record<FaultKind, number>>;
  /** SIGKILL rounds (crash suite); 0 = none. */
  killRounds?: number;
  /** Kill points (KILL_POINTS names) armed alone first, each after and before Cinder acted. */
  killFocus?: readonly string[];
  concurrency?: number;
  /** Deadline of each CSI call; a `delay` fault holds an answer 1.5 s longer. */
  callTimeoutMs?: number;
  /** Volume type (lab backend) of the workload's volumes. */
  volumeType?: string;
  exclude?: readonly OpKind[];
  /** Every n-th lifecycle takes a backup (default 3; the lab's cinder-backup is slow). */
  backupEvery?: number;
  log?: (line: string) => void;
  /** Called with a one-line summary (operations done, requests, faults, kills) every `progressMs`. */
  progress?: (line: string) => void;
  /** Period of `progress` (default 20 s). */
  progressMs?: number;
}

export interface ChaosReport {
  seed: number;
  ops: number;
  okOps: number;
  lifecycles: number;
  requests: number;
  faults: Record<FaultKind, number>;
  faultsByMethod: Record<string, number>;
  retries: number;
  kills: number;
  killPoints: Record<string, number>;
  codes: Record<string, number>;
  /** Median duration (ms) of each operation kind, retries included. */
  medianMs: Record<string, number>;
  leaked: string[];
  duplicates: string[];
  duplicateAttachments: string[];
  internal: string[];
  neverOk: string[];
  /** What the purge could not remove (should be empty). */
  purgeLeft: number;
  ms: number;
  /** Empty when there is no violation; else seed, operation trace and proxy trace. */
  trace: string;
}

export function violations(r: ChaosReport): number {
  return (
    r.leaked.length +
    r.duplicates.length +
    r.duplicateAttachments.length +
    r.internal.length +
    r.neverOk.length
  );
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => {});
  const run = `chaos-${o.seed.toString(36)}-${randomBytes(2).toString('hex')}`;
  const scope = { prefix: run, clusterId: run };
  const direct = await cinderAt(labNoauth().endpoint);
  const target = new URL(labNoauth().endpoint).origin;
  const volumeType = o.volumeType ?? 'tgt';
  const otherType = await createType(direct.cinder, volumeType, `${run}-type`);
  // A group type of this run for the group snapshots (generic groups; admin via noauth).
  const groupType = o.exclude?.includes('group-snapshot')
    ? undefined
    : (await direct.cinder.createGroupType?.({ name: `${run}-group-type`, is_public: true }))?.name;
  const callTimeoutMs = o.callTimeoutMs ?? 15_000;
  const crash = (o.killRounds ?? 0) > 0;
  let kills: KillSwitch | undefined;
  const driverProxy = await FaultProxy.start({
    target,
    seed: o.seed,
    rate: o.faultRate,
    delayMs: callTimeoutMs + 1500,
    ...(o.weights ? { weights: o.weights } : {}),
    before: (req) => kills?.hook(req, 'before'),
    after: (req) => kills?.hook(req, 'after'),
  });
  const nodeProxy = await FaultProxy.start({
    target,
    seed: o.seed + 1,
    rate: o.faultRate,
    delayMs: callTimeoutMs + 1500,
    ...(o.weights ? { weights: o.weights } : {}),
  });
  const node = await cinderAt(`${nodeProxy.url}/v3`);
  const nodeId = `${run}-node`;
  const driver = new DriverProcess({
    cinderEndpoint: `${driverProxy.url}/v3`,
    clusterId: run,
    nodes: [nodeId],
  });
  const rand = mulberry32(o.seed ^ 0x5eed);
  const started = Date.now();
  let ticker: NodeJS.Timeout | undefined;
  try {
    await driver.start();
    if (crash) kills = new KillSwitch(driver, mulberry32(o.seed ^ 0xdead), log);
    const ks = kills;
    const workload = new Workload({
      client: () => driver.client(),
      nodeCinder: node.cinder,
      prefix: run,
      nodeId,
      volumeType,
      otherType,
      ...(groupType ? { groupType } : {}),
      operations: o.operations,
      concurrency: o.concurrency ?? 3,
      callTimeoutMs,
      ...(o.exclude ? { exclude: o.exclude } : {}),
      ...(o.backupEvery ? { backupEvery: o.backupEvery } : {}),
      rand,
      ...(ks ? { more: () => !ks.done } : {}),
    });
    const killing = ks ? ks.run(o.killRounds ?? 0, o.killFocus ?? []) : Promise.resolve();
    if (o.progress) {
      const say = o.progress;
      ticker = setInterval(() => {
        const faults = FAULT_KINDS.reduce(
          (n, k) => n + driverProxy.stats.faults[k] + nodeProxy.stats.faults[k],
          0,
        );
        const done = workload.ops.filter((op) => op.ok).length;
        say(
          `${Math.round((Date.now() - started) / 1000)} s: ${done}/${workload.ops.length} operations OK ` +
            `(of ${o.operations}+), ${driverProxy.stats.requests + nodeProxy.stats.requests} Cinder requests, ` +
            `${faults} faults, ${driver.kills} kills`,
        );
      }, o.progressMs ?? 20_000);
      ticker.unref();
    }
    const checkAttachments = async (volumeId: string) =>
      (await direct.cinder.listAttachments({ volume_id: volumeId })).map((a) => a.id);
    const result = await workload.run(checkAttachments);
    await killing;
    clearInterval(ticker);
    log(`workload done: ${result.ops.length} operations in ${result.lifecycles} lifecycles`);

    const inv = await settledInventory(direct.cinder, scope);
    const v = classify(inv, result);
    const codes: Record<string, number> = {};
    for (const op of result.ops) for (const a of op.attempts) codes[a.code] = (codes[a.code] ?? 0) + 1;
    const internalOps = result.ops.filter((op) =>
      op.attempts.some((a) => a.code === 'INTERNAL' || a.code === 'UNKNOWN'),
    );
    const neverOkOps = result.ops.filter((op) => !op.ok);
    const report: ChaosReport = {
      seed: o.seed,
      ops: result.ops.length,
      okOps: result.ops.filter((op) => op.ok).length,
      lifecycles: result.lifecycles,
      requests: driverProxy.stats.requests + nodeProxy.stats.requests,
      faults: Object.fromEntries(
        FAULT_KINDS.map((k) => [k, driverProxy.stats.faults[k] + nodeProxy.stats.faults[k]]),
      ) as Record<FaultKind, number>,
      faultsByMethod: merge(driverProxy.stats.byMethod, nodeProxy.stats.byMethod),
      retries: result.ops.reduce((n, op) => n + op.tries - 1, 0),
      kills: driver.kills,
      killPoints: kills?.fired ?? {},
      codes,
      medianMs: medians(result.ops),
      leaked: v.leaked,
      duplicates: v.duplicates,
      duplicateAttachments: result.duplicateAttachments,
      internal: internalOps.map(
        (op) =>
          `L${op.lifecycle} ${op.kind} ${op.target}: ${op.attempts.find((a) => a.code === 'INTERNAL' || a.code === 'UNKNOWN')?.message}`,
      ),
      neverOk: neverOkOps.map(
        (op) =>
          `L${op.lifecycle} ${op.kind} ${op.target}: ${op.attempts.at(-1)?.code} ${op.attempts.at(-1)?.message}`,
      ),
      purgeLeft: 0,
      ms: Date.now() - started,
      trace: '',
    };
    if (violations(report) > 0) {
      // The lifecycles involved: from names in the violations and the failing operations.
      const involved = new Set<number>([...internalOps, ...neverOkOps].map((op) => op.lifecycle));
      const re = new RegExp(`${run}-(\\d+)-`, 'g');
      for (const l of [...v.leaked, ...v.duplicates, ...result.duplicateAttachments]) {
        for (const m of l.matchAll(re)) involved.add(Number(m[1]));
      }
      const ops = result.ops.filter((op) => involved.has(op.lifecycle));
      const terms = [...involved].map((i) => `${run}-${i}-`);
      for (const [name, id] of [...result.volumes, ...result.snapshots, ...result.groupSnapshots]) {
        if (terms.some((t) => name.startsWith(t))) terms.push(id.replace(/^backup:/, ''));
      }
      for (const x of [
        ...inv.volumes,
        ...inv.snapshots,
        ...inv.backups,
        ...inv.groupSnapshots,
        ...inv.groups,
      ])
        terms.push(x.id);
      report.trace = [
        `seed ${o.seed} (run ${run}), fault rate ${o.faultRate}, kill rounds ${o.killRounds ?? 0}`,
        '--- operations of the lifecycles involved:',
        opTrace(ops),
        '--- Cinder requests of those objects through the proxy (last 150):',
        driverProxy.traceText(150, terms),
        ...(kills ? ['--- kill rounds:', kills.history.join('\n')] : []),
        `--- driver log (last lines of ${driver.logFile}):`,
        tail(driver.logFile, 40),
      ].join('\n');
    }
    const left = await purge(direct.cinder, scope);
    report.purgeLeft = inventorySize(left);
    return report;
  } finally {
    clearInterval(ticker);
    await driver.stop(process.env['CHAOS_KEEP_LOGS'] === '1');
    await driverProxy.close();
    await nodeProxy.close();
    await node.os.close();
    await deleteType(direct, otherType);
    if (groupType) await deleteGroupType(direct.cinder, groupType);
    await direct.os.close();
  }
}

export async function deleteGroupType(cinder: CinderClient, name: string): Promise<void> {
  const t = (await cinder.listGroupTypes().catch(() => [])).find((x) => x.name === name);
  if (t) await cinder.deleteGroupType(t.id).catch(() => {});
}

/** Removes what an interrupted run left: everything named `prefix...` and its volume type. */
export async function purgeRun(prefix: string): Promise<number> {
  const direct = await cinderAt(labNoauth().endpoint);
  try {
    const left = await purge(direct.cinder, { prefix, clusterId: prefix });
    for (const t of await direct.cinder.listVolumeTypes()) {
      if (t.name.startsWith(prefix)) await deleteType(direct, t.name);
    }
    for (const t of await direct.cinder.listGroupTypes()) {
      if (t.name.startsWith(prefix)) await deleteGroupType(direct.cinder, t.name);
    }
    return inventorySize(left);
  } finally {
    await direct.os.close();
  }
}

function medians(ops: readonly { kind: string; ms: number }[]): Record<string, number> {
  const by = new Map<string, number[]>();
  for (const op of ops) by.set(op.kind, [...(by.get(op.kind) ?? []), op.ms]);
  return Object.fromEntries(
    [...by].map(([k, xs]) => [k, xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0]),
  );
}

function merge(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
}

function tail(file: string, n: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A Cinder client (noauth, admin) at `endpoint`: the lab itself, or a proxy in front of it. */
export async function cinderAt(endpoint: string) {
  const config = labConfig('noauth');
  config.endpointOverride = endpoint;
  const os = new OpenStackSession({ config, logger: silentLogger() });
  const cinder = new CinderClient({ session: os.service('block-storage'), logger: silentLogger() });
  for (let i = 0; ; i++) {
    try {
      await cinder.negotiate({ signal: AbortSignal.timeout(10_000) });
      break;
    } catch (err) {
      if (i >= 10) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  return { os, cinder };
}

/** A second public type on the backend of `base` (for ControllerModifyVolume); admin via noauth. */
async function createType(cinder: CinderClient, base: string, name: string): Promise<string> {
  const t = await cinder.getVolumeType(base);
  const backend = t.extra_specs?.['volume_backend_name'] ?? base;
  const os = new OpenStackSession({ config: labConfig('noauth'), logger: silentLogger() });
  try {
    await os.service('block-storage').request({
      method: 'POST',
      path: '/types',
      body: { volume_type: { name, extra_specs: { volume_backend_name: backend } } },
      operation: 'chaos.type.create',
    });
  } finally {
    await os.close();
  }
  return name;
}

async function deleteType(
  direct: { os: OpenStackSession; cinder: CinderClient },
  name: string,
): Promise<void> {
  const t = await direct.cinder.getVolumeType(name).catch(() => undefined);
  if (!t) return;
  await direct.os
    .service('block-storage')
    .request({ method: 'DELETE', path: `/types/${t.id}`, operation: 'chaos.type.delete' })
    .catch(() => {});
}
