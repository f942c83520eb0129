/** Cinder snapshots: `/snapshots`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { CreateSnapshotRequest, Snapshot, SnapshotListFilters } from '../cinder-types.ts';
import { waitForObject } from '../waiter.ts';
import { idFiltersValid, idPath, SHAPES } from './checks.ts';
import { type CinderCore, dropUndefined, emptyPage, type Page } from './core.ts';
import { latestMessage } from './misc.ts';

/** Filters that hold ids: one that is not a Cinder id matches nothing. */
const ID_FILTERS = ['volume_id', 'group_snapshot_id'] as const;

/**
 * `POST /snapshots`. From 3.66 on, snapshots of in-use volumes need no `force` and Cinder rejects
 * `force: false`, so the flag is only sent below 3.66.
 */
export async function createSnapshot(
  c: CinderCore,
  req: CreateSnapshotRequest,
  opts: CallOptions = {},
): Promise<Snapshot> {
  const { force, ...rest } = req;
  const snapshot = (await c.atLeast('3.66', opts)) ? rest : { ...rest, force };
  return c.one<Snapshot>('POST', '/snapshots', 'snapshot.create', 'snapshot', SHAPES.snapshot, {
    signal: opts.signal,
    body: { snapshot: dropUndefined(snapshot) },
  });
}

export async function getSnapshot(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Snapshot> {
  return c.one<Snapshot>('GET', idPath('snapshots', id), 'snapshot.get', 'snapshot', SHAPES.snapshot, opts);
}

export async function listSnapshotsPage(
  c: CinderCore,
  filters: SnapshotListFilters,
  opts: CallOptions = {},
): Promise<Page<Snapshot>> {
  if (!idFiltersValid(filters, ID_FILTERS)) return emptyPage();
  return c.page<Snapshot>(
    '/snapshots/detail',
    'snapshots',
    SHAPES.snapshot,
    'snapshot.list',
    { ...filters },
    opts,
  );
}

export function listSnapshots(
  c: CinderCore,
  filters: SnapshotListFilters = {},
  opts: CallOptions = {},
): AsyncIterable<Snapshot> {
  return c.iterate((marker) => listSnapshotsPage(c, { ...filters, marker }, opts), filters.marker);
}

export async function deleteSnapshot(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', idPath('snapshots', id, '', 'DELETE'), 'snapshot.delete', opts);
}

export async function setSnapshotMetadata(
  c: CinderCore,
  id: string,
  metadata: Record<string, string>,
  opts: CallOptions = {},
): Promise<void> {
  await c.call('POST', idPath('snapshots', id, '/metadata', 'POST'), 'snapshot.metadata.set', {
    signal: opts.signal,
    body: { metadata },
    idempotent: true,
  });
}

export function waitForSnapshot(c: CinderCore, id: string, wait: WaitOptions): Promise<Snapshot | undefined> {
  return waitForObject('snapshot', id, (signal) => getSnapshot(c, id, { signal }), wait, {
    explain: async (_s, signal) => (await latestMessage(c, id, { signal }))?.user_message,
  });
}
