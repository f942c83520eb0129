/**
 * The chaos suites' invariants, checked against Cinder directly (never through the fault proxy):
 * after the workload deleted everything it created, nothing of this run may remain.
 *
 * Scope: objects whose name starts with the run's prefix, or that carry the run's cluster id or a
 * CSI name of the run in their metadata (a restored volume may carry another volume's metadata,
 * so both are looked at). Attachments: those of any volume in scope.
 *
 * A leftover whose name is a CSI name the driver answered with another id is a **duplicate** (a
 * retry created a second object); any other leftover is a **leak**.
 */
import type { CinderApi } from '../../../src/openstack/cinder-api.ts';
import type {
  Attachment,
  Backup,
  Group,
  GroupSnapshot,
  Snapshot,
  Volume,
} from '../../../src/openstack/cinder-types.ts';

const CSI_NAME = 'cinder.csi.dev/csi-name';
const CLUSTER = 'cinder.csi.dev/cluster';

export interface Scope {
  prefix: string;
  clusterId: string;
}

export interface Inventory {
  volumes: Volume[];
  snapshots: Snapshot[];
  backups: Backup[];
  attachments: Attachment[];
  /** Group snapshots and the driver's groups, named with the CSI group snapshot name. */
  groupSnapshots: GroupSnapshot[];
  groups: Group[];
}

function inScope(scope: Scope, name: string | null | undefined, meta: Record<string, string> | undefined) {
  return (
    (name ?? '').startsWith(scope.prefix) ||
    meta?.[CLUSTER] === scope.clusterId ||
    (meta?.[CSI_NAME] ?? '').startsWith(scope.prefix)
  );
}

export async function inventory(cinder: CinderApi, scope: Scope): Promise<Inventory> {
  const inv: Inventory = {
    volumes: [],
    snapshots: [],
    backups: [],
    attachments: [],
    groupSnapshots: [],
    groups: [],
  };
  for await (const v of cinder.listVolumes({})) if (inScope(scope, v.name, v.metadata)) inv.volumes.push(v);
  const vols = new Set(inv.volumes.map((v) => v.id));
  // A group snapshot's member snapshots carry Cinder's names (and the cluster tag only once the
  // driver tagged them): in scope also by their volume.
  for await (const s of cinder.listSnapshots({}))
    if (inScope(scope, s.name, s.metadata) || vols.has(s.volume_id)) inv.snapshots.push(s);
  for await (const b of cinder.listBackups({})) if (inScope(scope, b.name, b.metadata)) inv.backups.push(b);
  if (cinder.listGroupSnapshots) {
    for await (const g of cinder.listGroupSnapshots({}))
      if ((g.name ?? '').startsWith(scope.prefix)) inv.groupSnapshots.push(g);
  }
  if (cinder.listGroups) {
    for await (const g of cinder.listGroups({}))
      if ((g.name ?? '').startsWith(scope.prefix)) inv.groups.push(g);
  }
  for (const a of await cinder.listAttachments({})) if (vols.has(a.volume_id)) inv.attachments.push(a);
  return inv;
}

export const inventorySize = (inv: Inventory) =>
  inv.volumes.length +
  inv.snapshots.length +
  inv.backups.length +
  inv.attachments.length +
  inv.groupSnapshots.length +
  inv.groups.length;

/** Waits (bounded) for Cinder's asynchronous deletes to finish, then returns what is left. */
export async function settledInventory(
  cinder: CinderApi,
  scope: Scope,
  timeoutMs = 30_000,
): Promise<Inventory> {
  const end = Date.now() + timeoutMs;
  let inv = await inventory(cinder, scope);
  const busy = (x: { status?: string | null }) => /ing$/.test(String(x.status ?? ''));
  while (
    Date.now() < end &&
    [...inv.volumes, ...inv.snapshots, ...inv.backups, ...inv.groupSnapshots, ...inv.groups].some(
      (x) => busy(x) || x.status === 'deleting',
    )
  ) {
    await new Promise((r) => setTimeout(r, 1000));
    inv = await inventory(cinder, scope);
  }
  return inv;
}

export interface Violations {
  leaked: string[];
  duplicates: string[];
}

