/** Cinder group snapshots (3.14+): `/group_snapshots`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { GroupSnapshot } from '../cinder-types.ts';
import { waitForStatus } from '../waiter.ts';
import { type CinderCore, dropUndefined } from './core.ts';

const path = (id: string) => `/group_snapshots/${encodeURIComponent(id)}`;

export async function createGroupSnapshot(
  c: CinderCore,
  req: { group_id: string; name?: string; description?: string },
  opts: CallOptions = {},
): Promise<GroupSnapshot> {
  const res = await c.call<{ group_snapshot: GroupSnapshot }>(
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

export async function getGroupSnapshot(
  c: CinderCore,
  id: string,
  opts: CallOptions = {},
): Promise<GroupSnapshot> {
  const res = await c.call<{ group_snapshot: GroupSnapshot }>('GET', path(id), 'group_snapshot.get', {
    signal: opts.signal,
    feature: 'groupSnapshots',
  });
  return res.group_snapshot;
}

export async function deleteGroupSnapshot(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', path(id), 'group_snapshot.delete', {
    signal: opts.signal,
    feature: 'groupSnapshots',
  });
}

/** `GET /group_snapshots/detail` (every page), optionally filtered by name or group. */
export function listGroupSnapshots(
  c: CinderCore,
  filters: { name?: string; group_id?: string; limit?: number } = {},
  opts: CallOptions = {},
): AsyncIterable<GroupSnapshot> {
  return c.iterate((marker) =>
    c.page<GroupSnapshot>(
      '/group_snapshots/detail',
      'group_snapshots',
      'group_snapshot.list',
      { ...filters, marker },
      { signal: opts.signal, feature: 'groupSnapshots' },
    ),
  );
}

export function waitForGroupSnapshot(
  c: CinderCore,
  id: string,
  wait: WaitOptions,
): Promise<GroupSnapshot | undefined> {
  return waitForStatus<GroupSnapshot>({
    resource: 'group snapshot',
    id,
    fetch: (signal) => getGroupSnapshot(c, id, { signal }),
    status: (g) => g.status,
    target: wait.target,
    failOn: wait.failOn,
    gone: wait.gone,
    signal: wait.signal,
  });
}
