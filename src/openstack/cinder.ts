/**
 * Cinder v3 client over a Keystone (or noauth) `ServiceSession`.
 *
 * - Microversions: the first call discovers the server's range (`GET /`, fallback `GET /v3/`) and
 *   negotiates the highest version both sides support (client max 3.70, or `maxMicroversion`);
 *   `ignoreMicroversion` pins 3.0 without discovery (cloud.conf `ignore-volume-microversion`).
 *   Every request then carries `OpenStack-API-Version: volume X.Y`; a call that needs a higher
 *   version is refused locally with MicroversionError before anything is sent.
 * - Errors: HTTP failures surface as the session's OpenStackError (use `.notFound`, `.overQuota`...);
 *   deletes of missing objects are NOT swallowed here (callers decide; see `ignoreNotFound`).
 * - Lists: `listX()` async-iterates every page following Cinder's `*_links` "next" marker;
 *   `listXPage()` returns one page and the marker of the next.
 */
import { AbortedError, throwIfAborted } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import type { CallOptions, CinderApi, Microversion, WaitOptions } from './cinder-api.ts';
import { discoverVolumeApi } from './cinder-discovery.ts';
import type {
  AbsoluteLimits,
  AttachMode,
  Attachment,
  AvailabilityZone,
  Backup,
  CreateAttachmentRequest,
  CreateBackupRequest,
  CreateSnapshotRequest,
  CreateVolumeRequest,
  Group,
  GroupSnapshot,
  GroupType,
  QuotaUsage,
  Snapshot,
  UserMessage,
  Volume,
  VolumeListFilters,
  VolumeType,
} from './cinder-types.ts';
import { MicroversionError, OpenStackError } from './errors.ts';
import {
  BASE_MICROVERSION,
  type CinderFeature,
  CLIENT_MAX_MICROVERSION,
  compareMicroversions,
  formatMicroversion,
  negotiateMicroversion,
  parseMicroversion,
  requireFeature,
} from './microversion.ts';
import type { ServiceSession } from './session.ts';
import { waitForStatus } from './waiter.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Query = Record<string, string | number | boolean | undefined>;

export interface CinderClientOptions {
  session: ServiceSession;
  logger: Logger;
  /** Cap below the client's own maximum (3.70), e.g. "3.50" to work around a server bug. */
  maxMicroversion?: string;
  /** Do not negotiate: use 3.0 (cloud.conf `ignore-volume-microversion`). */
  ignoreMicroversion?: boolean;
}

/** A page of a Cinder collection. */
export interface Page<T> {
  items: T[];
  next: string | undefined;
}

export type { GroupType } from './cinder-types.ts';

/** A scheduler pool (`GET /scheduler-stats/get_pools?detail=true`, admin only). */
export interface SchedulerPool {
  name: string;
  capabilities?: Record<string, unknown>;
}

export interface CinderService {
  binary: string;
  host: string;
  zone?: string;
  status: 'enabled' | 'disabled' | string;
  state: 'up' | 'down' | string;
  updated_at?: string | null;
}

export interface SnapshotListFilters {
  name?: string;
  volume_id?: string;
  /** Member snapshots of one group snapshot. */
  group_snapshot_id?: string;
  status?: string;
  limit?: number;
  marker?: string;
}

/** Resolves to undefined when `promise` rejects with a 404 (OpenStackError.notFound). */
export async function ignoreNotFound<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (typeof err === 'object' && err !== null && (err as { notFound?: unknown }).notFound === true) {
      return undefined;
    }
    throw err;
  }
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** The `marker` of the "next" link of a Cinder list response, if any. */
export function nextMarker(links: unknown): string | undefined {
  if (!Array.isArray(links)) return undefined;
  const next = links.find((l) => l && typeof l === 'object' && (l as { rel?: unknown }).rel === 'next') as
    | { href?: unknown }
    | undefined;
  if (!next || typeof next.href !== 'string') return undefined;
  try {
    return new URL(next.href, 'http://placeholder/').searchParams.get('marker') ?? undefined;
  } catch {
    return undefined;
  }
}

export class CinderClient implements CinderApi {
  readonly #session: ServiceSession;
  readonly #logger: Logger;
  readonly #clientMax: Microversion;
  readonly #ignoreMicroversion: boolean;
  #negotiated: Microversion | undefined;
  #negotiating: Promise<Microversion> | undefined;

