import type {
  AbsoluteLimits,
  AttachMode,
  Attachment,
  AvailabilityZone,
  Backup,
  BackupListFilters,
  CreateAttachmentRequest,
  CreateBackupRequest,
  CreateSnapshotRequest,
  CreateVolumeRequest,
  Group,
  GroupSnapshot,
  GroupType,
  QuotaUsage,
  SchedulerPool,
  Snapshot,
  SnapshotListFilters,
  UserMessage,
  Volume,
  VolumeListFilters,
  VolumeType,
} from './cinder-types.ts';

/** Options every call takes: an AbortSignal tied to the gRPC deadline / cancellation. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface WaitOptions extends CallOptions {
  /** Statuses that end the wait successfully. */
  target: readonly string[];
  /** Statuses that end it with an error at once (default: every status starting with `error`). */
  failOn?: readonly string[];
  /** Treat 404 as success (waiting for a delete). */
  gone?: boolean;
}

/** A negotiated microversion, e.g. { major: 3, minor: 70 }. */
export interface Microversion {
  major: number;
  minor: number;
}

/**
 * The Cinder v3 surface the CSI services use. Implemented by `CinderClient` (src/openstack/cinder.ts)
 * against a real Cinder; tests may substitute doubles. Every method throws `OpenStackError`
 * (src/openstack/errors.ts) for HTTP failures and `MicroversionError` for a call above the
 * negotiated microversion.
 */
export interface CinderApi {
  /** The negotiated microversion (after `negotiate()`). */
  readonly microversion: Microversion;
  /** Version discovery; idempotent, cached. */
  negotiate(opts?: CallOptions): Promise<Microversion>;
  /** True when the negotiated microversion is >= `version` ("3.44"). */
  supports(version: string): boolean;
  projectId(): Promise<string>;

  // volumes
  createVolume(req: CreateVolumeRequest, opts?: CallOptions): Promise<Volume>;
  getVolume(id: string, opts?: CallOptions): Promise<Volume>;
  /** Iterates all pages (limit + marker). */
  listVolumes(filters?: VolumeListFilters, opts?: CallOptions): AsyncIterable<Volume>;
  /** One page; `next` is the marker for the following page or undefined at the end. */
  listVolumesPage(
    filters: VolumeListFilters,
    opts?: CallOptions,
  ): Promise<{ items: Volume[]; next: string | undefined }>;
  updateVolume(
    id: string,
    patch: { name?: string; description?: string },
    opts?: CallOptions,
  ): Promise<Volume>;
  deleteVolume(id: string, opts?: CallOptions & { cascade?: boolean; force?: boolean }): Promise<void>;
  setVolumeMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void>;
  /** Replaces all of the volume's metadata (PUT; idempotent). */
  replaceVolumeMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void>;
  /** Removes one metadata key (404 when the key or the volume does not exist). */
  deleteVolumeMetadataKey(id: string, key: string, opts?: CallOptions): Promise<void>;
  /** `os-extend`; `online: true` for an in-use volume (needs 3.42, refused locally below). */
  extendVolume(id: string, newSizeGiB: number, opts?: CallOptions & { online?: boolean }): Promise<void>;
  retypeVolume(
    id: string,
    newType: string,
    migrationPolicy: 'never' | 'on-demand',
    opts?: CallOptions,
  ): Promise<void>;
  revertVolumeToSnapshot(id: string, snapshotId: string, opts?: CallOptions): Promise<void>;
  setVolumeReadonly(id: string, readonly: boolean, opts?: CallOptions): Promise<void>;
  forceDetachVolume(id: string, attachmentId: string, opts?: CallOptions): Promise<void>;
  waitForVolume(id: string, wait: WaitOptions): Promise<Volume | undefined>;
  /**
   * `waitForVolume` for a volume this client just created (`created_at` as Cinder returned it):
   * same results and errors; while other such waits are in flight, they share one volume listing
   * per tick (src/openstack/volume-poller.ts). Optional: doubles without it use `waitForVolume`.
   */
  waitForNewVolume?(
    volume: { id: string; created_at?: unknown },
    wait: WaitOptions,
  ): Promise<Volume | undefined>;

  // snapshots
  createSnapshot(req: CreateSnapshotRequest, opts?: CallOptions): Promise<Snapshot>;
  getSnapshot(id: string, opts?: CallOptions): Promise<Snapshot>;
  listSnapshots(filters?: SnapshotListFilters, opts?: CallOptions): AsyncIterable<Snapshot>;
  listSnapshotsPage(
    filters: SnapshotListFilters,
    opts?: CallOptions,
  ): Promise<{ items: Snapshot[]; next: string | undefined }>;
  deleteSnapshot(id: string, opts?: CallOptions): Promise<void>;
  setSnapshotMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void>;
  waitForSnapshot(id: string, wait: WaitOptions): Promise<Snapshot | undefined>;

