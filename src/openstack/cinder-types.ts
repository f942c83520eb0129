/**
 * Cinder v3 resource shapes, typed from the Block Storage API v3 reference and the lab's real
 * responses (test/lab/samples). Only fields the driver or an operator's tooling reads are listed;
 * Cinder sends more.
 */

export type VolumeStatus =
  | 'creating'
  | 'available'
  | 'reserved'
  | 'attaching'
  | 'detaching'
  | 'in-use'
  | 'maintenance'
  | 'deleting'
  | 'awaiting-transfer'
  | 'error'
  | 'error_deleting'
  | 'backing-up'
  | 'restoring-backup'
  | 'error_backing-up'
  | 'error_restoring'
  | 'error_extending'
  | 'downloading'
  | 'uploading'
  | 'retyping'
  | 'extending';

export interface VolumeAttachmentRef {
  id?: string;
  attachment_id: string;
  volume_id?: string;
  server_id?: string | null;
  host_name?: string | null;
  device?: string | null;
  attached_at?: string | null;
}

export interface Volume {
  id: string;
  name: string | null;
  status: VolumeStatus | string;
  size: number;
  availability_zone: string | null;
  volume_type: string | null;
  volume_type_id?: string | null;
  snapshot_id: string | null;
  source_volid: string | null;
  backup_id?: string | null;
  description: string | null;
  metadata: Record<string, string>;
  multiattach: boolean;
  bootable?: string;
  encrypted?: boolean;
  attachments: VolumeAttachmentRef[];
  migration_status?: string | null;
  group_id?: string | null;
  shared_targets?: boolean;
  created_at: string;
  updated_at: string | null;
  user_id?: string;
  'os-vol-tenant-attr:tenant_id'?: string;
  'os-vol-host-attr:host'?: string | null;
  volume_image_metadata?: Record<string, string>;
}

export interface CreateVolumeRequest {
  size: number;
  name?: string;
  description?: string;
  volume_type?: string;
  availability_zone?: string;
  snapshot_id?: string;
  source_volid?: string;
  backup_id?: string;
  imageRef?: string;
  metadata?: Record<string, string>;
  multiattach?: boolean;
  group_id?: string;
  consistencygroup_id?: string;
  scheduler_hints?: Record<string, unknown>;
}

export interface VolumeListFilters {
  name?: string;
  status?: string;
  metadata?: Record<string, string>;
  availability_zone?: string;
  /**
   * Volumes created from this snapshot. Not in Cinder's default resource filters: admins only;
   * for other users Cinder answers 400 "Invalid filters" (3.33+) or ignores it (older).
   */
  snapshot_id?: string;
  all_tenants?: boolean;
  sort?: string;
  /** Page size used while iterating. */
  limit?: number;
  /** Start after this id (Cinder's marker). */
  marker?: string;
}

/** Filters of `GET /snapshots/detail`; an id filter that is not a Cinder id matches nothing. */
export interface SnapshotListFilters {
  name?: string;
  volume_id?: string;
  /** Only the member snapshots of this group snapshot. */
  group_snapshot_id?: string;
  status?: string;
  limit?: number;
  marker?: string;
}

/** Filters of `GET /backups/detail`. */
export interface BackupListFilters {
  name?: string;
  volume_id?: string;
  limit?: number;
  marker?: string;
}

export type SnapshotStatus =
  | 'creating'
  | 'available'
  | 'backing-up'
  | 'deleting'
  | 'error'
  | 'deleted'
  | 'unmanaging'
  | 'restoring'
  | 'error_deleting';

export interface Snapshot {
  id: string;
  name: string | null;
  description: string | null;
  volume_id: string;
  status: SnapshotStatus | string;
  size: number;
  metadata: Record<string, string>;
  created_at: string;
  updated_at: string | null;
  group_snapshot_id?: string | null;
  'os-extended-snapshot-attributes:progress'?: string;
}

export interface CreateSnapshotRequest {
  volume_id: string;
  name?: string;
  description?: string;
  force?: boolean;
  metadata?: Record<string, string>;
}

/** os-brick style host connector sent with an attachment (no secrets). */
export interface HostConnector {
  initiator?: string;
  ip?: string;
  host: string;
  multipath?: boolean;
  platform?: string;
  os_type?: string;
  do_local_attach?: boolean;
  nqn?: string;
  mountpoint?: string;
  [key: string]: unknown;
}