/** Classifies what is left; `answered` maps CSI names to the ids the driver returned. */
export function classify(
  inv: Inventory,
  answered: {
    volumes: Map<string, string>;
    snapshots: Map<string, string>;
    groupSnapshots?: Map<string, string>;
  },
): Violations {
  const out: Violations = { leaked: [], duplicates: [] };
  const line = (kind: string, id: string, name: string | null | undefined, st: unknown, extra = '') =>
    `${kind} ${id} "${name ?? ''}" ${String(st)}${extra}`;
  for (const v of inv.volumes) {
    const csi = v.metadata?.[CSI_NAME];
    const name = v.name ?? '';
    // By the Cinder name when it is one of ours: the csi-name marker may be another volume's.
    const answeredId = answered.volumes.get(name) ?? (csi && !name ? answered.volumes.get(csi) : undefined);
    const l = line('volume', v.id, name, v.status, csi && csi !== name ? ` (csi-name marker ${csi})` : '');
    if (answeredId && answeredId !== v.id) out.duplicates.push(`${l}; the driver answered ${answeredId}`);
    else out.leaked.push(l);
  }
  for (const s of inv.snapshots) {
    const answeredId = answered.snapshots.get(s.name ?? '');
    const l = line('snapshot', s.id, s.name, s.status, ` of volume ${s.volume_id}`);
    if (answeredId && answeredId !== s.id) out.duplicates.push(`${l}; the driver answered ${answeredId}`);
    else out.leaked.push(l);
  }
  for (const b of inv.backups) {
    const answeredId = answered.snapshots.get(b.name ?? '');
    const l = line('backup', b.id, b.name, b.status, ` of volume ${b.volume_id}`);
    if (answeredId && answeredId !== `backup:${b.id}`)
      out.duplicates.push(`${l}; the driver answered ${answeredId}`);
    else out.leaked.push(l);
  }
  for (const a of inv.attachments) out.leaked.push(`attachment ${a.id} of volume ${a.volume_id} ${a.status}`);
  for (const g of inv.groupSnapshots) {
    const answeredId = answered.groupSnapshots?.get(g.name ?? '');
    const l = line('group snapshot', g.id, g.name, g.status, ` of group ${g.group_id}`);
    if (answeredId && answeredId !== g.id) out.duplicates.push(`${l}; the driver answered ${answeredId}`);
    else out.leaked.push(l);
  }
  for (const g of inv.groups) out.leaked.push(line('group', g.id, g.name, g.status));
  return out;
}

/** Best-effort removal of everything in scope (after the check), bounded in time. */
export async function purge(cinder: CinderApi, scope: Scope, timeoutMs = 120_000): Promise<Inventory> {
  const end = Date.now() + timeoutMs;
  const quiet = { signal: AbortSignal.timeout(timeoutMs) };
  let inv = await inventory(cinder, scope);
  while (inventorySize(inv) > 0 && Date.now() < end) {
    for (const a of inv.attachments) await cinder.deleteAttachment(a.id, quiet).catch(() => {});
    for (const g of inv.groupSnapshots) {
      if (g.status !== 'deleting') await cinder.deleteGroupSnapshot(g.id, quiet).catch(() => {});
    }
    if (inv.groupSnapshots.length === 0) {
      for (const g of inv.groups) {
        const full = await cinder.getGroup(g.id, quiet).catch(() => undefined);
        if (full?.volumes?.length) {
          await cinder.updateGroup(g.id, { remove_volumes: full.volumes }, quiet).catch(() => {});
        } else if (g.status !== 'deleting') {
          await cinder.deleteGroup(g.id, quiet).catch(() => {});
        }
      }
    }
    for (const b of inv.backups) {
      if (b.status !== 'deleting') await cinder.deleteBackup(b.id, quiet).catch(() => {});
    }
    for (const s of inv.snapshots) {
      if (s.status !== 'deleting') await cinder.deleteSnapshot(s.id, quiet).catch(() => {});
    }
    if (inv.snapshots.length === 0 && inv.backups.length === 0 && inv.groups.length === 0) {
      for (const v of inv.volumes) {
        if (v.status !== 'deleting') {
          await cinder
            .deleteVolume(v.id, { ...quiet, cascade: true })
            .catch(() => cinder.deleteVolume(v.id, { ...quiet, force: true }).catch(() => {}));
        }
      }
    }
    await new Promise((r) => setTimeout(r, 2000));
    inv = await inventory(cinder, scope);
  }
  return inv;
}

/** How many objects of the run Cinder still lists once they had `ms` to go (0 = nothing left). */
export async function leftAfter(cinder: CinderApi, scope: Scope, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let left = inventorySize(await inventory(cinder, scope));
  while (left > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 1000));
    left = inventorySize(await inventory(cinder, scope));
  }
  return left;
}
