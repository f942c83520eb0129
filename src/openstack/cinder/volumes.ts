/** Cinder volumes: `/volumes` (CRUD, metadata, actions, waiting for a status). */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { CreateVolumeRequest, Volume, VolumeListFilters } from '../cinder-types.ts';
import type { CinderFeature } from '../microversion.ts';
import { waitForObject } from '../waiter.ts';
import { idPath, metadataKeySegment, SHAPES } from './checks.ts';
import { type CinderCore, dropUndefined, type Page, type Query } from './core.ts';
import { latestMessage } from './misc.ts';

export async function createVolume(
  c: CinderCore,
  req: CreateVolumeRequest,
  opts: CallOptions = {},
): Promise<Volume> {
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
  return c.one<Volume>('POST', '/volumes', 'volume.create', 'volume', SHAPES.volume, {
    signal: opts.signal,
    body,
    feature,
  });
}

export async function getVolume(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Volume> {
  return c.one<Volume>('GET', idPath('volumes', id), 'volume.get', 'volume', SHAPES.volume, opts);
}

export async function listVolumesPage(
  c: CinderCore,
  filters: VolumeListFilters,
  opts: CallOptions = {},
): Promise<Page<Volume>> {
  return c.page<Volume>(
    '/volumes/detail',
    'volumes',
    SHAPES.volume,
    'volume.list',
    volumeQuery(filters),
    opts,
  );
}

export function listVolumes(
  c: CinderCore,
  filters: VolumeListFilters = {},
  opts: CallOptions = {},
): AsyncIterable<Volume> {
  return c.iterate((marker) => listVolumesPage(c, { ...filters, marker }, opts), filters.marker);
}

export async function updateVolume(
  c: CinderCore,
  id: string,
  patch: { name?: string; description?: string },
  opts: CallOptions = {},
): Promise<Volume> {
  return c.one<Volume>('PUT', idPath('volumes', id, '', 'PUT'), 'volume.update', 'volume', SHAPES.volume, {
    signal: opts.signal,
    body: { volume: dropUndefined(patch) },
  });
}

export async function deleteVolume(
  c: CinderCore,
  id: string,
  opts: CallOptions & { cascade?: boolean; force?: boolean } = {},
): Promise<void> {
  await c.call('DELETE', idPath('volumes', id, '', 'DELETE'), 'volume.delete', {
    signal: opts.signal,
    query: { cascade: opts.cascade ? true : undefined, force: opts.force ? true : undefined },
    feature: opts.force ? 'forceDeleteVolume' : undefined,
  });
}

/** Merges `metadata` into the volume's metadata (POST; other keys stay). */
export async function setVolumeMetadata(
  c: CinderCore,
  id: string,
  metadata: Record<string, string>,
  opts: CallOptions = {},
): Promise<void> {
  await c.call('POST', idPath('volumes', id, '/metadata', 'POST'), 'volume.metadata.set', {
    signal: opts.signal,
    body: { metadata },
    idempotent: true,
  });
}

/** Replaces all of the volume's metadata (PUT). */
export async function replaceVolumeMetadata(
  c: CinderCore,
  id: string,
  metadata: Record<string, string>,
  opts: CallOptions = {},
): Promise<void> {
  await c.call('PUT', idPath('volumes', id, '/metadata', 'PUT'), 'volume.metadata.replace', {
    signal: opts.signal,
    body: { metadata },
  });
}

export async function deleteVolumeMetadataKey(
  c: CinderCore,
  id: string,
  key: string,
  opts: CallOptions = {},
): Promise<void> {
  const path = idPath('volumes', id, '/metadata/', 'DELETE') + metadataKeySegment('volumes', id, key);
  await c.call('DELETE', path, 'volume.metadata.delete', opts);
}

/** `os-extend`. Pass `online: true` for an in-use volume: needs 3.42, checked locally. */
export async function extendVolume(
  c: CinderCore,
  id: string,
  newSizeGiB: number,
  opts: CallOptions & { online?: boolean } = {},
): Promise<void> {
  await c.action(
    'volumes',
    id,
    'volume.extend',
    { 'os-extend': { new_size: newSizeGiB } },
    { signal: opts.signal, feature: opts.online ? 'onlineExtend' : undefined },
  );
}

export async function retypeVolume(
  c: CinderCore,
  id: string,
  newType: string,
  migrationPolicy: 'never' | 'on-demand',
  opts: CallOptions = {},
): Promise<void> {
  await c.action(
    'volumes',
    id,
    'volume.retype',
    { 'os-retype': { new_type: newType, migration_policy: migrationPolicy } },
    opts,
  );
}

export async function revertVolumeToSnapshot(
  c: CinderCore,
  id: string,
  snapshotId: string,
  opts: CallOptions = {},
): Promise<void> {
  await c.action(
    'volumes',
    id,
    'volume.revert',
    { revert: { snapshot_id: snapshotId } },
    { signal: opts.signal, feature: 'revertToSnapshot' },
  );
}

export async function setVolumeReadonly(
  c: CinderCore,
  id: string,
  readonly: boolean,
  opts: CallOptions = {},
): Promise<void> {
  await c.action(
    'volumes',
    id,
    'volume.readonly',
    { 'os-update_readonly_flag': { readonly } },
    { signal: opts.signal, idempotent: true },
  );
}

/** Admin: `os-force_detach` of one attachment (rolls back a failed detach). */
export async function forceDetachVolume(
  c: CinderCore,
  id: string,
  attachmentId: string,
  opts: CallOptions & { connector?: Record<string, unknown> } = {},
): Promise<void> {
  await c.action(
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
 * `beforeGet` runs before each GET; what it throws ends the wait (volume-poller.ts).
 */
export function waitForVolume(
  c: CinderCore,
  id: string,
  wait: WaitOptions,
  beforeGet?: () => void,
): Promise<Volume | undefined> {
  const get = (signal: AbortSignal | undefined) => {
    beforeGet?.();
    return getVolume(c, id, { signal });
  };
  return waitForObject('volume', id, get, wait, {
    explain: (_v, signal) => volumeFailureReason(c, id, signal),
  });
}

/** Why the volume went to a failure status: Cinder's latest user message for it, if any. */
export async function volumeFailureReason(
  c: CinderCore,
  id: string,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  return (await latestMessage(c, id, { signal }))?.user_message;
}

/**
 * One page of the volumes Cinder updated at or after `since` (naive UTC `YYYY-MM-DDTHH:MM:SS`):
 * `GET /volumes/detail?updated_at=gte:<since>` (3.60+, checked locally). The shared poll of
 * volume-create waits (volume-poller.ts).
 */
export async function listVolumesChangedSince(
  c: CinderCore,
  since: string,
  page: { limit: number; marker: string | undefined },
  opts: CallOptions = {},
): Promise<Page<Volume>> {
  return c.page<Volume>(
    '/volumes/detail',
    'volumes',
    SHAPES.volume,
    'volume.list_changed',
    { updated_at: `gte:${since}`, limit: page.limit, marker: page.marker },
    { signal: opts.signal, feature: 'timeFilters' },
  );
}

function volumeQuery(f: VolumeListFilters): Query {
  return {
    name: f.name,
    status: f.status,
    availability_zone: f.availability_zone,
    snapshot_id: f.snapshot_id,
    // Cinder evaluates the metadata filter as a Python dict literal; JSON of string pairs is one.
    metadata: f.metadata && Object.keys(f.metadata).length > 0 ? JSON.stringify(f.metadata) : undefined,
    all_tenants: f.all_tenants ? 1 : undefined,
    sort: f.sort,
    limit: f.limit,
    marker: f.marker,
  };
}
