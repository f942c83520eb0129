/**
 * In-memory Cinder double for the controller's unit tests (the lab integration tests use the real
 * Cinder; this double exists for fast, deterministic checks of the logic and for what the lab
 * lacks, e.g. a backup service). It keeps Cinder's observable rules that the controller relies on:
 * asynchronous status transitions (creating → available, deleting → gone, extending, retyping),
 * attachment reservation rules (non-multiattach volumes need `available`), `force` for snapshots of
 * in-use volumes, quota 413s, user messages for volumes that go to `error`, marker/limit paging
 * with 404 for an unknown marker, microversion gating (3.42 online extend, 3.54 attach mode), and
 * connection_info with CHAP secrets. Errors are real OpenStackError / MicroversionError objects.
 */
import { randomUUID } from 'node:crypto';
import type { CallOptions, CinderApi, WaitOptions } from '../../../src/openstack/cinder-api.ts';
import type {
  Attachment,
  Backup,
  CreateAttachmentRequest,
  CreateBackupRequest,
  CreateSnapshotRequest,
  Group,
  GroupSnapshot,
  Snapshot,
} from '../../../src/openstack/cinder-types.ts';
import { waitForObject } from '../../../src/openstack/waiter.ts';
import { type AttachmentRec, FAST, fail } from './fake-cinder-base.ts';
import { FakeCinderVolumes } from './fake-cinder-volumes.ts';

export type { FakeCinderOptions } from './fake-cinder-base.ts';

export class FakeCinder extends FakeCinderVolumes implements CinderApi {
  // ------------------------------------------------------------ snapshots

  async createSnapshot(req: CreateSnapshotRequest, opts?: CallOptions): Promise<Snapshot> {
    this.record('createSnapshot', opts);
    const v = this.volumes.get(req.volume_id);
    if (!v) throw fail(404, `Volume ${req.volume_id} could not be found.`);
    if (v.status === 'in-use' && !req.force) {
      throw fail(400, 'Invalid volume: Volume status must be available, but it is in-use (use force).');
    }
    const s: Snapshot = {
      id: randomUUID(),
      name: req.name ?? null,
      description: req.description ?? null,
      volume_id: v.id,
      status: 'creating',
      size: v.size,
      metadata: { ...(req.metadata ?? {}) },
      created_at: this.now(),
      updated_at: null,
    };
    this.snapshots.set(s.id, s);
    this.later(() => {
      if (s.status === 'creating') s.status = 'available';
    });
    return structuredClone(s);
  }

  async getSnapshot(id: string, opts?: CallOptions): Promise<Snapshot> {
    this.record('getSnapshot', opts);
    const s = this.snapshots.get(id);
    if (!s) throw fail(404, `Snapshot ${id} could not be found.`);
    return structuredClone(s);
  }

  protected filterSnapshots(f: { name?: string; volume_id?: string; status?: string }): Snapshot[] {
    return [...this.snapshots.values()]
      .filter(
        (s) =>
          (f.name === undefined || s.name === f.name) &&
          (f.volume_id === undefined || s.volume_id === f.volume_id),
      )
      .filter((s) => f.status === undefined || s.status === f.status)
      .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  }

  async *listSnapshots(
    filters: { name?: string; volume_id?: string; status?: string; limit?: number; marker?: string } = {},
    opts?: CallOptions,
  ): AsyncIterable<Snapshot> {
    let marker = filters.marker;
    do {
      const p = await this.listSnapshotsPage({ ...filters, marker }, opts);
      yield* p.items;
      marker = p.next;
    } while (marker);
  }

  async listSnapshotsPage(
    filters: { name?: string; volume_id?: string; status?: string; limit?: number; marker?: string },
    opts?: CallOptions,
  ) {
    this.record('listSnapshots', opts);
    return this.page(this.filterSnapshots(filters), filters.limit, filters.marker);
  }