  constructor(opts: CinderClientOptions) {
    this.#session = opts.session;
    this.#logger = opts.logger;
    this.#ignoreMicroversion = opts.ignoreMicroversion ?? false;
    const builtIn = parseMicroversion(CLIENT_MAX_MICROVERSION);
    const requested = opts.maxMicroversion ? parseMicroversion(opts.maxMicroversion) : builtIn;
    this.#clientMax = compareMicroversions(requested, builtIn) < 0 ? requested : builtIn;
  }

  // ---------------------------------------------------------------- microversions

  get microversion(): Microversion {
    if (!this.#negotiated) {
      throw new MicroversionError('Cinder microversion not negotiated yet: call negotiate() first');
    }
    return this.#negotiated;
  }

  /**
   * Version discovery + negotiation; single-flight, cached on success, retried after a failure.
   * The shared discovery runs under its own timeout, not a caller's signal, so one caller giving
   * up does not fail the others; each caller stops waiting when its own signal fires.
   */
  negotiate(opts: CallOptions = {}): Promise<Microversion> {
    if (this.#negotiated) return Promise.resolve(this.#negotiated);
    if (this.#ignoreMicroversion) {
      this.#negotiated = parseMicroversion(BASE_MICROVERSION);
      return Promise.resolve(this.#negotiated);
    }
    if (!this.#negotiating) {
      this.#negotiating = (async () => {
        try {
          const range = await discoverVolumeApi(this.#session, AbortSignal.timeout(DISCOVERY_TIMEOUT_MS));
          const mv = negotiateMicroversion(this.#clientMax, range);
          this.#negotiated = mv;
          this.#logger.info(
            {
              microversion: formatMicroversion(mv),
              serverMin: range ? formatMicroversion(range.min) : undefined,
              serverMax: range ? formatMicroversion(range.max) : undefined,
            },
            'negotiated Cinder API microversion',
          );
          return mv;
        } finally {
          this.#negotiating = undefined;
        }
      })();
      this.#negotiating.catch(() => {});
    }
    return waitWithSignal(this.#negotiating, opts.signal);
  }

  supports(version: string): boolean {
    return compareMicroversions(this.microversion, parseMicroversion(version)) >= 0;
  }

  projectId(): Promise<string> {
    return this.#session.projectId();
  }

  // ---------------------------------------------------------------- plumbing

  async #call<T>(
    method: Method,
    path: string,
    operation: string,
    opts: {
      signal?: AbortSignal | undefined;
      query?: Query;
      body?: unknown;
      idempotent?: boolean;
      feature?: CinderFeature;
    } = {},
  ): Promise<T> {
    const mv = await this.negotiate({ signal: opts.signal });
    if (opts.feature) requireFeature(mv, opts.feature, operation);
    const res = await this.#session.request<T>({
      method,
      path,
      headers: { 'OpenStack-API-Version': `volume ${formatMicroversion(mv)}`, Accept: 'application/json' },
      query: opts.query,
      body: opts.body,
      idempotent: opts.idempotent ?? method !== 'POST',
      signal: opts.signal,
      operation: `cinder.${operation}`,
    });
    return res.body;
  }

  async #page<T>(
    path: string,
    key: string,
    operation: string,
    query: Query,
    opts: CallOptions & { feature?: CinderFeature },
  ): Promise<Page<T>> {
    const body = await this.#call<Record<string, unknown>>('GET', path, operation, {
      signal: opts.signal,
      query,
      feature: opts.feature,
    });
    const items = (body[key] ?? []) as T[];
    return { items, next: items.length > 0 ? nextMarker(body[`${key}_links`]) : undefined };
  }

  async *#iterate<T>(
    fetchPage: (marker: string | undefined) => Promise<Page<T>>,
    marker?: string,
  ): AsyncGenerator<T> {
    let next = marker;
    const seen = new Set<string>();
    do {
      const page = await fetchPage(next);
      yield* page.items;
      next = page.next;
      // A server that keeps answering the same marker would loop forever; stop instead.
      if (next !== undefined) {
        if (seen.has(next)) throw new Error(`Cinder pagination loop: marker ${next} returned twice`);
        seen.add(next);
      }
    } while (next !== undefined);
  }

  #action(
    kind: 'volumes' | 'attachments' | 'groups',
    id: string,
    operation: string,
    body: unknown,
    opts: {
      signal?: AbortSignal | undefined;
      feature?: CinderFeature;
      idempotent?: boolean;
    },
  ): Promise<unknown> {
    return this.#call('POST', `/${kind}/${encodeURIComponent(id)}/action`, operation, { ...opts, body });
  }

  // ---------------------------------------------------------------- volumes

  async createVolume(req: CreateVolumeRequest, opts: CallOptions = {}): Promise<Volume> {
    const { scheduler_hints, ...volume } = req;
    const body: Record<string, unknown> = { volume: dropUndefined(volume) };
    if (scheduler_hints && Object.keys(scheduler_hints).length > 0) {
      body['OS-SCH-HNT:scheduler_hints'] = scheduler_hints;
    }
    const feature: CinderFeature | undefined = req.backup_id
      ? 'volumeFromBackup'
      : req.group_id
        ? 'groups'
        : undefined;
    const res = await this.#call<{ volume: Volume }>('POST', '/volumes', 'volume.create', {
      signal: opts.signal,
      body,
      feature,
    });
    return res.volume;
  }

  async getVolume(id: string, opts: CallOptions = {}): Promise<Volume> {
    const res = await this.#call<{ volume: Volume }>(
      'GET',
      `/volumes/${encodeURIComponent(id)}`,
      'volume.get',
      opts,
    );
    return res.volume;
  }

  listVolumesPage(filters: VolumeListFilters, opts: CallOptions = {}): Promise<Page<Volume>> {
    return this.#page<Volume>('/volumes/detail', 'volumes', 'volume.list', volumeQuery(filters), opts);
  }

  listVolumes(filters: VolumeListFilters = {}, opts: CallOptions = {}): AsyncIterable<Volume> {
    return this.#iterate((marker) => this.listVolumesPage({ ...filters, marker }, opts), filters.marker);
  }

  async updateVolume(
    id: string,
    patch: { name?: string; description?: string },
    opts: CallOptions = {},
  ): Promise<Volume> {
    const res = await this.#call<{ volume: Volume }>(
      'PUT',
      `/volumes/${encodeURIComponent(id)}`,
      'volume.update',
      {
        signal: opts.signal,
        body: { volume: dropUndefined(patch) },
      },
    );
    return res.volume;
  }

  async deleteVolume(
    id: string,
    opts: CallOptions & { cascade?: boolean; force?: boolean } = {},
  ): Promise<void> {
    await this.#call('DELETE', `/volumes/${encodeURIComponent(id)}`, 'volume.delete', {
      signal: opts.signal,
      query: { cascade: opts.cascade ? true : undefined, force: opts.force ? true : undefined },
      feature: opts.force ? 'forceDeleteVolume' : undefined,
    });
  }

  /** Merges `metadata` into the volume's metadata (POST; other keys stay). */
  async setVolumeMetadata(
    id: string,
    metadata: Record<string, string>,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.#call('POST', `/volumes/${encodeURIComponent(id)}/metadata`, 'volume.metadata.set', {
      signal: opts.signal,
      body: { metadata },
      idempotent: true,
    });
  }

  /** Replaces all of the volume's metadata (PUT). */
  async replaceVolumeMetadata(
    id: string,
    metadata: Record<string, string>,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.#call('PUT', `/volumes/${encodeURIComponent(id)}/metadata`, 'volume.metadata.replace', {
      signal: opts.signal,
      body: { metadata },
    });
  }

  async deleteVolumeMetadataKey(id: string, key: string, opts: CallOptions = {}): Promise<void> {
    await this.#call(
      'DELETE',
      `/volumes/${encodeURIComponent(id)}/metadata/${encodeURIComponent(key)}`,
      'volume.metadata.delete',
      opts,
    );
  }

  /** `os-extend`. Pass `online: true` for an in-use volume: needs 3.42, checked locally. */
  async extendVolume(
    id: string,
    newSizeGiB: number,
    opts: CallOptions & { online?: boolean } = {},
  ): Promise<void> {
    await this.#action(
      'volumes',
      id,
      'volume.extend',
      { 'os-extend': { new_size: newSizeGiB } },
      {
        signal: opts.signal,
        feature: opts.online ? 'onlineExtend' : undefined,
      },
    );
  }

  async retypeVolume(
    id: string,
    newType: string,
    migrationPolicy: 'never' | 'on-demand',
    opts: CallOptions = {},
  ): Promise<void> {
    await this.#action(
      'volumes',
      id,
      'volume.retype',
      { 'os-retype': { new_type: newType, migration_policy: migrationPolicy } },
      opts,
    );
  }

  async revertVolumeToSnapshot(id: string, snapshotId: string, opts: CallOptions = {}): Promise<void> {
    await this.#action(
      'volumes',
      id,
      'volume.revert',
      { revert: { snapshot_id: snapshotId } },
      {
        signal: opts.signal,
        feature: 'revertToSnapshot',
      },
    );
  }

  async setVolumeReadonly(id: string, readonly: boolean, opts: CallOptions = {}): Promise<void> {
    await this.#action(
      'volumes',
      id,
      'volume.readonly',
      { 'os-update_readonly_flag': { readonly } },
      {
        signal: opts.signal,
        idempotent: true,
      },
    );
  }

  /** Admin: `os-force_detach` of one attachment (rolls back a failed detach). */
  async forceDetachVolume(
    id: string,
    attachmentId: string,
    opts: CallOptions & { connector?: Record<string, unknown> } = {},
  ): Promise<void> {
    await this.#action(
      'volumes',
      id,
      'volume.force_detach',
      { 'os-force_detach': dropUndefined({ attachment_id: attachmentId, connector: opts.connector }) },
      opts,
    );
  }

  /**
   * Waits for the volume to reach `wait.target`; on a failure status the error carries the latest
   * Cinder user message for the volume (the reason it went to `error`), when the server has them.
   */
  waitForVolume(id: string, wait: WaitOptions): Promise<Volume | undefined> {
    return waitForStatus<Volume>({
      resource: 'volume',
      id,
      fetch: (signal) => this.getVolume(id, { signal }),
      status: (v) => v.status,
      target: wait.target,
      failOn: wait.failOn,
      gone: wait.gone,
      signal: wait.signal,
      explain: async (_v, signal) => (await this.latestMessage(id, { signal }))?.user_message,
    });
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * `POST /snapshots`. From 3.66 on, snapshots of in-use volumes need no `force` and Cinder rejects
   * `force: false`, so the flag is only sent below 3.66.
   */
  async createSnapshot(req: CreateSnapshotRequest, opts: CallOptions = {}): Promise<Snapshot> {
    const mv = await this.negotiate(opts);
    const { force, ...rest } = req;
    const snapshot = compareMicroversions(mv, parseMicroversion('3.66')) >= 0 ? rest : { ...rest, force };
    const res = await this.#call<{ snapshot: Snapshot }>('POST', '/snapshots', 'snapshot.create', {
      signal: opts.signal,
      body: { snapshot: dropUndefined(snapshot) },
    });
    return res.snapshot;
  }

  async getSnapshot(id: string, opts: CallOptions = {}): Promise<Snapshot> {
    const res = await this.#call<{ snapshot: Snapshot }>(
      'GET',
      `/snapshots/${encodeURIComponent(id)}`,
      'snapshot.get',
      opts,
    );
    return res.snapshot;
  }

  listSnapshotsPage(filters: SnapshotListFilters, opts: CallOptions = {}): Promise<Page<Snapshot>> {
    return this.#page<Snapshot>('/snapshots/detail', 'snapshots', 'snapshot.list', { ...filters }, opts);
  }

  listSnapshots(filters: SnapshotListFilters = {}, opts: CallOptions = {}): AsyncIterable<Snapshot> {
    return this.#iterate((marker) => this.listSnapshotsPage({ ...filters, marker }, opts), filters.marker);
  }

  async deleteSnapshot(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#call('DELETE', `/snapshots/${encodeURIComponent(id)}`, 'snapshot.delete', opts);
  }

  async setSnapshotMetadata(
    id: string,
    metadata: Record<string, string>,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.#call('POST', `/snapshots/${encodeURIComponent(id)}/metadata`, 'snapshot.metadata.set', {
      signal: opts.signal,
      body: { metadata },
      idempotent: true,
    });
  }

  waitForSnapshot(id: string, wait: WaitOptions): Promise<Snapshot | undefined> {
    return waitForStatus<Snapshot>({
      resource: 'snapshot',
      id,
      fetch: (signal) => this.getSnapshot(id, { signal }),
      status: (s) => s.status,
      target: wait.target,
      failOn: wait.failOn,
      gone: wait.gone,
      signal: wait.signal,
      explain: async (_s, signal) => (await this.latestMessage(id, { signal }))?.user_message,
    });
  }

  // ---------------------------------------------------------------- attachments (3.27+)

  /** `POST /attachments`; `mode` needs 3.54 (checked locally). The response holds connection_info (secrets). */
  async createAttachment(req: CreateAttachmentRequest, opts: CallOptions = {}): Promise<Attachment> {
    const res = await this.#call<{ attachment: Attachment }>('POST', '/attachments', 'attachment.create', {
      signal: opts.signal,
      body: { attachment: dropUndefined({ ...req }) },
      feature: req.mode ? 'attachMode' : 'attachments',
    });
    return res.attachment;
  }

  async getAttachment(id: string, opts: CallOptions = {}): Promise<Attachment> {
    const res = await this.#call<{ attachment: Attachment }>(
      'GET',
      `/attachments/${encodeURIComponent(id)}`,
      'attachment.get',
      { signal: opts.signal, feature: 'attachments' },
    );
    return res.attachment;
  }

  /**
   * Every attachment (all pages of `/attachments/detail`) matching the filters. Server-side filters
   * need 3.31; below that the list is filtered here.
   */
  async listAttachments(
    filters: { volume_id?: string; status?: string } = {},
    opts: CallOptions = {},
  ): Promise<Attachment[]> {
    const mv = await this.negotiate(opts);
    requireFeature(mv, 'attachments', 'attachment.list');
    const serverSide = compareMicroversions(mv, parseMicroversion('3.31')) >= 0;
    const query: Query = serverSide ? { ...filters } : {};
    const out: Attachment[] = [];
    const pages = this.#iterate<Attachment>((marker) =>
      this.#page<Attachment>(
        '/attachments/detail',
        'attachments',
        'attachment.list',
        { ...query, marker },
        opts,
      ),
    );
    for await (const a of pages) {
      if (filters.volume_id && a.volume_id !== filters.volume_id) continue;
      if (filters.status && a.status !== filters.status) continue;
      out.push(a);
    }
    return out;
  }

  /** `PUT /attachments/{id}` with the connector (mode travels inside the connector). */
  async updateAttachment(
    id: string,
    connector: Record<string, unknown>,
    opts: CallOptions & { mode?: AttachMode } = {},
  ): Promise<Attachment> {
    const res = await this.#call<{ attachment: Attachment }>(
      'PUT',
      `/attachments/${encodeURIComponent(id)}`,
      'attachment.update',
      {
        signal: opts.signal,
        body: { attachment: { connector: opts.mode ? { ...connector, mode: opts.mode } : connector } },
        feature: opts.mode ? 'attachMode' : 'attachments',
        idempotent: false,
      },
    );
    return res.attachment;
  }

  /** `os-complete` (3.44+): marks the attachment attached and the volume in-use. */
  async completeAttachment(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#action(
      'attachments',
      id,
      'attachment.complete',
      { 'os-complete': {} },
      {
        signal: opts.signal,
        feature: 'attachmentComplete',
        idempotent: true,
      },
    );
  }

  async deleteAttachment(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#call('DELETE', `/attachments/${encodeURIComponent(id)}`, 'attachment.delete', {
      signal: opts.signal,
      feature: 'attachments',
    });
  }

  // ---------------------------------------------------------------- volume types

  async listVolumeTypes(opts: CallOptions = {}): Promise<VolumeType[]> {
    const res = await this.#call<{ volume_types: VolumeType[] }>('GET', '/types', 'type.list', opts);
    return res.volume_types;
  }

  /**
   * By id (`GET /types/{id}`), or by name: Cinder's show only takes ids, so a name is looked up in
   * the type list (names are unique). An unknown name gives an OpenStackError with status 404.
   */
  async getVolumeType(idOrName: string, opts: CallOptions = {}): Promise<VolumeType> {
    if (UUID_RE.test(idOrName)) {
      const res = await this.#call<{ volume_type: VolumeType }>(
        'GET',
        `/types/${encodeURIComponent(idOrName)}`,
        'type.get',
        opts,
      );
      return res.volume_type;
    }
    const found = (await this.listVolumeTypes(opts)).find((t) => t.name === idOrName);
    if (found) return found;
    throw new OpenStackError({
      status: 404,
      faultMessage: `Volume type ${idOrName} could not be found.`,
      method: 'GET',
      url: `${await this.#session.endpoint(opts.signal)}/types`,
    });
  }

  /** The project's default type (3.62+). */
  async getDefaultVolumeType(opts: CallOptions = {}): Promise<VolumeType> {
    const res = await this.#call<{ volume_type: VolumeType }>('GET', '/types/default', 'type.default', {
      signal: opts.signal,
      feature: 'defaultVolumeType',
    });
    return res.volume_type;
  }

  async getVolumeTypeExtraSpecs(idOrName: string, opts: CallOptions = {}): Promise<Record<string, string>> {
    const id = UUID_RE.test(idOrName) ? idOrName : (await this.getVolumeType(idOrName, opts)).id;
    const res = await this.#call<{ extra_specs: Record<string, string> }>(
      'GET',
      `/types/${encodeURIComponent(id)}/extra_specs`,
      'type.extra_specs',
      opts,
    );
    return res.extra_specs;
  }

  // ---------------------------------------------------------------- limits, quotas, zones, messages, pools

  async getAbsoluteLimits(opts: CallOptions = {}): Promise<AbsoluteLimits> {
    const res = await this.#call<{ limits: { absolute: AbsoluteLimits } }>('GET', '/limits', 'limits', opts);
    return res.limits.absolute;
  }

  /** Quota limits with usage of this project, incl. per-type keys (`gigabytes_<type>`). */
  async getQuotaUsage(opts: CallOptions = {}): Promise<QuotaUsage> {
    const project = await this.#session.projectId(opts.signal);
    const res = await this.#call<{ quota_set: Record<string, unknown> }>(
      'GET',
      `/os-quota-sets/${encodeURIComponent(project)}`,
      'quota.usage',
      { signal: opts.signal, query: { usage: true } },
    );
    const out: QuotaUsage = {};
    for (const [k, v] of Object.entries(res.quota_set)) {
      if (v && typeof v === 'object' && 'limit' in v) out[k] = v as QuotaUsage[string];
    }
    return out;
  }

  async listAvailabilityZones(opts: CallOptions = {}): Promise<AvailabilityZone[]> {
    const res = await this.#call<{ availabilityZoneInfo: AvailabilityZone[] }>(
      'GET',
      '/os-availability-zone',
      'availability_zone.list',
      opts,
    );
    return res.availabilityZoneInfo;
  }

  /** User messages (3.3+). Filtering by resource needs 3.5; below that it is done here. */
  async listMessages(
    filters: { resource_uuid?: string } = {},
    opts: CallOptions = {},
  ): Promise<UserMessage[]> {
    const mv = await this.negotiate(opts);
    requireFeature(mv, 'userMessages', 'message.list');
    const serverSide = compareMicroversions(mv, parseMicroversion(CINDER_FILTER_VERSION)) >= 0;
    const res = await this.#call<{ messages: UserMessage[] }>('GET', '/messages', 'message.list', {
      signal: opts.signal,
      query: serverSide ? { ...filters } : {},
    });
    return res.messages.filter((m) => !filters.resource_uuid || m.resource_uuid === filters.resource_uuid);
  }

  /** The newest user message about a resource, or undefined (also when the server lacks 3.3). */
  async latestMessage(resourceId: string, opts: CallOptions = {}): Promise<UserMessage | undefined> {
    const mv = await this.negotiate(opts);
    if (compareMicroversions(mv, parseMicroversion('3.3')) < 0) return undefined;
    const messages = await this.listMessages({ resource_uuid: resourceId }, opts);
    return messages.sort((a, b) =>
      a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0,
    )[0];
  }

  /** Admin only: Cinder's services (e.g. `binary: 'cinder-backup'` tells whether backups can work). */
  async listServices(
    filters: { binary?: string; host?: string } = {},
    opts: CallOptions = {},
  ): Promise<CinderService[]> {
    const res = await this.#call<{ services: CinderService[] }>('GET', '/os-services', 'service.list', {
      signal: opts.signal,
      query: { ...filters },
    });
    return res.services;
  }

  /** Admin only: the scheduler's pools with capabilities. */
  async listSchedulerPools(opts: CallOptions = {}): Promise<SchedulerPool[]> {
    const res = await this.#call<{ pools: SchedulerPool[] }>(
      'GET',
      '/scheduler-stats/get_pools',
      'pool.list',
      {
        signal: opts.signal,
        query: { detail: true },
      },
    );
    return res.pools;
  }

  // ---------------------------------------------------------------- backups

  async createBackup(req: CreateBackupRequest, opts: CallOptions = {}): Promise<Backup> {
    const feature: CinderFeature | undefined = req.availability_zone
      ? 'backupAvailabilityZone'
      : req.metadata
        ? 'backupMetadata'
        : undefined;
    const res = await this.#call<{ backup: Backup }>('POST', '/backups', 'backup.create', {
      signal: opts.signal,
      body: { backup: dropUndefined(req) },
      feature,
    });
    return res.backup;
  }

  async getBackup(id: string, opts: CallOptions = {}): Promise<Backup> {
    const res = await this.#call<{ backup: Backup }>(
      'GET',
      `/backups/${encodeURIComponent(id)}`,
      'backup.get',
      opts,
    );
    return res.backup;
  }

  listBackupsPage(
    filters: { name?: string; volume_id?: string; limit?: number; marker?: string },
    opts: CallOptions = {},
  ): Promise<Page<Backup>> {
    return this.#page<Backup>('/backups/detail', 'backups', 'backup.list', { ...filters }, opts);
  }

  listBackups(
    filters: { name?: string; volume_id?: string; limit?: number; marker?: string } = {},
    opts: CallOptions = {},
  ): AsyncIterable<Backup> {
    return this.#iterate((marker) => this.listBackupsPage({ ...filters, marker }, opts), filters.marker);
  }

  async deleteBackup(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#call('DELETE', `/backups/${encodeURIComponent(id)}`, 'backup.delete', opts);
  }

  async restoreBackup(
    id: string,
    target: { volume_id?: string; name?: string },
    opts: CallOptions = {},
  ): Promise<{ volume_id: string }> {
    const res = await this.#call<{ restore: { volume_id: string; backup_id: string } }>(
      'POST',
      `/backups/${encodeURIComponent(id)}/restore`,
      'backup.restore',
      { signal: opts.signal, body: { restore: dropUndefined(target) } },
    );
    return { volume_id: res.restore.volume_id };
  }

  waitForBackup(id: string, wait: WaitOptions): Promise<Backup | undefined> {
    return waitForStatus<Backup>({
      resource: 'backup',
      id,
      fetch: (signal) => this.getBackup(id, { signal }),
      status: (b) => b.status,
      target: wait.target,
      failOn: wait.failOn,
      gone: wait.gone,
      signal: wait.signal,
      explain: async (b) => b.fail_reason ?? undefined,
    });
  }

  // ---------------------------------------------------------------- groups (3.13+), group snapshots (3.14+)

  async listGroupTypes(opts: CallOptions = {}): Promise<GroupType[]> {
    const res = await this.#call<{ group_types: GroupType[] }>('GET', '/group_types', 'group_type.list', {
      signal: opts.signal,
      feature: 'groups',
    });
    return res.group_types;
  }

  async getGroupType(idOrName: string, opts: CallOptions = {}): Promise<GroupType> {
    const res = await this.#call<{ group_type: GroupType }>(
      'GET',
      `/group_types/${encodeURIComponent(idOrName)}`,
      'group_type.get',
      { signal: opts.signal, feature: 'groups' },
    );
    return res.group_type;
  }

  /** Admin: creates a group type (e.g. with `consistent_group_snapshot_enabled`). */
  async createGroupType(
    req: { name: string; description?: string; is_public?: boolean; group_specs?: Record<string, string> },
    opts: CallOptions = {},
  ): Promise<GroupType> {
    const res = await this.#call<{ group_type: GroupType }>('POST', '/group_types', 'group_type.create', {
      signal: opts.signal,
      body: { group_type: dropUndefined(req) },
      feature: 'groups',
    });
    return res.group_type;
  }

  async deleteGroupType(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#call('DELETE', `/group_types/${encodeURIComponent(id)}`, 'group_type.delete', {
      signal: opts.signal,
      feature: 'groups',
    });
  }

  async createGroup(
    req: {
      name: string;
      group_type: string;
      volume_types: string[];
      availability_zone?: string;
      description?: string;
    },
    opts: CallOptions = {},
  ): Promise<Group> {
    const res = await this.#call<{ group: Group }>('POST', '/groups', 'group.create', {
      signal: opts.signal,
      body: { group: dropUndefined(req) },
      feature: 'groups',
    });
    return res.group;
  }

  async getGroup(id: string, opts: CallOptions = {}): Promise<Group> {
    const res = await this.#call<{ group: Group }>('GET', `/groups/${encodeURIComponent(id)}`, 'group.get', {
      signal: opts.signal,
      query: { list_volume: true },
      feature: 'groups',
    });
    return res.group;
  }

  async deleteGroup(id: string, opts: CallOptions & { deleteVolumes?: boolean } = {}): Promise<void> {
    await this.#action(
      'groups',
      id,
      'group.delete',
      { delete: { 'delete-volumes': opts.deleteVolumes ?? false } },
      {
        signal: opts.signal,
        feature: 'groups',
      },
    );
  }

  /** Adds/removes volumes (Cinder takes comma-separated id lists). */
  async updateGroup(
    id: string,
    patch: { add_volumes?: string[]; remove_volumes?: string[]; name?: string; description?: string },
    opts: CallOptions = {},
  ): Promise<void> {
    const group = dropUndefined({
      name: patch.name,
      description: patch.description,
      add_volumes: patch.add_volumes?.join(','),
      remove_volumes: patch.remove_volumes?.join(','),
    });
    await this.#call('PUT', `/groups/${encodeURIComponent(id)}`, 'group.update', {
      signal: opts.signal,
      body: { group },
      feature: 'groups',
    });
  }

  /** `GET /groups/detail` (every page); `name` is also checked by callers (older servers ignore filters). */
  listGroups(filters: { name?: string; limit?: number } = {}, opts: CallOptions = {}): AsyncIterable<Group> {
    return this.#iterate(
      (marker) =>
        this.#page<Group>(
          '/groups/detail',
          'groups',
          'group.list',
          { ...filters, marker },
          {
            signal: opts.signal,
            feature: 'groups',
          },
        ),
      undefined,
    );
  }

  waitForGroup(id: string, wait: WaitOptions): Promise<Group | undefined> {
    return waitForStatus<Group>({
      resource: 'group',
      id,
      fetch: (signal) => this.getGroup(id, { signal }),
      status: (g) => g.status,
      target: wait.target,
      failOn: wait.failOn,
      gone: wait.gone,
      signal: wait.signal,
    });
  }

  async createGroupSnapshot(
    req: { group_id: string; name?: string; description?: string },
    opts: CallOptions = {},
  ): Promise<GroupSnapshot> {
    const res = await this.#call<{ group_snapshot: GroupSnapshot }>(
      'POST',
      '/group_snapshots',
      'group_snapshot.create',
      {
        signal: opts.signal,
        body: { group_snapshot: dropUndefined(req) },
        feature: 'groupSnapshots',
      },
    );
    return res.group_snapshot;
  }

  async getGroupSnapshot(id: string, opts: CallOptions = {}): Promise<GroupSnapshot> {
    const res = await this.#call<{ group_snapshot: GroupSnapshot }>(
      'GET',
      `/group_snapshots/${encodeURIComponent(id)}`,
      'group_snapshot.get',
      { signal: opts.signal, feature: 'groupSnapshots' },
    );
    return res.group_snapshot;
  }

  async deleteGroupSnapshot(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#call('DELETE', `/group_snapshots/${encodeURIComponent(id)}`, 'group_snapshot.delete', {
      signal: opts.signal,
      feature: 'groupSnapshots',
    });
  }

  /** `GET /group_snapshots/detail` (every page), optionally filtered by name or group. */
  listGroupSnapshots(
    filters: { name?: string; group_id?: string; limit?: number } = {},
    opts: CallOptions = {},
  ): AsyncIterable<GroupSnapshot> {
    return this.#iterate(
      (marker) =>
        this.#page<GroupSnapshot>(
          '/group_snapshots/detail',
          'group_snapshots',
          'group_snapshot.list',
          { ...filters, marker },
          { signal: opts.signal, feature: 'groupSnapshots' },
        ),
      undefined,
    );
  }

  waitForGroupSnapshot(id: string, wait: WaitOptions): Promise<GroupSnapshot | undefined> {
    return waitForStatus<GroupSnapshot>({
      resource: 'group snapshot',
      id,
      fetch: (signal) => this.getGroupSnapshot(id, { signal }),
      status: (g) => g.status,
      target: wait.target,
      failOn: wait.failOn,
      gone: wait.gone,
      signal: wait.signal,
    });
  }
}

/** Bound of one version discovery (shared by every caller waiting for it). */
const DISCOVERY_TIMEOUT_MS = 30_000;

/** Waits for a shared promise; rejects with AbortedError as soon as this caller's signal fires. */
function waitWithSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  throwIfAborted(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Generic resource filtering (`?resource_uuid=` on /messages) arrived with 3.5. */
const CINDER_FILTER_VERSION = '3.5';

function volumeQuery(f: VolumeListFilters): Query {
  return {
    name: f.name,
    status: f.status,
    availability_zone: f.availability_zone,
    // Cinder evaluates the metadata filter as a Python dict literal; JSON of string pairs is one.
    metadata: f.metadata && Object.keys(f.metadata).length > 0 ? JSON.stringify(f.metadata) : undefined,
    all_tenants: f.all_tenants ? 1 : undefined,
    sort: f.sort,
    limit: f.limit,
    marker: f.marker,
  };
}

function dropUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