  // attachments (3.27+)
  createAttachment(req: CreateAttachmentRequest, opts?: CallOptions): Promise<Attachment>;
  getAttachment(id: string, opts?: CallOptions): Promise<Attachment>;
  listAttachments(
    filters?: { volume_id?: string; status?: string },
    opts?: CallOptions,
  ): Promise<Attachment[]>;
  updateAttachment(
    id: string,
    connector: Record<string, unknown>,
    opts?: CallOptions & { mode?: AttachMode },
  ): Promise<Attachment>;
  completeAttachment(id: string, opts?: CallOptions): Promise<void>;
  deleteAttachment(id: string, opts?: CallOptions): Promise<void>;

  // types, limits, zones, messages
  listVolumeTypes(opts?: CallOptions): Promise<VolumeType[]>;
  getVolumeType(idOrName: string, opts?: CallOptions): Promise<VolumeType>;
  /** Admin only: the scheduler's pools with their capabilities (capacity). Optional for doubles. */
  listSchedulerPools?(opts?: CallOptions): Promise<SchedulerPool[]>;
  getDefaultVolumeType(opts?: CallOptions): Promise<VolumeType>;
  getAbsoluteLimits(opts?: CallOptions): Promise<AbsoluteLimits>;
  getQuotaUsage(opts?: CallOptions): Promise<QuotaUsage>;
  listAvailabilityZones(opts?: CallOptions): Promise<AvailabilityZone[]>;
  listMessages(filters?: { resource_uuid?: string }, opts?: CallOptions): Promise<UserMessage[]>;

  // backups
  createBackup(req: CreateBackupRequest, opts?: CallOptions): Promise<Backup>;
  getBackup(id: string, opts?: CallOptions): Promise<Backup>;
  listBackups(filters?: BackupListFilters, opts?: CallOptions): AsyncIterable<Backup>;
  deleteBackup(id: string, opts?: CallOptions): Promise<void>;
  restoreBackup(
    id: string,
    target: { volume_id?: string; name?: string },
    opts?: CallOptions,
  ): Promise<{ volume_id: string }>;
  waitForBackup(id: string, wait: WaitOptions): Promise<Backup | undefined>;

  // groups (3.13+) and group snapshots (3.14+)
  createGroup(
    req: {
      name: string;
      group_type: string;
      volume_types: string[];
      availability_zone?: string;
      description?: string;
    },
    opts?: CallOptions,
  ): Promise<Group>;
  getGroup(id: string, opts?: CallOptions): Promise<Group>;
  deleteGroup(id: string, opts?: CallOptions & { deleteVolumes?: boolean }): Promise<void>;
  updateGroup(
    id: string,
    patch: { add_volumes?: string[]; remove_volumes?: string[] },
    opts?: CallOptions,
  ): Promise<void>;
  createGroupSnapshot(
    req: { group_id: string; name?: string; description?: string },
    opts?: CallOptions,
  ): Promise<GroupSnapshot>;
  getGroupSnapshot(id: string, opts?: CallOptions): Promise<GroupSnapshot>;
  deleteGroupSnapshot(id: string, opts?: CallOptions): Promise<void>;

  // Used by the GroupController service (src/csi/group-controller). Optional so that doubles which
  // do not model groups need not implement them; `CinderClient` implements all of them.
  listGroupTypes?(opts?: CallOptions): Promise<GroupType[]>;
  /** Admin only. */
  createGroupType?(
    req: { name: string; description?: string; is_public?: boolean; group_specs?: Record<string, string> },
    opts?: CallOptions,
  ): Promise<GroupType>;
  /** Every page of `GET /groups/detail`. */
  listGroups?(filters?: { name?: string; limit?: number }, opts?: CallOptions): AsyncIterable<Group>;
  /** Every page of `GET /group_snapshots/detail`. */
  listGroupSnapshots?(
    filters?: { name?: string; group_id?: string; limit?: number },
    opts?: CallOptions,
  ): AsyncIterable<GroupSnapshot>;
  waitForGroup?(id: string, wait: WaitOptions): Promise<Group | undefined>;
  waitForGroupSnapshot?(id: string, wait: WaitOptions): Promise<GroupSnapshot | undefined>;
}
