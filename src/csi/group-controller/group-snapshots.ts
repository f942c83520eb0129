/**
 * CreateVolumeGroupSnapshot, DeleteVolumeGroupSnapshot, GetVolumeGroupSnapshot on Cinder groups
 * and group snapshots (design: see index.ts).
 */

import { ignoreNotFound } from '../../openstack/cinder.ts';
import type { Group, GroupSnapshot, Snapshot, Volume } from '../../openstack/cinder-types.ts';
import { WaitAbortedError, WaitFailedError } from '../../openstack/waiter.ts';
import { AbortedError } from '../../util/abort.ts';
import { fewOf } from '../../util/bounded.ts';
import { classifyFailureReason, fromCloudError, latestUserMessage } from '../cloud-errors.ts';
import { META, softDeadline } from '../controller/context.ts';
import { timestampOf, toCsiSnapshot } from '../controller/convert.ts';
import { deleteUnderWay } from '../delete-under-way.ts';
import {
  alreadyExists,
  CsiError,
  failedPrecondition,
  invalidArgument,
  notFound,
  unavailable,
} from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { createSignal, type RpcContext } from '../rpc.ts';
import { type GroupController, lockKey, marker, withLocks } from './context.ts';
import { resolveGroupType } from './group-type.ts';
import {
  deleteOwnGroup,
  groupAvailable,
  releaseVolumes,
  sweepOrphanGroups,
  updateOwnGroup,
} from './own-group.ts';
import { checkSourceIds, MAX_GROUP_SNAPSHOT_VOLUMES, sourceVolumes } from './source-volumes.ts';

const DEFAULT_WAIT_MS = 60_000;
/** Keys the external-snapshotter adds with --extra-create-metadata; accepted and not stored. */
const SIDECAR_PREFIX = 'csi.storage.k8s.io/';

interface GroupSnapshotParams {
  groupType?: string;
}

