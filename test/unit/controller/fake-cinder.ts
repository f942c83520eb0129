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
import type { CallOptions, CinderApi, Microversion, WaitOptions } from '../../../src/openstack/cinder-api.ts';
import type {
  AbsoluteLimits,
  Attachment,
  AvailabilityZone,
  Backup,
  CreateAttachmentRequest,
  CreateBackupRequest,
  CreateSnapshotRequest,
  CreateVolumeRequest,
  Group,
  GroupSnapshot,
  QuotaUsage,
  SchedulerPool,
  Snapshot,
  UserMessage,
  Volume,
  VolumeListFilters,
  VolumeType,
} from '../../../src/openstack/cinder-types.ts';
import { MicroversionError, OpenStackError } from '../../../src/openstack/errors.ts';
import { waitForObject } from '../../../src/openstack/waiter.ts';
import { throwIfAborted } from '../../../src/util/abort.ts';

const FAST = { firstMs: 2, factor: 1.5, capMs: 20 };

function fail(status: number, message: string): OpenStackError {
  return new OpenStackError({ status, faultMessage: message, method: 'X', url: 'http://fake-cinder/v3' });
}

export interface FakeCinderOptions {
  microversion?: string;
  /** Delay of asynchronous transitions (ms). */
  delayMs?: number;
  gigabytesQuota?: number;
  perVolumeGigabytes?: number;
  backupService?: boolean;
  /**
   * Volumes restored from a snapshot depend on it (like RBD clones): deleting such a snapshot puts
   * it back to `available` with the user message "Snapshot is busy", as Cinder's volume service does.
   */
  cowSnapshots?: boolean;
  /** Refuse the admin-only `snapshot_id` volume filter with 400 (a non-admin user). */
  nonAdmin?: boolean;
}

interface AttachmentRec extends Attachment {
  connectorHost: string | undefined;
}

export class FakeCinder implements CinderApi {
  readonly volumes = new Map<string, Volume>();
  readonly snapshots = new Map<string, Snapshot>();
  readonly backups = new Map<string, Backup>();
  readonly attachments = new Map<string, AttachmentRec>();
  readonly messages: UserMessage[] = [];
  readonly types: VolumeType[] = [
    { id: 'type-fake', name: 'fake', extra_specs: { volume_backend_name: 'fake' } },
    { id: 'type-fast', name: 'fast', extra_specs: { volume_backend_name: 'fake' } },
    { id: 'type-multi', name: 'multi', extra_specs: { multiattach: '<is> True' } },
    { id: 'type-broken', name: 'broken', extra_specs: { volume_backend_name: 'nowhere' } },
  ];
  readonly calls: string[] = [];
  /** The scheduler's pools (admin view); undefined → 403 like for non-admin credentials. */
  pools: SchedulerPool[] | undefined;
  microversion: Microversion;
  delayMs: number;
  gigabytesQuota: number;
  cowSnapshots: boolean;
  nonAdmin: boolean;
  perVolumeGigabytes: number;
  backupService: boolean;
  /** cinder.conf allow_availability_zone_fallback: an unknown zone silently becomes `nova`. */
  zoneFallback = false;
  /** Makes the next N createVolume calls hang in `creating` until released. */
  holdCreating = false;
  #seq = 0;

  constructor(opts: FakeCinderOptions = {}) {
    const [major, minor] = (opts.microversion ?? '3.70').split('.').map(Number);
    this.microversion = { major: major ?? 3, minor: minor ?? 0 };
    this.delayMs = opts.delayMs ?? 5;
    this.gigabytesQuota = opts.gigabytesQuota ?? 1000;
    this.perVolumeGigabytes = opts.perVolumeGigabytes ?? -1;
    this.backupService = opts.backupService ?? true;
    this.cowSnapshots = opts.cowSnapshots ?? false;
    this.nonAdmin = opts.nonAdmin ?? false;
  }

