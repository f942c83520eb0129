/** Cinder snapshots: `/snapshots`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { CreateSnapshotRequest, Snapshot } from '../cinder-types.ts';
import { waitForStatus } from '../waiter.ts';
import { type CinderCore, dropUndefined, type Page } from './core.ts';
import { latestMessage } from './misc.ts';

export interface SnapshotListFilters {
  name?: string;
  volume_id?: string;
  /** Member snapshots of one group snapshot. */
  group_snapshot_id?: string;
  status?: string;
  limit?: number;
  marker?: string;
}

const path = (id: string) => `/snapshots/${encodeURIComponent(id)}`;

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
  const res = await c.call<{ snapshot: Snapshot }>('POST', '/snapshots', 'snapshot.create', {
    signal: opts.signal,
    body: { snapshot: dropUndefined(snapshot) },
  });
  return res.snapshot;
}

export async function getSnapshot(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Snapshot> {
  const res = await c.call<{ snapshot: Snapshot }>('GET', path(id), 'snapshot.get', opts);
  return res.snapshot;
}

export function listSnapshotsPage(
  c: CinderCore,
  filters: SnapshotListFilters,
  opts: CallOptions = {},
): Promise<Page<Snapshot>> {
  return c.page<Snapshot>('/snapshots/detail', 'snapshots', 'snapshot.list', { ...filters }, opts);
}

export function listSnapshots(
  c: CinderCore,
  filters: SnapshotListFilters = {},
  opts: CallOptions = {},
): AsyncIterable<Snapshot> {
  return c.iterate((marker) => listSnapshotsPage(c, { ...filters, marker }, opts), filters.marker);
}

export async function deleteSnapshot(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', path(id), 'snapshot.delete', opts);
}

export async function setSnapshotMetadata(
  c: CinderCore,
  id: string,
  metadata: Record<string, string>,
  opts: CallOptions = {},
): Promise<void> {
  await c.call('POST', `${path(id)}/metadata`, 'snapshot.metadata.set', {
    signal: opts.signal,
    body: { metadata },
    idempotent: true,
  });
}

export function waitForSnapshot(c: CinderCore, id: string, wait: WaitOptions): Promise<Snapshot | undefined> {
  return waitForStatus<Snapshot>({
    resource: 'snapshot',
    id,
    fetch: (signal) => getSnapshot(c, id, { signal }),
    status: (s) => s.status,
    target: wait.target,
    failOn: wait.failOn,
    gone: wait.gone,
    signal: wait.signal,
    explain: async (_s, signal) => (await latestMessage(c, id, { signal }))?.user_message,
  });
}