/** VolumeGroupSnapshotClass parameters: `groupType`; sidecar keys are ignored, others refused. */
export function parseGroupSnapshotParams(
  params: Record<string, string> | null | undefined,
): GroupSnapshotParams {
  const out: GroupSnapshotParams = {};
  for (const [key, value] of Object.entries(params ?? {})) {
    if (key === 'groupType') {
      if (!value) throw invalidArgument('parameter groupType must not be empty');
      out.groupType = value;
    } else if (!key.startsWith(SIDECAR_PREFIX)) {
      throw invalidArgument(`unknown VolumeGroupSnapshotClass parameter ${key} (supported: groupType)`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- CreateVolumeGroupSnapshot

export async function createVolumeGroupSnapshot(
  c: GroupController,
  req: csi.CreateVolumeGroupSnapshotRequest__Output,
  ctx: RpcContext,
): Promise<csi.CreateVolumeGroupSnapshotResponse> {
  if (!req.name) throw invalidArgument('name is required');
  const ids = req.source_volume_ids ?? [];
  checkSourceIds(ids);
  const params = parseGroupSnapshotParams(req.parameters);
  const keys = [lockKey.name(req.name), ...ids.map(lockKey.volume)];
  return withLocks(c, keys, `group snapshot ${req.name} or its volumes`, async () => {
    try {
      return { group_snapshot: await create(c, req.name, ids, params, ctx) };
    } catch (err) {
      throw fromCloudError(err, `create group snapshot ${req.name}`, {
        signal: ctx.signal,
        deadlineHint: 'Cinder is still working on it; a retry with the same name picks it up',
      });
    }
  });
}

async function create(
  c: GroupController,
  name: string,
  ids: string[],
  params: GroupSnapshotParams,
  ctx: RpcContext,
): Promise<csi.VolumeGroupSnapshot> {
  const signal = ctx.signal;
  let gs = await findGroupSnapshot(c, name, signal);
  const otherVolumes = (id: string, sources: string[]) =>
    alreadyExists(
      `group snapshot ${name} already exists (Cinder group snapshot ${id}) for other volumes: ` +
        fewOf([...sources].sort()),
    );
  if (gs) {
    const sources = (await membersOf(c, gs.id, signal)).map((s) => s.volume_id);
    // Cinder lists the members only once it made them: none yet (still creating) says nothing;
    // they are compared again once the group snapshot is available.
    if (sources.length > 0 && !sameSet(sources, ids)) throw otherVolumes(gs.id, sources);
  } else {
    const group = await findGroup(c, name, signal);
    const volumes = await sourceVolumes(c, ids, group?.id, signal);
    const typeId = group ? group.group_type : await resolveGroupType(c, params.groupType, ctx);
    const ready = await ensureGroup(c, name, group, typeId, volumes, ctx);
    gs = await c.cinder.createGroupSnapshot(
      { group_id: ready.id, name, description: marker.groupSnapshot(c.clusterId) },
      { signal: createSignal() },
    );
    ctx.log.info({ groupSnapshotId: gs.id, groupId: ready.id }, 'CreateVolumeGroupSnapshot: created');
  }
  const settled = await settle(c, gs, ctx);
  const members = await membersOf(c, settled.id, signal);
  if (settled.status === 'available') {
    const sources = members.map((s) => s.volume_id);
    if (!sameSet(sources, ids)) throw otherVolumes(settled.id, sources);
    // The volumes leave the group at once: a volume in a group cannot be deleted, nor join another
    // group. Cinder keeps the group snapshot and its members usable (checked on the lab, Zed).
    await releaseVolumes(c, settled.group_id, ctx);
    await tagMembers(c, members, ctx);
  }
  return toCsiGroupSnapshot(settled, members);
}

/** The group named `name` (created now, or by an interrupted earlier call), holding exactly `volumes`. */
async function ensureGroup(
  c: GroupController,
  name: string,
  existing: Group | undefined,
  typeId: string,
  volumes: Volume[],
  ctx: RpcContext,
): Promise<Group> {
  const signal = ctx.signal;
  let group = existing;
  if (!group) {
    const zone = volumes[0]?.availability_zone ?? undefined;
    group = await c.cinder.createGroup(
      {
        name,
        description: marker.group(c.clusterId),
        group_type: typeId,
        volume_types: [...new Set(volumes.map((v) => v.volume_type_id ?? v.volume_type ?? ''))].filter(
          Boolean,
        ),
        ...(zone ? { availability_zone: zone } : {}),
      },
      { signal: createSignal() },
    );
    ctx.log.info({ groupId: group.id }, 'CreateVolumeGroupSnapshot: Cinder group created');
  }
  group = await groupAvailable(c, group.id, signal);
  // The membership is the available group's own list, read after the wait: the volumes were read
  // before it, while an earlier try's update (its answer lost) may still have been landing.
  const wanted = new Set(volumes.map((v) => v.id));
  const members = new Set(group.volumes ?? []);
  const add = [...wanted].filter((id) => !members.has(id));
  const remove = [...members].filter((id) => !wanted.has(id));
  if (add.length > 0 || remove.length > 0) {
    await updateOwnGroup(
      c,
      group.id,
      { ...(add.length ? { add_volumes: add } : {}), ...(remove.length ? { remove_volumes: remove } : {}) },
      signal,
    );
    group = await groupAvailable(c, group.id, signal);
  }
  return group;
}

/**
 * Marks the member snapshots with the cluster id, so that ListSnapshots shows them like the
 * snapshots CreateSnapshot makes (they are individually usable as CreateVolume sources).
 */
async function tagMembers(c: GroupController, members: Snapshot[], ctx: RpcContext): Promise<void> {
  await Promise.all(
    members
      .filter((s) => s.metadata?.[META.cluster] !== c.clusterId)
      .map((s) =>
        c.cinder.setSnapshotMetadata(s.id, { [META.cluster]: c.clusterId }, { signal: ctx.signal }),
      ),
  );
}

/** Waits for `available` for a while (ready_to_use=false after that); `error` → delete and fail. */
async function settle(c: GroupController, gs: GroupSnapshot, ctx: RpcContext): Promise<GroupSnapshot> {
  if (gs.status === 'available') return gs;
  if (String(gs.status).startsWith('error')) return failGroupSnapshot(c, gs.id, undefined, ctx);
  if (gs.status === 'deleting') {
    throw unavailable(`group snapshot ${gs.name} (${gs.id}) is being deleted; retry once it is gone`);
  }
  const signal = softDeadline(ctx.signal, ctx.deadline, c.groupSnapshotWaitMs ?? DEFAULT_WAIT_MS);
  try {
    const now = await c.cinder.waitForGroupSnapshot(gs.id, { target: ['available'], signal });
    if (!now) throw unavailable(`group snapshot ${gs.id} disappeared; retry`);
    return now;
  } catch (err) {
    if (err instanceof WaitFailedError) return failGroupSnapshot(c, gs.id, err.reason, ctx);
    if (err instanceof AbortedError && !ctx.signal.aborted) {
      const last = err instanceof WaitAbortedError ? err.lastStatus : undefined;
      // Not ready yet: ready_to_use=false, the snapshotter calls again. The POST answer has no
      // status/created_at: fetch what Cinder has now.
      const fresh = await ignoreNotFound(c.cinder.getGroupSnapshot(gs.id, { signal: ctx.signal }));
      return fresh ?? { ...gs, status: last ?? gs.status ?? 'creating' };
    }
    throw err;
  }
}

async function failGroupSnapshot(
  c: GroupController,
  id: string,
  reason: string | undefined,
  ctx: RpcContext,
): Promise<never> {
  const why = reason ?? (await latestUserMessage(c.cinder, id, ctx.signal)) ?? 'Cinder gave no reason';
  await c.cinder.deleteGroupSnapshot(id, { signal: AbortSignal.timeout(30_000) }).catch((err: unknown) => {
    ctx.log.warn(
      { groupSnapshotId: id, err: (err as Error).message },
      'could not delete failed group snapshot',
    );
  });
  throw new CsiError(classifyFailureReason(why), `Cinder group snapshot ${id} went to error: ${why}`);
}

// ---------------------------------------------------------------- DeleteVolumeGroupSnapshot

export async function deleteVolumeGroupSnapshot(
  c: GroupController,
  req: csi.DeleteVolumeGroupSnapshotRequest__Output,
  ctx: RpcContext,
): Promise<csi.DeleteVolumeGroupSnapshotResponse> {
  const id = req.group_snapshot_id;
  if (!id) throw invalidArgument('group_snapshot_id is required');
  checkSnapshotIdCount(req.snapshot_ids);
  return withLocks(c, [lockKey.id(id)], `group snapshot ${id}`, async () => {
    const signal = ctx.signal;
    try {
      // Deletes are idempotent: a group snapshot that is gone is deleted, whatever snapshot_ids say.
      const gs = await ignoreNotFound(c.cinder.getGroupSnapshot(id, { signal }));
      if (!gs) {
        // An earlier try may have died between deleting the group snapshot and deleting its group.
        await sweepOrphanGroups(c, ctx);
        return {};
      }
      if ((req.snapshot_ids ?? []).length === 0) {
        throw invalidArgument("snapshot_ids is required (the ids of the group snapshot's members)");
      }
      // While Cinder deletes (an earlier try's DELETE, its answer lost) the members vanish one by
      // one: given ids that are no longer listed are ones already deleted, not a mismatch.
      const deleting = gs.status === 'deleting';
      checkSnapshotIds(id, await membersOf(c, id, signal), req.snapshot_ids, deleting);
      if (!deleting) {
        await deleteUnderWay(
          () => c.cinder.deleteGroupSnapshot(id, { signal }),
          () => c.cinder.getGroupSnapshot(id, { signal }),
        );
      }
      // A backend that refuses (e.g. a member busy with clones) puts it back to available or error_deleting.
      await c.cinder.waitForGroupSnapshot(id, {
        target: [],
        gone: true,
        failOn: ['error_deleting', 'error', 'available'],
        signal,
      });
      ctx.log.info({ groupSnapshotId: id }, 'DeleteVolumeGroupSnapshot: deleted');
      await deleteOwnGroup(c, gs.group_id, ctx);
      return {};
    } catch (err) {
      if (err instanceof WaitFailedError) {
        throw failedPrecondition(
          `delete group snapshot ${id}: Cinder did not delete it (${err.reason ?? `status ${err.status}`}); ` +
            'volumes created from its snapshots may depend on them',
        );
      }
      throw fromCloudError(err, `delete group snapshot ${id}`, {
        signal,
        deadlineHint: 'Cinder is still deleting it; a retry picks it up',
      });
    }
  });
}

// ---------------------------------------------------------------- GetVolumeGroupSnapshot

export async function getVolumeGroupSnapshot(
  c: GroupController,
  req: csi.GetVolumeGroupSnapshotRequest__Output,
  ctx: RpcContext,
): Promise<csi.GetVolumeGroupSnapshotResponse> {
  const id = req.group_snapshot_id;
  if (!id) throw invalidArgument('group_snapshot_id is required');
  checkSnapshotIdCount(req.snapshot_ids);
  try {
    const gs = await c.cinder.getGroupSnapshot(id, { signal: ctx.signal });
    const members = await membersOf(c, id, ctx.signal);
    if ((req.snapshot_ids ?? []).length > 0) checkSnapshotIds(id, members, req.snapshot_ids);
    return { group_snapshot: toCsiGroupSnapshot(gs, members) };
  } catch (err) {
    throw fromCloudError(err, `get group snapshot ${id}`, {
      signal: ctx.signal,
      notFound: notFound(`group snapshot ${id} does not exist`),
    });
  }
}

// ---------------------------------------------------------------- helpers

async function findGroupSnapshot(
  c: GroupController,
  name: string,
  signal: AbortSignal,
): Promise<GroupSnapshot | undefined> {
  for await (const gs of c.cinder.listGroupSnapshots({ name }, { signal })) {
    if (gs.name === name && gs.description === marker.groupSnapshot(c.clusterId)) return gs;
  }
  return undefined;
}

async function findGroup(c: GroupController, name: string, signal: AbortSignal): Promise<Group | undefined> {
  for await (const g of c.cinder.listGroups({ name }, { signal })) {
    if (g.name === name && g.description === marker.group(c.clusterId)) {
      // The list does not carry the member volumes.
      return c.cinder.getGroup(g.id, { signal });
    }
  }
  return undefined;
}

/** The member snapshots of a group snapshot, in a stable order (by source volume id). */
async function membersOf(c: GroupController, id: string, signal: AbortSignal): Promise<Snapshot[]> {
  const out: Snapshot[] = [];
  for await (const s of c.cinder.listSnapshots({ group_snapshot_id: id }, { signal })) {
    if (s.group_snapshot_id === id) out.push(s);
  }
  return out.sort((a, b) => (a.volume_id < b.volume_id ? -1 : a.volume_id > b.volume_id ? 1 : 0));
}

/** INVALID_ARGUMENT for more snapshot_ids than a group snapshot can have members. */
function checkSnapshotIdCount(given: readonly string[] | undefined): void {
  if ((given ?? []).length > MAX_GROUP_SNAPSHOT_VOLUMES) {
    throw invalidArgument(
      `snapshot_ids has ${given?.length} ids; a group snapshot has at most ${MAX_GROUP_SNAPSHOT_VOLUMES} members`,
    );
  }
}

/**
 * FAILED_PRECONDITION unless `given` is exactly the member snapshot ids (a few quoted); with
 * `membersVanishing` (Cinder is deleting the group snapshot) given ids no longer listed are allowed.
 */
function checkSnapshotIds(id: string, members: Snapshot[], given: string[], membersVanishing = false): void {
  const actual = members.map((s) => s.id);
  const have = new Set(actual);
  const want = new Set(given);
  const extra = membersVanishing ? [] : given.filter((x) => !have.has(x));
  const lacking = actual.filter((x) => !want.has(x));
  if (extra.length > 0 || lacking.length > 0) {
    throw failedPrecondition(
      `snapshot_ids do not match the members of group snapshot ${id}` +
        (extra.length ? `; not members: ${fewOf(extra)}` : '') +
        (lacking.length ? `; members not given: ${fewOf(lacking)}` : ''),
    );
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

export function toCsiGroupSnapshot(gs: GroupSnapshot, members: Snapshot[]): csi.VolumeGroupSnapshot {
  const snapshots = members.map(toCsiSnapshot);
  return {
    group_snapshot_id: gs.id,
    snapshots,
    creation_time: timestampOf(gs.created_at ?? members[0]?.created_at ?? ''),
    ready_to_use: gs.status === 'available' && snapshots.length > 0 && snapshots.every((s) => s.ready_to_use),
  };
}