/** connection_info as Cinder returns it. Contains secrets (CHAP, keys): never log or publish raw. */
export interface ConnectionInfo {
  driver_volume_type: string;
  access_mode?: string;
  // iSCSI
  target_portal?: string;
  target_iqn?: string;
  target_lun?: number;
  target_portals?: string[];
  target_iqns?: string[];
  target_luns?: number[];
  target_discovered?: boolean;
  auth_method?: string;
  auth_username?: string;
  auth_password?: string;
  discovery_auth_method?: string;
  discovery_auth_username?: string;
  discovery_auth_password?: string;
  // RBD
  name?: string;
  hosts?: string[];
  ports?: string[];
  cluster_name?: string;
  auth_enabled?: boolean;
  secret_type?: string;
  secret_uuid?: string;
  keyring?: string;
  discard?: boolean;
  volume_id?: string;
  attachment_id?: string;
  encrypted?: boolean;
  [key: string]: unknown;
}

export type AttachMode = 'rw' | 'ro';

export interface Attachment {
  id: string;
  status: string;
  instance: string | null;
  volume_id: string;
  attached_at: string | null;
  detached_at: string | null;
  attach_mode: AttachMode | string;
  /** Present on GET/create when a connector was given; holds secrets. */
  connection_info?: ConnectionInfo | null;
  /** Listing (3.31+) and some responses carry the connector's host here. */
  host?: string | null;
  connector?: HostConnector | null;
}

export interface CreateAttachmentRequest {
  volume_uuid: string;
  instance_uuid?: string;
  connector?: HostConnector;
  mode?: AttachMode;
}

export interface VolumeType {
  id: string;
  name: string;
  description?: string | null;
  is_public?: boolean;
  extra_specs?: Record<string, string>;
}

export interface Backup {
  id: string;
  name: string | null;
  description?: string | null;
  volume_id: string;
  snapshot_id?: string | null;
  status: string;
  size: number;
  availability_zone?: string | null;
  container?: string | null;
  is_incremental?: boolean;
  metadata?: Record<string, string>;
  created_at: string;
  fail_reason?: string | null;
}

export interface CreateBackupRequest {
  volume_id: string;
  name?: string;
  description?: string;
  snapshot_id?: string;
  incremental?: boolean;
  force?: boolean;
  container?: string;
  metadata?: Record<string, string>;
  availability_zone?: string;
}

export interface Group {
  id: string;
  name: string | null;
  status: string;
  group_type: string;
  volume_types?: string[];
  volumes?: string[];
  availability_zone?: string | null;
  description?: string | null;
  created_at?: string;
}

export interface GroupSnapshot {
  id: string;
  name: string | null;
  status: string;
  group_id: string;
  group_type_id?: string;
  description?: string | null;
  created_at?: string;
}

/** A group type (`/group_types`); one without group specs gets Cinder's generic group implementation. */
export interface GroupType {
  id: string;
  name: string;
  description?: string | null;
  is_public?: boolean;
  group_specs?: Record<string, string>;
}

export interface AbsoluteLimits {
  maxTotalVolumeGigabytes: number;
  totalGigabytesUsed: number;
  maxTotalVolumes: number;
  totalVolumesUsed: number;
  maxTotalSnapshots: number;
  totalSnapshotsUsed: number;
  maxTotalBackups?: number;
  totalBackupsUsed?: number;
  maxTotalBackupGigabytes?: number;
  totalBackupGigabytesUsed?: number;
  [key: string]: number | undefined;
}

/** Quota set with usage (`GET os-quota-sets/{project}?usage=true`), incl. per-type keys like `gigabytes_<type>`. */
export type QuotaUsage = Record<
  string,
  { limit: number; in_use: number; reserved?: number; allocated?: number }
>;

export interface AvailabilityZone {
  zoneName: string;
  zoneState: { available: boolean };
}

export interface UserMessage {
  id: string;
  resource_uuid: string;
  resource_type: string;
  event_id: string;
  message_level: string;
  user_message: string;
  created_at: string;
  request_id?: string;
}

export interface GlanceImage {
  id: string;
  name: string | null;
  status: string;
  size?: number | null;
  min_disk?: number;
  disk_format?: string | null;
}

/** A scheduler pool (`GET /scheduler-stats/get_pools?detail=true`, admin only). */
export interface SchedulerPool {
  name: string;
  capabilities?: Record<string, unknown>;
}
