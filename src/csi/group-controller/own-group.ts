/**
 * The Cinder groups the driver makes for group snapshots (marker in their description): waiting
 * for them, releasing their volumes, deleting them once no group snapshot uses them, and sweeping
 * the ones a DeleteVolumeGroupSnapshot that died half-way left behind.
 */

import { status } from '@grpc/grpc-js';
import { ignoreNotFound } from '../../openstack/cinder.ts';
import type { Group } from '../../openstack/cinder-types.ts';
import { OpenStackError } from '../../openstack/errors.ts';
import { deleteUnderWay } from '../delete-under-way.ts';
import { CsiError, unavailable } from '../errors.ts';
import type { RpcContext } from '../rpc.ts';
import { type GroupController, lockKey, marker } from './context.ts';

export async function groupAvailable(c: GroupController, id: string, signal: AbortSignal): Promise<Group> {
  const g = await c.cinder.waitForGroup(id, { target: ['available'], signal });
  if (!g) throw unavailable(`Cinder group ${id} disappeared; retry`);
  return g;
}

/** Takes every volume out of the group (idempotent). */
export async function releaseVolumes(c: GroupController, groupId: string, ctx: RpcContext): Promise<void> {
  const group = await ignoreNotFound(c.cinder.getGroup(groupId, { signal: ctx.signal }));
  if (!group || (group.volumes ?? []).length === 0) return;
  const ready = await groupAvailable(c, groupId, ctx.signal);
  const volumes = ready.volumes ?? [];
  if (volumes.length === 0) return;
  await updateOwnGroup(c, groupId, { remove_volumes: volumes }, ctx.signal);
  await groupAvailable(c, groupId, ctx.signal);
}

/**
 * Cinder's refusals of a membership change that only a view changing underneath explains: an
 * earlier try's `PUT /groups/{id}` whose answer was lost and which Cinder is still carrying out
 * (checked against cinder/group/api.py: `_validate_add_volumes`, `_validate_remove_volumes`, the
 * "no valid ... add_volumes, or remove_volumes" and status checks).
 */
const GROUP_VIEW_CHANGED =
  /already in group|not in the group|no valid name, description, add_volumes|status must be available/i;

/**
 * `PUT /groups/{id}` on a group the driver made. The source volumes were checked just before
 * (sourceVolumes: not in a foreign group, available or in-use), so a 400 of the kinds above is
 * transient: UNAVAILABLE, and the CO's retry reads Cinder's state again and finds the update done.
 */
export async function updateOwnGroup(
  c: GroupController,
  groupId: string,
  patch: { add_volumes?: string[]; remove_volumes?: string[] },
  signal: AbortSignal,
): Promise<void> {
  try {
    await c.cinder.updateGroup(groupId, patch, { signal });
  } catch (err) {
    if (err instanceof OpenStackError && err.badRequest && GROUP_VIEW_CHANGED.test(err.faultMessage)) {
      throw new CsiError(
        status.UNAVAILABLE,
        `Cinder group ${groupId} changed while the driver updated its volumes ` +
          `(${err.faultMessage.slice(0, 200)}); an earlier update is still landing, retry`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Driver groups looked at per sweep (one page of groups, a few lookups each). */
const MAX_SWEEP = 20;

/**
 * Deletes this cluster's driver groups that hold no volume and no group snapshot: what a
 * DeleteVolumeGroupSnapshot that died after Cinder removed the group snapshot leaves behind (its
 * retry no longer knows the group's id). A group of a create in flight in this process is skipped
 * (name lock); a create that died before taking its group snapshot recreates the group on retry.
 * A failure propagates: the group snapshot is already gone, so an OK now would leave the group for
 * ever (nothing sweeps later); an error makes the CO retry, and the retry sweeps again.
 */
export async function sweepOrphanGroups(c: GroupController, ctx: RpcContext): Promise<void> {
  const signal = ctx.signal;
  let looked = 0;
  for await (const g of c.cinder.listGroups({ limit: MAX_SWEEP }, { signal })) {
    if (g.description !== marker.group(c.clusterId) || c.locks.isHeld(lockKey.name(g.name ?? ''))) continue;
    if (++looked > MAX_SWEEP) break;
    const full = await ignoreNotFound(c.cinder.getGroup(g.id, { signal }));
    if (full?.status !== 'available' || (full.volumes ?? []).length > 0) continue;
    await deleteOwnGroup(c, g.id, ctx);
  }
}

/** Deletes the group the driver made for a group snapshot once no group snapshot of it is left. */
export async function deleteOwnGroup(c: GroupController, groupId: string, ctx: RpcContext): Promise<void> {
  const signal = ctx.signal;
  const group = await ignoreNotFound(c.cinder.getGroup(groupId, { signal }));
  if (!group || group.description !== marker.group(c.clusterId)) return;
  for await (const other of c.cinder.listGroupSnapshots({ group_id: groupId }, { signal })) {
    if (other.group_id === groupId) return; // still used (e.g. a group snapshot being deleted)
  }
  await releaseVolumes(c, groupId, ctx);
  await deleteUnderWay(
    () => c.cinder.deleteGroup(groupId, { signal }),
    () => c.cinder.getGroup(groupId, { signal }),
  );
  await c.cinder.waitForGroup(groupId, { target: [], gone: true, signal });
  ctx.log.info({ groupId }, 'DeleteVolumeGroupSnapshot: Cinder group deleted');
}
