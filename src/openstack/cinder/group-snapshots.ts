/** Cinder group snapshots (3.14+): `/group_snapshots`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { GroupSnapshot } from '../cinder-types.ts';
import { waitForObject } from '../waiter.ts';
import { idFiltersValid, idPath, SHAPES } from './checks.ts';
import { type CinderCore, dropUndefined, emptyPage } from './core.ts';

const KEY = 'group_snapshot';
const FEATURE = { feature: 'groupSnapshots' } as const;

export async function createGroupSnapshot(
  c: CinderCore,
  req: { group_id: string; name?: string; description?: string },
  opts: CallOptions = {},
): Promise<GroupSnapshot> {
  // Cinder answers a create with the id and name only.
  return c.one<GroupSnapshot>('POST', '/group_snapshots', 'group_snapshot.create', KEY, SHAPES.created, {
    signal: opts.signal,
    body: { group_snapshot: dropUndefined(req) },
    ...FEATURE,
  });
}

export async function getGroupSnapshot(
  c: CinderCore,
  id: string,
  opts: CallOptions = {},
): Promise<GroupSnapshot> {
  const path = idPath('group_snapshots', id);
  return c.one<GroupSnapshot>('GET', path, 'group_snapshot.get', KEY, SHAPES.groupSnapshot, {
    signal: opts.signal,
    ...FEATURE,
  });
}

export async function deleteGroupSnapshot(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', idPath('group_snapshots', id, '', 'DELETE'), 'group_snapshot.delete', {
    signal: opts.signal,
    ...FEATURE,
  });
}

/** `GET /group_snapshots/detail` (every page), optionally filtered by name or group. */
export function listGroupSnapshots(
  c: CinderCore,
  filters: { name?: string; group_id?: string; limit?: number } = {},
  opts: CallOptions = {},
): AsyncIterable<GroupSnapshot> {
  const valid = idFiltersValid(filters, ['group_id']);
  return c.iterate((marker) =>
    valid
      ? c.page<GroupSnapshot>(
          '/group_snapshots/detail',
          'group_snapshots',
          SHAPES.groupSnapshot,
          'group_snapshot.list',
          { ...filters, marker },
          { signal: opts.signal, ...FEATURE },
        )
      : Promise.resolve(emptyPage<GroupSnapshot>()),
  );
}

export function waitForGroupSnapshot(
  c: CinderCore,
  id: string,
  wait: WaitOptions,
): Promise<GroupSnapshot | undefined> {
  return waitForObject('group snapshot', id, (signal) => getGroupSnapshot(c, id, { signal }), wait);
}
