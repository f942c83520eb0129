/** GroupController requests of the unit and the lab tests (CSI field names, nothing secret). */

/** CreateVolumeGroupSnapshot of `ids` named `name`. */
export const groupSnapshotReq = (name: string, ids: string[], parameters: Record<string, string> = {}) => ({
  name,
  source_volume_ids: ids,
  secrets: {},
  parameters,
});

/** Get/DeleteVolumeGroupSnapshot of group snapshot `id` (with the members the CO knows). */
export const groupSnapshotIdReq = (id: string, snapshot_ids: string[] = []) => ({
  group_snapshot_id: id,
  snapshot_ids,
  secrets: {},
});
