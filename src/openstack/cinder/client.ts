/**
 * `CinderClient`: the Cinder v3 client over a Keystone (or noauth) `ServiceSession`, implementing
 * `CinderApi`. Each method hands over to the module of its resource (volumes.ts, snapshots.ts, ...);
 * the shared plumbing (microversion negotiation, requests, pages) lives in core.ts.
 *
 * - Errors: HTTP failures surface as the session's OpenStackError (use `.notFound`, `.overQuota`...);
 *   deletes of missing objects are NOT swallowed here (callers decide; see `ignoreNotFound`).
 * - Lists: `listX()` async-iterates every page following Cinder's `*_links` "next" marker;
 *   `listXPage()` returns one page and the marker of the next.
 */
import type { CallOptions, CinderApi, Microversion, WaitOptions } from '../cinder-api.ts';
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
  Snapshot,
  SnapshotListFilters,
  UserMessage,
  Volume,
  VolumeListFilters,
  VolumeType,
} from '../cinder-types.ts';
import { compareMicroversions, hasFeature, parseMicroversion } from '../microversion.ts';
import { VolumePoller } from '../volume-poller.ts';
import * as attachments from './attachments.ts';
import * as backups from './backups.ts';
import { type CinderClientOptions, CinderCore, type Page } from './core.ts';
import * as groupSnapshots from './group-snapshots.ts';
import * as groups from './groups.ts';
import * as misc from './misc.ts';
import * as snapshots from './snapshots.ts';
import * as types from './types.ts';
import * as volumes from './volumes.ts';

export class CinderClient implements CinderApi {
  readonly #c: CinderCore;
  /** The shared poll of this client's concurrent volume-create waits (volume-poller.ts). */
  readonly #poller: VolumePoller;

