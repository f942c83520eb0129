import type * as csi from './generated/csi/v1/index.ts';
import type { Rpc } from './rpc.ts';

/** The Controller service as the CSI services implement it; a missing method answers UNIMPLEMENTED. */
export interface ControllerService {
  CreateVolume?: Rpc<csi.CreateVolumeRequest__Output, csi.CreateVolumeResponse>;
  DeleteVolume?: Rpc<csi.DeleteVolumeRequest__Output, csi.DeleteVolumeResponse>;
  ControllerPublishVolume?: Rpc<
    csi.ControllerPublishVolumeRequest__Output,
    csi.ControllerPublishVolumeResponse
  >;
  ControllerUnpublishVolume?: Rpc<
    csi.ControllerUnpublishVolumeRequest__Output,
    csi.ControllerUnpublishVolumeResponse
  >;
  ValidateVolumeCapabilities?: Rpc<
    csi.ValidateVolumeCapabilitiesRequest__Output,
    csi.ValidateVolumeCapabilitiesResponse
  >;
  ListVolumes?: Rpc<csi.ListVolumesRequest__Output, csi.ListVolumesResponse>;
  GetCapacity?: Rpc<csi.GetCapacityRequest__Output, csi.GetCapacityResponse>;
  ControllerGetCapabilities?: Rpc<
    csi.ControllerGetCapabilitiesRequest__Output,
    csi.ControllerGetCapabilitiesResponse
  >;
  CreateSnapshot?: Rpc<csi.CreateSnapshotRequest__Output, csi.CreateSnapshotResponse>;
  DeleteSnapshot?: Rpc<csi.DeleteSnapshotRequest__Output, csi.DeleteSnapshotResponse>;
  ListSnapshots?: Rpc<csi.ListSnapshotsRequest__Output, csi.ListSnapshotsResponse>;
  GetSnapshot?: Rpc<csi.GetSnapshotRequest__Output, csi.GetSnapshotResponse>;
  ControllerExpandVolume?: Rpc<csi.ControllerExpandVolumeRequest__Output, csi.ControllerExpandVolumeResponse>;
  ControllerGetVolume?: Rpc<csi.ControllerGetVolumeRequest__Output, csi.ControllerGetVolumeResponse>;
  ControllerModifyVolume?: Rpc<csi.ControllerModifyVolumeRequest__Output, csi.ControllerModifyVolumeResponse>;
}

export interface NodeService {
  NodeStageVolume?: Rpc<csi.NodeStageVolumeRequest__Output, csi.NodeStageVolumeResponse>;
  NodeUnstageVolume?: Rpc<csi.NodeUnstageVolumeRequest__Output, csi.NodeUnstageVolumeResponse>;
  NodePublishVolume?: Rpc<csi.NodePublishVolumeRequest__Output, csi.NodePublishVolumeResponse>;
  NodeUnpublishVolume?: Rpc<csi.NodeUnpublishVolumeRequest__Output, csi.NodeUnpublishVolumeResponse>;
  NodeGetVolumeStats?: Rpc<csi.NodeGetVolumeStatsRequest__Output, csi.NodeGetVolumeStatsResponse>;
  NodeExpandVolume?: Rpc<csi.NodeExpandVolumeRequest__Output, csi.NodeExpandVolumeResponse>;
  NodeGetCapabilities?: Rpc<csi.NodeGetCapabilitiesRequest__Output, csi.NodeGetCapabilitiesResponse>;
  NodeGetInfo?: Rpc<csi.NodeGetInfoRequest__Output, csi.NodeGetInfoResponse>;
}

export interface IdentityService {
  GetPluginInfo: Rpc<csi.GetPluginInfoRequest__Output, csi.GetPluginInfoResponse>;
  GetPluginCapabilities: Rpc<csi.GetPluginCapabilitiesRequest__Output, csi.GetPluginCapabilitiesResponse>;
  Probe: Rpc<csi.ProbeRequest__Output, csi.ProbeResponse>;
}

export interface GroupControllerService {
  GroupControllerGetCapabilities?: Rpc<
    csi.GroupControllerGetCapabilitiesRequest__Output,
    csi.GroupControllerGetCapabilitiesResponse
  >;
  CreateVolumeGroupSnapshot?: Rpc<
    csi.CreateVolumeGroupSnapshotRequest__Output,
    csi.CreateVolumeGroupSnapshotResponse
  >;
  DeleteVolumeGroupSnapshot?: Rpc<
    csi.DeleteVolumeGroupSnapshotRequest__Output,
    csi.DeleteVolumeGroupSnapshotResponse
  >;
  GetVolumeGroupSnapshot?: Rpc<csi.GetVolumeGroupSnapshotRequest__Output, csi.GetVolumeGroupSnapshotResponse>;
}
