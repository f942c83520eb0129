/**
 * The in-memory Cinder double's volumes, types, limits, quotas, zones and user messages (see
 * fake-cinder.ts for what the double models).
 */
import { randomUUID } from 'node:crypto';
import type { CallOptions, WaitOptions } from '../../../src/openstack/cinder-api.ts';
import type {
  AbsoluteLimits,
  AvailabilityZone,
  CreateVolumeRequest,
  QuotaUsage,
  SchedulerPool,
  UserMessage,
  Volume,
  VolumeListFilters,
  VolumeType,
} from '../../../src/openstack/cinder-types.ts';
import { waitForObject } from '../../../src/openstack/waiter.ts';
import { FAST, FakeCinderBase, fail } from './fake-cinder-base.ts';

export class FakeCinderVolumes extends FakeCinderBase {
  // ------------------------------------------------------------ volumes

  usedGiB(): number {
    let n = 0;
    for (const v of this.volumes.values()) n += v.size;
    return n;
  }

  async createVolume(req: CreateVolumeRequest, opts?: CallOptions): Promise<Volume> {
    this.record('createVolume', opts);
    if (req.backup_id) this.requireVersion('3.47', 'volume from backup');
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
      created_at: this.now(),
      updated_at: null,
    };
    this.volumes.set(id, v);
    if (req.backup_id) this.restoring.set(id, req.backup_id);
    if (!this.holdCreating) this.later(() => this.finishCreating(id));
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
        created_at: this.now(),
      });
    } else {
      const backupId = this.restoring.get(id);
      this.restoring.delete(id);
      if (backupId) {
        // Like Cinder's restore: the backed-up volume's metadata replaces the target's, plus src_backup_id.
        v.metadata = { ...(this.backedUpMetadata.get(backupId) ?? {}), src_backup_id: backupId };
      }
      v.status = 'available';
    }
  }

  protected readonly restoring = new Map<string, string>();
  protected readonly backedUpMetadata = new Map<string, Record<string, string>>();

  async listSchedulerPools(opts?: CallOptions): Promise<SchedulerPool[]> {
    this.record('listSchedulerPools', opts);
    if (!this.pools) throw fail(403, 'Policy does not allow scheduler_extension:scheduler_stats:get_pools.');
    return structuredClone(this.pools);
  }

  async getVolume(id: string, opts?: CallOptions): Promise<Volume> {
    this.record('getVolume', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    return structuredClone(v);
  }

  protected filterVolumes(f: VolumeListFilters): Volume[] {
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

  protected page<T extends { id: string }>(
    items: T[],
    limit: number | undefined,
    marker: string | undefined,
  ) {
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
    this.record('listVolumes', opts);
    return this.page(this.filterVolumes(filters), filters.limit, filters.marker);
  }

  async updateVolume(id: string, patch: { name?: string; description?: string }): Promise<Volume> {
    const v = await this.getVolume(id);
    Object.assign(this.volumes.get(id) ?? {}, patch);
    return v;
  }

  async deleteVolume(id: string, opts?: CallOptions): Promise<void> {
    this.record('deleteVolume', opts);
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
    this.later(() => this.volumes.delete(id));
  }

  async setVolumeMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void> {
    this.record('setVolumeMetadata', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    Object.assign(v.metadata, metadata);
  }

  async replaceVolumeMetadata(
    id: string,
    metadata: Record<string, string>,
    opts?: CallOptions,
  ): Promise<void> {
    this.record('replaceVolumeMetadata', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    v.metadata = { ...metadata };
  }

  async deleteVolumeMetadataKey(id: string, key: string, opts?: CallOptions): Promise<void> {
    this.record('deleteVolumeMetadataKey', opts);
    const v = this.volumes.get(id);
    if (!v || !(key in v.metadata)) throw fail(404, `Volume metadata ${key} could not be found.`);
    delete v.metadata[key];
  }

  async extendVolume(
    id: string,
    newSizeGiB: number,
    opts?: CallOptions & { online?: boolean },
  ): Promise<void> {
    this.record('extendVolume', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    if (v.status === 'in-use') this.requireVersion('3.42', 'online extend');
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
    this.later(() => {
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
    this.record('retypeVolume', opts);
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    const t = this.types.find((x) => x.name === newType || x.id === newType);
    if (!t) throw fail(404, `Volume type ${newType} could not be found.`);
    const back = v.status;
    v.status = 'retyping';
    this.later(() => {
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
          created_at: this.now(),
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

  // ------------------------------------------------------------ types, limits, zones, messages

  async listVolumeTypes(): Promise<VolumeType[]> {
    return structuredClone(this.types);
  }
  async getVolumeType(idOrName: string, opts?: CallOptions): Promise<VolumeType> {
    this.record('getVolumeType', opts);
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
    this.record('getQuotaUsage', opts);
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
    this.record('listMessages', opts);
    return this.messages.filter((m) => !filters.resource_uuid || m.resource_uuid === filters.resource_uuid);
  }
}