  async deleteSnapshot(id: string, opts?: CallOptions): Promise<void> {
    this.record('deleteSnapshot', opts);
    const s = this.snapshots.get(id);
    if (!s) throw fail(404, `Snapshot ${id} could not be found.`);
    if (s.status !== 'available' && s.status !== 'error') {
      throw fail(
        400,
        `Invalid snapshot: Volume Snapshot status must be available or error and must not be part of a group.`,
      );
    }
    s.status = 'deleting';
    const busy = this.cowSnapshots && [...this.volumes.values()].some((v) => v.snapshot_id === id);
    this.later(() => {
      if (!busy) {
        this.snapshots.delete(id);
        return;
      }
      s.status = 'available';
      this.messages.push({
        id: randomUUID(),
        resource_uuid: id,
        resource_type: 'VOLUME_SNAPSHOT',
        event_id: 'VOLUME_VOLUME_SNAPSHOT_003',
        message_level: 'ERROR',
        user_message: 'delete snapshot:Snapshot is busy.',
        created_at: this.now(),
      });
    });
  }

  async setSnapshotMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    Object.assign((await this.getSnapshot(id)) && (this.snapshots.get(id)?.metadata ?? {}), metadata);
  }

  waitForSnapshot(id: string, wait: WaitOptions): Promise<Snapshot | undefined> {
    return waitForObject('snapshot', id, () => this.getSnapshot(id), wait, {
      schedule: FAST,
      explain: async () => (await this.listMessages({ resource_uuid: id })).at(-1)?.user_message,
    });
  }

  // ------------------------------------------------------------ attachments

  async createAttachment(req: CreateAttachmentRequest, opts?: CallOptions): Promise<Attachment> {
    this.record('createAttachment', opts);
    this.requireVersion(req.mode ? '3.54' : '3.27', req.mode ? 'attachment mode' : 'attachments');
    const v = this.volumes.get(req.volume_uuid);
    if (!v) throw fail(404, `Volume ${req.volume_uuid} could not be found.`);
    const ok = v.multiattach ? ['available', 'in-use', 'reserved'] : ['available'];
    if (!ok.includes(v.status)) {
      throw fail(
        400,
        `Invalid volume: Volume status must be available or downloading to reserve, but the current status is ${v.status}.`,
      );
    }
    if (v.status === 'available') v.status = 'reserved';
    const id = randomUUID();
    const a: AttachmentRec = {
      id,
      status: req.connector ? 'attaching' : 'reserved',
      instance: req.instance_uuid ?? null,
      volume_id: v.id,
      attached_at: '',
      detached_at: '',
      attach_mode: req.mode ?? 'rw',
      connectorHost: req.connector?.host,
      connection_info: req.connector
        ? {
            driver_volume_type: 'iscsi',
            target_portal: '127.0.0.1:3260',
            target_iqn: `iqn.2010-10.org.openstack:volume-${v.id}`,
            target_lun: 1,
            target_discovered: false,
            auth_method: 'CHAP',
            auth_username: 'chap-user-SECRET',
            auth_password: 'chap-password-SECRET',
            volume_id: v.id,
            access_mode: req.mode ?? 'rw',
            attachment_id: id,
          }
        : null,
    };
    this.attachments.set(id, a);
    return this.viewAttachment(a);
  }

  protected viewAttachment(a: AttachmentRec): Attachment {
    const { connectorHost: _h, ...view } = structuredClone(a);
    return view;
  }

  async getAttachment(id: string, opts?: CallOptions): Promise<Attachment> {
    this.record('getAttachment', opts);
    const a = this.attachments.get(id);
    if (!a) throw fail(404, `Attachment ${id} could not be found.`);
    return this.viewAttachment(a);
  }

  async listAttachments(
    filters: { volume_id?: string; status?: string } = {},
    opts?: CallOptions,
  ): Promise<Attachment[]> {
    this.record('listAttachments', opts);
    return [...this.attachments.values()]
      .filter(
        (a) =>
          (!filters.volume_id || a.volume_id === filters.volume_id) &&
          (!filters.status || a.status === filters.status),
      )
      .map((a) => this.viewAttachment(a));
  }

  async updateAttachment(id: string): Promise<Attachment> {
    return this.getAttachment(id);
  }

  /** os-complete: what the node does in NodeStageVolume. */
  async completeAttachment(id: string, opts?: CallOptions): Promise<void> {
    this.record('completeAttachment', opts);
    const a = this.attachments.get(id);
    if (!a) throw fail(404, `Attachment ${id} could not be found.`);
    a.status = 'attached';
    const v = this.volumes.get(a.volume_id);
    if (v) {
      v.status = 'in-use';
      v.attachments.push({
        attachment_id: id,
        volume_id: v.id,
        host_name: a.connectorHost ?? null,
        server_id: null,
      });
    }
  }

  async deleteAttachment(id: string, opts?: CallOptions): Promise<void> {
    this.record('deleteAttachment', opts);
    const a = this.attachments.get(id);
    if (!a) throw fail(404, `Attachment ${id} could not be found.`);
    this.attachments.delete(id);
    const v = this.volumes.get(a.volume_id);
    if (v) {
      v.attachments = v.attachments.filter((x) => x.attachment_id !== id);
      const left = [...this.attachments.values()].filter((x) => x.volume_id === v.id);
      if (left.length === 0) v.status = 'available';
    }
  }

  // ------------------------------------------------------------ backups

  async createBackup(req: CreateBackupRequest, opts?: CallOptions): Promise<Backup> {
    this.record('createBackup', opts);
    if (req.metadata) this.requireVersion('3.43', 'backup metadata');
    const v = this.volumes.get(req.volume_id);
    if (!v) throw fail(404, `Volume ${req.volume_id} could not be found.`);
    const snap = req.snapshot_id ? this.snapshots.get(req.snapshot_id) : undefined;
    if (req.snapshot_id && snap?.status !== 'available')
      throw fail(400, 'Invalid snapshot: snapshot must be available');
    if (snap) snap.status = 'backing-up';
    const b: Backup = {
      id: randomUUID(),
      name: req.name ?? null,
      volume_id: v.id,
      snapshot_id: req.snapshot_id ?? null,
      status: 'creating',
      size: v.size,
      metadata: { ...(req.metadata ?? {}) },
      created_at: this.now(),
    };
    this.backups.set(b.id, b);
    this.backedUpMetadata.set(b.id, { ...v.metadata });
    // Like the lab (no cinder-backup service): the request is accepted, the backup then fails.
    this.later(() => {
      b.status = this.backupService ? 'available' : 'error';
      if (!this.backupService) b.fail_reason = 'Service not found for creating backup.';
      if (snap) snap.status = 'available';
    }, this.delayMs * 3);
    // Like Cinder: POST /backups answers with the id and name only.
    return { id: b.id, name: b.name } as Backup;
  }
  async getBackup(id: string, opts?: CallOptions): Promise<Backup> {
    this.record('getBackup', opts);
    const b = this.backups.get(id);
    if (!b) throw fail(404, `Backup ${id} could not be found.`);
    return structuredClone(b);
  }
  async *listBackups(
    filters: { name?: string; volume_id?: string } = {},
    opts?: CallOptions,
  ): AsyncIterable<Backup> {
    this.record('listBackups', opts);
    for (const b of this.backups.values()) {
      if (
        (!filters.name || b.name === filters.name) &&
        (!filters.volume_id || b.volume_id === filters.volume_id)
      ) {
        yield structuredClone(b);
      }
    }
  }
  async deleteBackup(id: string, opts?: CallOptions): Promise<void> {
    this.record('deleteBackup', opts);
    const b = this.backups.get(id);
    if (!b) throw fail(404, `Backup ${id} could not be found.`);
    b.status = 'deleting';
    this.later(() => this.backups.delete(id));
  }
  async restoreBackup(): Promise<{ volume_id: string }> {
    throw fail(501, 'not implemented in the double');
  }
  waitForBackup(id: string, wait: WaitOptions): Promise<Backup | undefined> {
    return waitForObject('backup', id, () => this.getBackup(id), wait, { schedule: FAST });
  }

  // ------------------------------------------------------------ groups (unused by the controller)

  async createGroup(): Promise<Group> {
    throw fail(501, 'not implemented in the double');
  }
  async getGroup(): Promise<Group> {
    throw fail(501, 'not implemented in the double');
  }
  async deleteGroup(): Promise<void> {}
  async updateGroup(): Promise<void> {}
  async createGroupSnapshot(): Promise<GroupSnapshot> {
    throw fail(501, 'not implemented in the double');
  }
  async getGroupSnapshot(): Promise<GroupSnapshot> {
    throw fail(501, 'not implemented in the double');
  }
  async deleteGroupSnapshot(): Promise<void> {}
}