  constructor(opts: CinderClientOptions) {
    const c = new CinderCore(opts);
    this.#c = c;
    this.#poller = new VolumePoller({
      supported: () => {
        try {
          return hasFeature(c.microversion, 'timeFilters');
        } catch {
          return false; // not negotiated yet
        }
      },
      listChangedSince: (since, page, signal) => volumes.listVolumesChangedSince(c, since, page, { signal }),
      waitOwn: (id, wait, beforeGet) => volumes.waitForVolume(c, id, wait, beforeGet),
      explain: (id, signal) => volumes.volumeFailureReason(c, id, signal),
      logger: opts.logger,
    });
  }

  // ---------------------------------------------------------------- microversions

  get microversion(): Microversion {
    return this.#c.microversion;
  }

  negotiate(opts: CallOptions = {}): Promise<Microversion> {
    return this.#c.negotiate(opts);
  }

  supports(version: string): boolean {
    return compareMicroversions(this.microversion, parseMicroversion(version)) >= 0;
  }

  projectId(): Promise<string> {
    return this.#c.session.projectId();
  }

  // ---------------------------------------------------------------- volumes

  createVolume(req: CreateVolumeRequest, opts?: CallOptions): Promise<Volume> {
    return volumes.createVolume(this.#c, req, opts);
  }
  getVolume(id: string, opts?: CallOptions): Promise<Volume> {
    return volumes.getVolume(this.#c, id, opts);
  }
  listVolumesPage(filters: VolumeListFilters, opts?: CallOptions): Promise<Page<Volume>> {
    return volumes.listVolumesPage(this.#c, filters, opts);
  }
  listVolumes(filters?: VolumeListFilters, opts?: CallOptions): AsyncIterable<Volume> {
    return volumes.listVolumes(this.#c, filters, opts);
  }
  updateVolume(
    id: string,
    patch: { name?: string; description?: string },
    opts?: CallOptions,
  ): Promise<Volume> {
    return volumes.updateVolume(this.#c, id, patch, opts);
  }
  deleteVolume(id: string, opts?: CallOptions & { cascade?: boolean; force?: boolean }): Promise<void> {
    return volumes.deleteVolume(this.#c, id, opts);
  }
  /** Merges `metadata` into the volume's metadata (POST; other keys stay). */
  setVolumeMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void> {
    return volumes.setVolumeMetadata(this.#c, id, metadata, opts);
  }
  /** Replaces all of the volume's metadata (PUT). */
  replaceVolumeMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void> {
    return volumes.replaceVolumeMetadata(this.#c, id, metadata, opts);
  }
  deleteVolumeMetadataKey(id: string, key: string, opts?: CallOptions): Promise<void> {
    return volumes.deleteVolumeMetadataKey(this.#c, id, key, opts);
  }
  /** `os-extend`. Pass `online: true` for an in-use volume: needs 3.42, checked locally. */
  extendVolume(id: string, newSizeGiB: number, opts?: CallOptions & { online?: boolean }): Promise<void> {
    return volumes.extendVolume(this.#c, id, newSizeGiB, opts);
  }
  retypeVolume(
    id: string,
    newType: string,
    migrationPolicy: 'never' | 'on-demand',
    opts?: CallOptions,
  ): Promise<void> {
    return volumes.retypeVolume(this.#c, id, newType, migrationPolicy, opts);
  }
  revertVolumeToSnapshot(id: string, snapshotId: string, opts?: CallOptions): Promise<void> {
    return volumes.revertVolumeToSnapshot(this.#c, id, snapshotId, opts);
  }
  setVolumeReadonly(id: string, readonly: boolean, opts?: CallOptions): Promise<void> {
    return volumes.setVolumeReadonly(this.#c, id, readonly, opts);
  }
  /** Admin: `os-force_detach` of one attachment (rolls back a failed detach). */
  forceDetachVolume(
    id: string,
    attachmentId: string,
    opts?: CallOptions & { connector?: Record<string, unknown> },
  ): Promise<void> {
    return volumes.forceDetachVolume(this.#c, id, attachmentId, opts);
  }
  /** On a failure status the error carries Cinder's latest user message for the volume. */
  waitForVolume(id: string, wait: WaitOptions): Promise<Volume | undefined> {
    return volumes.waitForVolume(this.#c, id, wait);
  }
  /** `waitForVolume` for a volume just created; concurrent ones share one listing per tick. */
  waitForNewVolume(
    volume: { id: string; created_at?: unknown },
    wait: WaitOptions,
  ): Promise<Volume | undefined> {
    return this.#poller.wait(volume, wait);
  }

  // ---------------------------------------------------------------- snapshots

  /** Sends `force` only below 3.66 (Cinder rejects `force: false` from 3.66 on). */
  createSnapshot(req: CreateSnapshotRequest, opts?: CallOptions): Promise<Snapshot> {
    return snapshots.createSnapshot(this.#c, req, opts);
  }
  getSnapshot(id: string, opts?: CallOptions): Promise<Snapshot> {
    return snapshots.getSnapshot(this.#c, id, opts);
  }
  listSnapshotsPage(filters: SnapshotListFilters, opts?: CallOptions): Promise<Page<Snapshot>> {
    return snapshots.listSnapshotsPage(this.#c, filters, opts);
  }
  listSnapshots(filters?: SnapshotListFilters, opts?: CallOptions): AsyncIterable<Snapshot> {
    return snapshots.listSnapshots(this.#c, filters, opts);
  }
  deleteSnapshot(id: string, opts?: CallOptions): Promise<void> {
    return snapshots.deleteSnapshot(this.#c, id, opts);
  }
  setSnapshotMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void> {
    return snapshots.setSnapshotMetadata(this.#c, id, metadata, opts);
  }
  waitForSnapshot(id: string, wait: WaitOptions): Promise<Snapshot | undefined> {
    return snapshots.waitForSnapshot(this.#c, id, wait);
  }

  // ---------------------------------------------------------------- attachments (3.27+)

  /** `mode` needs 3.54 (checked locally). The response holds connection_info (secrets). */
  createAttachment(req: CreateAttachmentRequest, opts?: CallOptions): Promise<Attachment> {
    return attachments.createAttachment(this.#c, req, opts);
  }
  getAttachment(id: string, opts?: CallOptions): Promise<Attachment> {
    return attachments.getAttachment(this.#c, id, opts);
  }
  /** Every page; server-side filters need 3.31, below that the list is filtered here. */
  listAttachments(
    filters?: { volume_id?: string; status?: string },
    opts?: CallOptions,
  ): Promise<Attachment[]> {
    return attachments.listAttachments(this.#c, filters, opts);
  }
  updateAttachment(
    id: string,
    connector: Record<string, unknown>,
    opts?: CallOptions & { mode?: AttachMode },
  ): Promise<Attachment> {
    return attachments.updateAttachment(this.#c, id, connector, opts);
  }
  /** `os-complete` (3.44+): marks the attachment attached and the volume in-use. */
  completeAttachment(id: string, opts?: CallOptions): Promise<void> {
    return attachments.completeAttachment(this.#c, id, opts);
  }
  deleteAttachment(id: string, opts?: CallOptions): Promise<void> {
    return attachments.deleteAttachment(this.#c, id, opts);
  }

  // ---------------------------------------------------------------- volume types

  listVolumeTypes(opts?: CallOptions): Promise<VolumeType[]> {
    return types.listVolumeTypes(this.#c, opts);
  }
  /** By id, or by name (looked up in the list; an unknown name gives a 404 OpenStackError). */
  getVolumeType(idOrName: string, opts?: CallOptions): Promise<VolumeType> {
    return types.getVolumeType(this.#c, idOrName, opts);
  }
  /** The project's default type (3.62+). */
  getDefaultVolumeType(opts?: CallOptions): Promise<VolumeType> {
    return types.getDefaultVolumeType(this.#c, opts);
  }
  getVolumeTypeExtraSpecs(idOrName: string, opts?: CallOptions): Promise<Record<string, string>> {
    return types.getVolumeTypeExtraSpecs(this.#c, idOrName, opts);
  }

  // ---------------------------------------------------------------- limits, quotas, zones, messages, pools

  getAbsoluteLimits(opts?: CallOptions): Promise<AbsoluteLimits> {
    return misc.getAbsoluteLimits(this.#c, opts);
  }
  /** Quota limits with usage of this project, incl. per-type keys (`gigabytes_<type>`). */
  getQuotaUsage(opts?: CallOptions): Promise<QuotaUsage> {
    return misc.getQuotaUsage(this.#c, opts);
  }
  listAvailabilityZones(opts?: CallOptions): Promise<AvailabilityZone[]> {
    return misc.listAvailabilityZones(this.#c, opts);
  }
  /** User messages (3.3+). Filtering by resource needs 3.5; below that it is done here. */
  listMessages(filters?: { resource_uuid?: string }, opts?: CallOptions): Promise<UserMessage[]> {
    return misc.listMessages(this.#c, filters, opts);
  }
  /** The newest user message about a resource, or undefined (also when the server lacks 3.3). */
  latestMessage(resourceId: string, opts?: CallOptions): Promise<UserMessage | undefined> {
    return misc.latestMessage(this.#c, resourceId, opts);
  }
  /** Admin only: Cinder's services (e.g. `binary: 'cinder-backup'` tells whether backups can work). */
  listServices(
    filters?: { binary?: string; host?: string },
    opts?: CallOptions,
  ): Promise<misc.CinderService[]> {
    return misc.listServices(this.#c, filters, opts);
  }
  /** Admin only: the scheduler's pools with capabilities. */
  listSchedulerPools(opts?: CallOptions): Promise<misc.SchedulerPool[]> {
    return misc.listSchedulerPools(this.#c, opts);
  }

  // ---------------------------------------------------------------- backups

  createBackup(req: CreateBackupRequest, opts?: CallOptions): Promise<Backup> {
    return backups.createBackup(this.#c, req, opts);
  }
  getBackup(id: string, opts?: CallOptions): Promise<Backup> {
    return backups.getBackup(this.#c, id, opts);
  }
  listBackupsPage(filters: BackupListFilters, opts?: CallOptions): Promise<Page<Backup>> {
    return backups.listBackupsPage(this.#c, filters, opts);
  }
  listBackups(filters?: BackupListFilters, opts?: CallOptions): AsyncIterable<Backup> {
    return backups.listBackups(this.#c, filters, opts);
  }
  deleteBackup(id: string, opts?: CallOptions): Promise<void> {
    return backups.deleteBackup(this.#c, id, opts);
  }
  restoreBackup(
    id: string,
    target: { volume_id?: string; name?: string },
    opts?: CallOptions,
  ): Promise<{ volume_id: string }> {
    return backups.restoreBackup(this.#c, id, target, opts);
  }
  waitForBackup(id: string, wait: WaitOptions): Promise<Backup | undefined> {
    return backups.waitForBackup(this.#c, id, wait);
  }

  // ---------------------------------------------------------------- groups (3.13+), group snapshots (3.14+)

  listGroupTypes(opts?: CallOptions): Promise<GroupType[]> {
    return groups.listGroupTypes(this.#c, opts);
  }
  getGroupType(idOrName: string, opts?: CallOptions): Promise<GroupType> {
    return groups.getGroupType(this.#c, idOrName, opts);
  }
  /** Admin: creates a group type (e.g. with `consistent_group_snapshot_enabled`). */
  createGroupType(req: groups.CreateGroupTypeRequest, opts?: CallOptions): Promise<GroupType> {
    return groups.createGroupType(this.#c, req, opts);
  }
  deleteGroupType(id: string, opts?: CallOptions): Promise<void> {
    return groups.deleteGroupType(this.#c, id, opts);
  }
  createGroup(req: groups.CreateGroupRequest, opts?: CallOptions): Promise<Group> {
    return groups.createGroup(this.#c, req, opts);
  }
  getGroup(id: string, opts?: CallOptions): Promise<Group> {
    return groups.getGroup(this.#c, id, opts);
  }
  deleteGroup(id: string, opts?: CallOptions & { deleteVolumes?: boolean }): Promise<void> {
    return groups.deleteGroup(this.#c, id, opts);
  }
  /** Adds/removes volumes (Cinder takes comma-separated id lists). */
  updateGroup(
    id: string,
    patch: { add_volumes?: string[]; remove_volumes?: string[]; name?: string; description?: string },
    opts?: CallOptions,
  ): Promise<void> {
    return groups.updateGroup(this.#c, id, patch, opts);
  }
  /** `GET /groups/detail` (every page); `name` is also checked by callers (older servers ignore filters). */
  listGroups(filters?: { name?: string; limit?: number }, opts?: CallOptions): AsyncIterable<Group> {
    return groups.listGroups(this.#c, filters, opts);
  }
  waitForGroup(id: string, wait: WaitOptions): Promise<Group | undefined> {
    return groups.waitForGroup(this.#c, id, wait);
  }
  createGroupSnapshot(
    req: { group_id: string; name?: string; description?: string },
    opts?: CallOptions,
  ): Promise<GroupSnapshot> {
    return groupSnapshots.createGroupSnapshot(this.#c, req, opts);
  }
  getGroupSnapshot(id: string, opts?: CallOptions): Promise<GroupSnapshot> {
    return groupSnapshots.getGroupSnapshot(this.#c, id, opts);
  }
  deleteGroupSnapshot(id: string, opts?: CallOptions): Promise<void> {
    return groupSnapshots.deleteGroupSnapshot(this.#c, id, opts);
  }
  /** `GET /group_snapshots/detail` (every page), optionally filtered by name or group. */
  listGroupSnapshots(
    filters?: { name?: string; group_id?: string; limit?: number },
    opts?: CallOptions,
  ): AsyncIterable<GroupSnapshot> {
    return groupSnapshots.listGroupSnapshots(this.#c, filters, opts);
  }
  waitForGroupSnapshot(id: string, wait: WaitOptions): Promise<GroupSnapshot | undefined> {
    return groupSnapshots.waitForGroupSnapshot(this.#c, id, wait);
  }
}
