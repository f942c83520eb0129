/**
 * The CSI GroupController service: volume group snapshots on Cinder groups and group snapshots
 * (Cinder API 3.13 groups, 3.14 group snapshots).
 *
 * Ids: group_snapshot_id = Cinder group snapshot id; the member snapshots' snapshot_id = their
 * Cinder snapshot ids, so each is usable on its own as a CreateVolume content source and shows in
 * GetSnapshot / ListSnapshots of the Controller service (members carry the cluster-id metadata).
 *
 * CreateVolumeGroupSnapshot(name, source_volume_ids):
 *  1. validate: name, non-empty source_volume_ids without duplicates, parameters (`groupType` only;
 *     the snapshotter's `csi.storage.k8s.io/*` keys are ignored);
 *  2. idempotency: Cinder group snapshots and groups have no metadata, so the driver marks its
 *     own with `name` = CSI name and a description carrying the cluster id (context.ts `marker`).
 *     An existing group snapshot of that name and cluster with the same member volumes is
 *     returned; with other volumes → ALREADY_EXISTS;
 *  3. every volume must exist (NOT_FOUND naming all missing ones), be in one zone
 *     (INVALID_ARGUMENT), be available or in-use, and be in no other Cinder group
 *     (FAILED_PRECONDITION);
 *  4. a Cinder group named after the CSI name (reused after an interrupted call) of the group type
 *     `groupType`, else `defaultGroupType` (default `cinder-csi-generic`, created on demand without
 *     group specs — Cinder's generic groups, which work on every backend by snapshotting each member;
 *     creating a group type needs an admin account, else an operator creates it once), holding the
 *     volumes' types; the volumes are added with `add_volumes`;
 *  5. the group snapshot; waited for until `available` within `groupSnapshotWaitMs` and the call's
 *     deadline — not ready by then → ready_to_use=false, the retry (same name) picks it up;
 *     `error` → it is deleted and the call fails with Cinder's reason;
 *  6. once available, the volumes are taken out of the group again: a volume in a group cannot be
 *     deleted (the Controller's DeleteVolume would fail) nor join another group. Cinder (Zed, lab,
 *     fake and rbd backends) allows removing volumes from a group that has group snapshots, and the
 *     group snapshot and its members stay usable (CreateVolume from a member works). The members
 *     are returned as CSI snapshots (source volume, size, creation time, group_snapshot_id).
 *  Concurrent calls on the same name or on overlapping volumes → ABORTED.
 *
 * DeleteVolumeGroupSnapshot: snapshot_ids must be exactly the members (else FAILED_PRECONDITION;
 * member snapshots cannot be deleted one by one in Cinder, which refuses with 400), then the group
 * snapshot is deleted (Cinder deletes the members) and waited for, then the group the driver made
 * for it (recognised by its description) is deleted once no group snapshot of it is left. A missing
 * group snapshot is success.
 *
 * GetVolumeGroupSnapshot: NOT_FOUND for unknown ids; snapshot_ids, when given, must match.
 */
import type * as csi from '../generated/csi/v1/index.ts';
import type { GroupControllerService } from '../services.ts';
import { type GroupControllerOptions, makeGroupController } from './context.ts';
import {
  createVolumeGroupSnapshot,
  deleteVolumeGroupSnapshot,
  getVolumeGroupSnapshot,
} from './group-snapshots.ts';

export type { GroupControllerOptions } from './context.ts';
export { DEFAULT_GROUP_TYPE, marker as GROUP_MARKER } from './context.ts';

export const GROUP_CONTROLLER_CAPABILITIES = ['CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT'] as const;

/** Throws when `opts.cinder` lacks the (optional in CinderApi) group methods. */
export function createGroupControllerService(opts: GroupControllerOptions): Required<GroupControllerService> {
  const c = makeGroupController(opts);
  const capabilities: csi.GroupControllerServiceCapability[] = GROUP_CONTROLLER_CAPABILITIES.map((type) => ({
    rpc: { type },
  }));
  return {
    GroupControllerGetCapabilities: async () => ({ capabilities }),
    CreateVolumeGroupSnapshot: (req, ctx) => createVolumeGroupSnapshot(c, req, ctx),
    DeleteVolumeGroupSnapshot: (req, ctx) => deleteVolumeGroupSnapshot(c, req, ctx),
    GetVolumeGroupSnapshot: (req, ctx) => getVolumeGroupSnapshot(c, req, ctx),
  };
}
