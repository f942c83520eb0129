/**
 * The CSI Controller service on Cinder. `createControllerService(opts)` returns the handlers; the
 * gRPC surface (src/grpc/server.ts) adds deadlines, logging and error reporting.
 *
 * Ids: volume id = Cinder volume id; snapshot id = Cinder snapshot id, or `backup:<backup id>` for
 * VolumeSnapshotClass `type: backup`; node id = Kubernetes node name = host connector `host`.
 * See create-volume.ts, volumes.ts, publish.ts, snapshots.ts, capacity.ts and params.ts for the
 * behaviour of each RPC and the parameters they accept.
 */
import type * as csi from '../generated/csi/v1/index.ts';
import type { ControllerService } from '../services.ts';
import { getCapacity } from './capacity.ts';
import { type ControllerOptions, makeController } from './context.ts';
import { createVolume } from './create-volume.ts';
import { deleteSnapshot } from './delete-snapshot.ts';
import { controllerPublishVolume, controllerUnpublishVolume } from './publish.ts';
import { createSnapshot, getSnapshot, listSnapshots } from './snapshots.ts';
import {
  controllerExpandVolume,
  controllerGetVolume,
  controllerModifyVolume,
  deleteVolume,
  listVolumes,
  validateVolumeCapabilities,
} from './volumes.ts';

export type { ControllerOptions } from './context.ts';
export { BACKUP_ID_PREFIX, META } from './context.ts';
export { publishContext } from './publish.ts';

/** Exactly the capabilities implemented below. */
export const CONTROLLER_CAPABILITIES = [
  'CREATE_DELETE_VOLUME',
  'PUBLISH_UNPUBLISH_VOLUME',
  'LIST_VOLUMES',
  'LIST_VOLUMES_PUBLISHED_NODES',
  'GET_VOLUME',
  'VOLUME_CONDITION',
  'GET_CAPACITY',
  'CREATE_DELETE_SNAPSHOT',
  'LIST_SNAPSHOTS',
  'GET_SNAPSHOT',
  'CLONE_VOLUME',
  'EXPAND_VOLUME',
  'MODIFY_VOLUME',
  'PUBLISH_READONLY',
  'SINGLE_NODE_MULTI_WRITER',
] as const;

export function createControllerService(opts: ControllerOptions): Required<ControllerService> {
  const c = makeController(opts);
  const capabilities: csi.ControllerServiceCapability[] = CONTROLLER_CAPABILITIES.map((type) => ({
    rpc: { type },
  }));
  return {
    CreateVolume: (req, ctx) => createVolume(c, req, ctx),
    DeleteVolume: (req, ctx) => deleteVolume(c, req, ctx),
    ControllerPublishVolume: (req, ctx) => controllerPublishVolume(c, req, ctx),
    ControllerUnpublishVolume: (req, ctx) => controllerUnpublishVolume(c, req, ctx),
    ValidateVolumeCapabilities: (req, ctx) => validateVolumeCapabilities(c, req, ctx),
    ListVolumes: (req, ctx) => listVolumes(c, req, ctx),
    GetCapacity: (req, ctx) => getCapacity(c, req, ctx),
    ControllerGetCapabilities: async () => ({ capabilities }),
    CreateSnapshot: (req, ctx) => createSnapshot(c, req, ctx),
    DeleteSnapshot: (req, ctx) => deleteSnapshot(c, req, ctx),
    ListSnapshots: (req, ctx) => listSnapshots(c, req, ctx),
    GetSnapshot: (req, ctx) => getSnapshot(c, req, ctx),
    ControllerExpandVolume: (req, ctx) => controllerExpandVolume(c, req, ctx),
    ControllerGetVolume: (req, ctx) => controllerGetVolume(c, req, ctx),
    ControllerModifyVolume: (req, ctx) => controllerModifyVolume(c, req, ctx),
  };
}
