/** The CSI methods as raw gRPC calls, ids learned from replies, clean-up through the driver. */
import type { ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { loadCsiServices } from '../../../src/grpc/proto.ts';
import type { Learned } from './generate.ts';

export const SLOW_MS = 5000;
/**
 * RPCs that make Cinder do real asynchronous work (scheduler, volume service) and, by design, wait
 * for it up to the caller's deadline: a successful one may take longer than SLOW_MS on a loaded
 * lab (counted as a long operation, not a violation). A slow *failure* is still a violation.
 */
export const LONG_OPERATIONS = new Set([
  'CreateVolume',
  'DeleteVolume',
  'CreateSnapshot',
  'DeleteSnapshot',
  'ControllerPublishVolume',
  'ControllerUnpublishVolume',
  'ControllerExpandVolume',
  'ControllerModifyVolume',
  'CreateVolumeGroupSnapshot',
  'DeleteVolumeGroupSnapshot',
  'NodeStageVolume',
  'NodeUnstageVolume',
]);
/** A baseline Cinder GET at least this slow means the lab itself was slow at that moment. */
export const LAB_SLOW_MS = 1000;
export const MESSAGE_MAX = 1100;
export const SERVICES = ['Identity', 'Controller', 'GroupController', 'Node'] as const;

export interface Method {
  service: string;
  name: string;
  path: string;
  requestType: string;
  serialize: (v: unknown) => Buffer;
  deserialize: (b: Buffer) => unknown;
}

export function methods(): Method[] {
  const defs = loadCsiServices();
  const out: Method[] = [];
  for (const service of SERVICES) {
    for (const [name, md] of Object.entries(defs[service])) {
      const d = md as unknown as {
        path: string;
        requestSerialize: (v: unknown) => Buffer;
        responseDeserialize: (b: Buffer) => unknown;
        requestType: { type: { name: string } };
      };
      out.push({
        service,
        name,
        path: d.path,
        requestType: `csi.v1.${d.requestType.type.name}`,
        serialize: d.requestSerialize,
        deserialize: d.responseDeserialize,
      });
    }
  }
  return out;
}

export const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

export function learn(method: string, res: unknown, learned: Learned): void {
  const r = res as Record<string, Record<string, unknown> | undefined>;
  const add = (set: Set<string>, id: unknown) => {
    if (typeof id === 'string' && id && set.size < 50) set.add(id);
  };
  if (method === 'CreateVolume') add(learned.volumes, r['volume']?.['volume_id']);
  if (method === 'CreateSnapshot') add(learned.snapshots, r['snapshot']?.['snapshot_id']);
  if (method === 'CreateVolumeGroupSnapshot') {
    const g = r['group_snapshot'] as
      | { group_snapshot_id?: string; snapshots?: { snapshot_id: string }[] }
      | undefined;
    add(learned.groupSnapshots, g?.group_snapshot_id);
    for (const s of g?.snapshots ?? []) add(learned.snapshots, s.snapshot_id);
  }
}

export async function cleanupThroughDriver(
  call: (
    m: Method,
    req: unknown,
    raw: boolean,
    timeoutMs?: number,
  ) => Promise<{ err: ServiceError | null; res: unknown }>,
  all: Method[],
  learned: Learned,
  nodeId: string,
): Promise<void> {
  const m = (name: string) => all.find((x) => x.name === name)!;
  for (const id of learned.groupSnapshots) {
    const got = await call(m('GetVolumeGroupSnapshot'), { group_snapshot_id: id }, false, 60_000);
    const ids = (
      (got.res as { group_snapshot?: { snapshots?: { snapshot_id: string }[] } })?.group_snapshot
        ?.snapshots ?? []
    ).map((s) => s.snapshot_id);
    await call(m('DeleteVolumeGroupSnapshot'), { group_snapshot_id: id, snapshot_ids: ids }, false, 60_000);
  }
  for (const id of learned.snapshots) await call(m('DeleteSnapshot'), { snapshot_id: id }, false, 60_000);
  for (const id of learned.volumes) {
    await call(m('ControllerUnpublishVolume'), { volume_id: id, node_id: nodeId }, false, 60_000);
    await call(m('DeleteVolume'), { volume_id: id }, false, 60_000);
  }
}
