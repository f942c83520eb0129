/** Cinder group types and groups (3.13+): `/group_types`, `/groups`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { Group, GroupType } from '../cinder-types.ts';
import { waitForObject } from '../waiter.ts';
import { idPath, isCinderId, notFoundLocally, SHAPES } from './checks.ts';
import { type CinderCore, dropUndefined, ignoreNotFound } from './core.ts';

export interface CreateGroupRequest {
  name: string;
  group_type: string;
  volume_types: string[];
  availability_zone?: string;
  description?: string;
}

export interface CreateGroupTypeRequest {
  name: string;
  description?: string;
  is_public?: boolean;
  group_specs?: Record<string, string>;
}

const GROUPS = { feature: 'groups' } as const;

export async function listGroupTypes(c: CinderCore, opts: CallOptions = {}): Promise<GroupType[]> {
  return c.list<GroupType>('/group_types', 'group_type.list', 'group_types', SHAPES.type, {
    signal: opts.signal,
    ...GROUPS,
  });
}

/** By id, or by name (looked up in the list, as for volume types). */
export async function getGroupType(
  c: CinderCore,
  idOrName: string,
  opts: CallOptions = {},
): Promise<GroupType> {
  if (isCinderId(idOrName)) {
    const byId = await ignoreNotFound(
      c.one<GroupType>('GET', idPath('group_types', idOrName), 'group_type.get', 'group_type', SHAPES.type, {
        signal: opts.signal,
        ...GROUPS,
      }),
    );
    if (byId) return byId;
  }
  const found = (await listGroupTypes(c, opts)).find((t) => t.name === idOrName);
  if (found) return found;
  throw notFoundLocally('group_types', idOrName, 'GET', true);
}

/** Admin: creates a group type (e.g. with `consistent_group_snapshot_enabled`). */
export async function createGroupType(
  c: CinderCore,
  req: CreateGroupTypeRequest,
  opts: CallOptions = {},
): Promise<GroupType> {
  return c.one<GroupType>('POST', '/group_types', 'group_type.create', 'group_type', SHAPES.type, {
    signal: opts.signal,
    body: { group_type: dropUndefined(req) },
    ...GROUPS,
  });
}

export async function deleteGroupType(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', idPath('group_types', id, '', 'DELETE'), 'group_type.delete', {
    signal: opts.signal,
    ...GROUPS,
  });
}

export async function createGroup(
  c: CinderCore,
  req: CreateGroupRequest,
  opts: CallOptions = {},
): Promise<Group> {
  // Cinder answers a create with the id and name only.
  return c.one<Group>('POST', '/groups', 'group.create', 'group', SHAPES.created, {
    signal: opts.signal,
    body: { group: dropUndefined(req) },
    ...GROUPS,
  });
}

export async function getGroup(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Group> {
  return c.one<Group>('GET', idPath('groups', id), 'group.get', 'group', SHAPES.group, {
    signal: opts.signal,
    query: { list_volume: true },
    ...GROUPS,
  });
}

export async function deleteGroup(
  c: CinderCore,
  id: string,
  opts: CallOptions & { deleteVolumes?: boolean } = {},
): Promise<void> {
  await c.action(
    'groups',
    id,
    'group.delete',
    { delete: { 'delete-volumes': opts.deleteVolumes ?? false } },
    { signal: opts.signal, ...GROUPS },
  );
}

/** Adds/removes volumes (Cinder takes comma-separated id lists). */
export async function updateGroup(
  c: CinderCore,
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
  await c.call('PUT', idPath('groups', id, '', 'PUT'), 'group.update', {
    signal: opts.signal,
    body: { group },
    ...GROUPS,
  });
}

/** `GET /groups/detail` (every page); `name` is also checked by callers (older servers ignore filters). */
export function listGroups(
  c: CinderCore,
  filters: { name?: string; limit?: number } = {},
  opts: CallOptions = {},
): AsyncIterable<Group> {
  return c.iterate((marker) =>
    c.page<Group>(
      '/groups/detail',
      'groups',
      SHAPES.group,
      'group.list',
      { ...filters, marker },
      {
        signal: opts.signal,
        ...GROUPS,
      },
    ),
  );
}

export function waitForGroup(c: CinderCore, id: string, wait: WaitOptions): Promise<Group | undefined> {
  return waitForObject('group', id, (signal) => getGroup(c, id, { signal }), wait);
}