  #call(name: string, opts?: CallOptions): void {
    throwIfAborted(opts?.signal);
    this.calls.push(name);
  }

  #later(fn: () => void, ms = this.delayMs): void {
    setTimeout(fn, ms).unref?.();
  }

  #now(): string {
    // Cinder style: UTC without zone; strictly increasing for stable ordering.
    this.#seq++;
    return new Date(Date.now() - 60_000 + this.#seq).toISOString().replace('Z', '000');
  }

  #require(version: string, label: string): void {
    if (!this.supports(version)) {
      throw new MicroversionError(`${label} need Cinder API microversion ${version}`);
    }
  }

  async negotiate(): Promise<Microversion> {
    return this.microversion;
  }
  supports(version: string): boolean {
    const [maj, min] = version.split('.').map(Number);
    const m = this.microversion;
    return m.major > (maj ?? 0) || (m.major === maj && m.minor >= (min ?? 0));
  }
  async projectId(): Promise<string> {
    return 'project';
  }

  // ------------------------------------------------------------ volumes

  usedGiB(): number {
    let n = 0;
    for (const v of this.volumes.values()) n += v.size;
    return n;
  }

  async createVolume(req: CreateVolumeRequest, opts?: CallOptions): Promise<Volume> {
    this.#call('createVolume', opts);
    if (req.backup_id) this.#require('3.47', 'volume from backup');
    if (this.usedGiB() + req.size > this.gigabytesQuota) {
      throw fail(
        413,
        `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested ${req.size}G, quota is ${this.gigabytesQuota}G and ${this.usedGiB()}G has been consumed.`,
      );
    }
    const type = req.volume_type
      ? this.types.find((t) => t.name === req.volume_type || t.id === req.volume_type)
      : this.types[0];
    if (!type) throw fail(404, `Volume type with name ${req.volume_type} could not be found.`);
    const fallback =
      this.zoneFallback && req.availability_zone !== undefined && req.availability_zone !== 'nova';
    if (req.availability_zone && req.availability_zone !== 'nova' && !fallback) {
      throw fail(400, `Invalid input received: Availability zone '${req.availability_zone}' is invalid.`);
    }
    if (req.snapshot_id && !this.snapshots.has(req.snapshot_id))
      throw fail(404, `Snapshot ${req.snapshot_id} could not be found.`);
    if (req.source_volid && !this.volumes.has(req.source_volid))
      throw fail(404, `Volume ${req.source_volid} could not be found.`);
    const id = randomUUID();
    const v: Volume = {
      id,
      name: req.name ?? null,
      status: 'creating',
      size: req.size,
      availability_zone: fallback ? 'nova' : (req.availability_zone ?? 'nova'),
      volume_type: type.name,
      volume_type_id: type.id,
      snapshot_id: req.snapshot_id ?? null,
      source_volid: req.source_volid ?? null,
      // Cinder's volume view has no backup field: a restored volume does not show its backup.
      description: req.description ?? null,
      metadata: { ...(req.metadata ?? {}) },
      multiattach: type.extra_specs?.['multiattach'] === '<is> True',
      attachments: [],
      created_at: this.#now(),
      updated_at: null,
    };
    this.volumes.set(id, v);
    if (req.backup_id) this.#restoring.set(id, req.backup_id);
    if (!this.holdCreating) this.#later(() => this.finishCreating(id));
    return structuredClone(v);
  }

  /** Ends `creating` (as the volume service would). */
  finishCreating(id: string): void {
    const v = this.volumes.get(id);
    if (!v) return;
    if (v.status !== 'creating') return;
    if (v.volume_type === 'broken') {
      v.status = 'error';
      this.messages.push({
        id: randomUUID(),
        resource_uuid: id,
        resource_type: 'VOLUME',
        event_id: 'VOLUME_000002',
        message_level: 'ERROR',
        user_message: 'schedule allocate volume:Could not find any available weighted backend.',
        created_at: this.#now(),
      });
    } else {
      const backupId = this.#restoring.get(id);
      this.#restoring.delete(id);
      if (backupId) {
        // Like Cinder's restore: the backed-up volume's metadata replaces the target's, plus src_backup_id.
        v.metadata = { ...(this.#backedUpMetadata.get(backupId) ?? {}), src_backup_id: backupId };
      }
      v.status = 'available';
    }
  }

  readonly #restoring = new Map<string, string>();
  readonly #backedUpMetadata = new Map<string, Record<string, string>>();

  async listSchedulerPools(opts?: CallOptions): Promise<SchedulerPool[]> {
    this.#call('listSchedulerPools', opts);
    if (!this.pools) throw fail(403, 'Policy does not allow scheduler_extension:scheduler_stats:get_pools.');
    return structuredClone(this.pools);
  }

  async getVolume(id: string, opts?: CallOptions): Promise<Volume> {
    this.#call('getVolume', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    return structuredClone(v);
  }

  #filterVolumes(f: VolumeListFilters): Volume[] {
    if (f.snapshot_id !== undefined && this.nonAdmin) {
      throw fail(400, 'Invalid filters snapshot_id are found in query options.');
    }
    return [...this.volumes.values()]
      .filter((v) => f.snapshot_id === undefined || v.snapshot_id === f.snapshot_id)
      .filter(
        (v) =>
          (f.name === undefined || v.name === f.name) && (f.status === undefined || v.status === f.status),
      )
      .filter((v) => Object.entries(f.metadata ?? {}).every(([k, val]) => v.metadata[k] === val))
      .sort((a, b) => (a.created_at < b.created_at ? 1 : -1)); // Cinder default: created_at desc
  }

  #page<T extends { id: string }>(items: T[], limit: number | undefined, marker: string | undefined) {
    let start = 0;
    if (marker) {
      const i = items.findIndex((x) => x.id === marker);
      if (i < 0) throw fail(404, `Marker ${marker} could not be found.`);
      start = i + 1;
    }
    const size = limit ?? 1000;
    const slice = items.slice(start, start + size);
    const next = slice.length === size && slice.length > 0 ? slice[slice.length - 1]?.id : undefined;
    return { items: structuredClone(slice), next };
  }

  async *listVolumes(filters: VolumeListFilters = {}, opts?: CallOptions): AsyncIterable<Volume> {
    let marker = filters.marker;
    do {
      const p = await this.listVolumesPage({ ...filters, marker }, opts);
      yield* p.items;
      marker = p.next;
    } while (marker);
  }

  async listVolumesPage(filters: VolumeListFilters, opts?: CallOptions) {
    this.#call('listVolumes', opts);
    return this.#page(this.#filterVolumes(filters), filters.limit, filters.marker);
  }

  async updateVolume(id: string, patch: { name?: string; description?: string }): Promise<Volume> {
    const v = await this.getVolume(id);
    Object.assign(this.volumes.get(id) ?? {}, patch);
    return v;
  }

  async deleteVolume(id: string, opts?: CallOptions): Promise<void> {
    this.#call('deleteVolume', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    if (!['available', 'error', 'error_restoring', 'error_extending', 'error_deleting'].includes(v.status)) {
      throw fail(
        400,
        `Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer. (HTTP 400)`,
      );
    }
    if ([...this.snapshots.values()].some((s) => s.volume_id === id)) {
      throw fail(400, 'Invalid volume: Volume cannot be deleted while it has snapshots.');
    }
    v.status = 'deleting';
    this.#later(() => this.volumes.delete(id));
  }

  async setVolumeMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void> {
    this.#call('setVolumeMetadata', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    Object.assign(v.metadata, metadata);
  }

  async replaceVolumeMetadata(
    id: string,
    metadata: Record<string, string>,
    opts?: CallOptions,
  ): Promise<void> {
    this.#call('replaceVolumeMetadata', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    v.metadata = { ...metadata };
  }

  async deleteVolumeMetadataKey(id: string, key: string, opts?: CallOptions): Promise<void> {
    this.#call('deleteVolumeMetadataKey', opts);
    const v = this.volumes.get(id);
    if (!v || !(key in v.metadata)) throw fail(404, `Volume metadata ${key} could not be found.`);
    delete v.metadata[key];
  }

  async extendVolume(
    id: string,
    newSizeGiB: number,
    opts?: CallOptions & { online?: boolean },
  ): Promise<void> {
    this.#call('extendVolume', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    if (v.status === 'in-use') this.#require('3.42', 'online extend');
    if (v.status !== 'available' && v.status !== 'in-use') {
      throw fail(
        400,
        `Invalid volume: Volume status must be available or in-use to extend, but current status is: ${v.status}.`,
      );
    }
    if (newSizeGiB <= v.size)
      throw fail(400, `Invalid input received: New size for extend must be greater than current size.`);
    const back = v.status;
    v.status = 'extending';
    this.#later(() => {
      v.size = newSizeGiB;
      v.status = back;
    });
  }

  async retypeVolume(
    id: string,
    newType: string,
    migrationPolicy: 'never' | 'on-demand',
    opts?: CallOptions,
  ): Promise<void> {
    this.#call('retypeVolume', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    const t = this.types.find((x) => x.name === newType || x.id === newType);
    if (!t) throw fail(404, `Volume type ${newType} could not be found.`);
    const back = v.status;
    v.status = 'retyping';
    this.#later(() => {
      v.status = back;
      // A type on another backend needs a migration, refused with policy never.
      const sameBackend =
        t.extra_specs?.['volume_backend_name'] === 'fake' || !t.extra_specs?.['volume_backend_name'];
      if (sameBackend || migrationPolicy === 'on-demand') {
        v.volume_type = t.name;
        v.volume_type_id = t.id;
      } else {
        this.messages.push({
          id: randomUUID(),
          resource_uuid: id,
          resource_type: 'VOLUME',
          event_id: 'VOLUME_000008',
          message_level: 'ERROR',
          user_message: 'retype volume:Retype requires migration but is not allowed.',
          created_at: this.#now(),
        });
      }
    });
  }

  async revertVolumeToSnapshot(): Promise<void> {
    throw fail(501, 'not implemented in the double');
  }
  async setVolumeReadonly(): Promise<void> {}
  async forceDetachVolume(): Promise<void> {}

  waitForVolume(id: string, wait: WaitOptions): Promise<Volume | undefined> {
    return waitForObject('volume', id, () => this.getVolume(id), wait, {
      schedule: FAST,
      explain: async () => this.messages.filter((m) => m.resource_uuid === id).at(-1)?.user_message,
    });
  }

  // ------------------------------------------------------------ snapshots

  async createSnapshot(req: CreateSnapshotRequest, opts?: CallOptions): Promise<Snapshot> {
    this.#call('createSnapshot', opts);
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
      created_at: this.#now(),
      updated_at: null,
    };
    this.snapshots.set(s.id, s);
    this.#later(() => {
      if (s.status === 'creating') s.status = 'available';
    });
    return structuredClone(s);
  }

  async getSnapshot(id: string, opts?: CallOptions): Promise<Snapshot> {
    this.#call('getSnapshot', opts);
    const s = this.snapshots.get(id);
    if (!s) throw fail(404, `Snapshot ${id} could not be found.`);
    return structuredClone(s);
  }

  #filterSnapshots(f: { name?: string; volume_id?: string; status?: string }): Snapshot[] {
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
    this.#call('listSnapshots', opts);
    return this.#page(this.#filterSnapshots(filters), filters.limit, filters.marker);
  }

  async deleteSnapshot(id: string, opts?: CallOptions): Promise<void> {
    this.#call('deleteSnapshot', opts);
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
    this.#later(() => {
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
        created_at: this.#now(),
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
    this.#call('createAttachment', opts);
    this.#require(req.mode ? '3.54' : '3.27', req.mode ? 'attachment mode' : 'attachments');
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
    return this.#viewAttachment(a);
  }

  #viewAttachment(a: AttachmentRec): Attachment {
    const { connectorHost: _h, ...view } = structuredClone(a);
    return view;
  }

  async getAttachment(id: string, opts?: CallOptions): Promise<Attachment> {
    this.#call('getAttachment', opts);
    const a = this.attachments.get(id);
    if (!a) throw fail(404, `Attachment ${id} could not be found.`);
    return this.#viewAttachment(a);
  }

  async listAttachments(
    filters: { volume_id?: string; status?: string } = {},
    opts?: CallOptions,
  ): Promise<Attachment[]> {
    this.#call('listAttachments', opts);
    return [...this.attachments.values()]
      .filter(
        (a) =>
          (!filters.volume_id || a.volume_id === filters.volume_id) &&
          (!filters.status || a.status === filters.status),
      )
      .map((a) => this.#viewAttachment(a));
  }

  async updateAttachment(id: string): Promise<Attachment> {
    return this.getAttachment(id);
  }

  /** os-complete: what the node does in NodeStageVolume. */
  async completeAttachment(id: string, opts?: CallOptions): Promise<void> {
    this.#call('completeAttachment', opts);
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
    this.#call('deleteAttachment', opts);
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

  // ------------------------------------------------------------ types, limits, zones, messages

  async listVolumeTypes(): Promise<VolumeType[]> {
    return structuredClone(this.types);
  }
  async getVolumeType(idOrName: string, opts?: CallOptions): Promise<VolumeType> {
    this.#call('getVolumeType', opts);
    const t = this.types.find((x) => x.name === idOrName || x.id === idOrName);
    if (!t) throw fail(404, `Volume type ${idOrName} could not be found.`);
    return structuredClone(t);
  }
  async getDefaultVolumeType(): Promise<VolumeType> {
    return structuredClone(this.types[0] as VolumeType);
  }
  async getAbsoluteLimits(): Promise<AbsoluteLimits> {
    return {
      maxTotalVolumeGigabytes: this.gigabytesQuota,
      totalGigabytesUsed: this.usedGiB(),
      maxTotalVolumes: -1,
      totalVolumesUsed: this.volumes.size,
      maxTotalSnapshots: -1,
      totalSnapshotsUsed: this.snapshots.size,
    };
  }
  async getQuotaUsage(opts?: CallOptions): Promise<QuotaUsage> {
    this.#call('getQuotaUsage', opts);
    const perType = (name: string) =>
      [...this.volumes.values()].filter((v) => v.volume_type === name).reduce((n, v) => n + v.size, 0);
    return {
      gigabytes: { limit: this.gigabytesQuota, in_use: this.usedGiB(), reserved: 0 },
      gigabytes_fake: { limit: 10, in_use: perType('fake'), reserved: 0 },
      gigabytes_fast: { limit: -1, in_use: perType('fast'), reserved: 0 },
      per_volume_gigabytes: { limit: this.perVolumeGigabytes, in_use: 0 },
    };
  }
  async listAvailabilityZones(): Promise<AvailabilityZone[]> {
    return [{ zoneName: 'nova', zoneState: { available: true } }];
  }
  async listMessages(filters: { resource_uuid?: string } = {}, opts?: CallOptions): Promise<UserMessage[]> {
    this.#call('listMessages', opts);
    return this.messages.filter((m) => !filters.resource_uuid || m.resource_uuid === filters.resource_uuid);
  }

  // ------------------------------------------------------------ backups

  async createBackup(req: CreateBackupRequest, opts?: CallOptions): Promise<Backup> {
    this.#call('createBackup', opts);
    if (req.metadata) this.#require('3.43', 'backup metadata');
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
      created_at: this.#now(),
    };
    this.backups.set(b.id, b);
    this.#backedUpMetadata.set(b.id, { ...v.metadata });
    // Like the lab (no cinder-backup service): the request is accepted, the backup then fails.
    this.#later(() => {
      b.status = this.backupService ? 'available' : 'error';
      if (!this.backupService) b.fail_reason = 'Service not found for creating backup.';
      if (snap) snap.status = 'available';
    }, this.delayMs * 3);
    // Like Cinder: POST /backups answers with the id and name only.
    return { id: b.id, name: b.name } as Backup;
  }
  async getBackup(id: string, opts?: CallOptions): Promise<Backup> {
    this.#call('getBackup', opts);
    const b = this.backups.get(id);
    if (!b) throw fail(404, `Backup ${id} could not be found.`);
    return structuredClone(b);
  }
  async *listBackups(
    filters: { name?: string; volume_id?: string } = {},
    opts?: CallOptions,
  ): AsyncIterable<Backup> {
    this.#call('listBackups', opts);
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
    this.#call('deleteBackup', opts);
    const b = this.backups.get(id);
    if (!b) throw fail(404, `Backup ${id} could not be found.`);
    b.status = 'deleting';
    this.#later(() => this.backups.delete(id));
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
