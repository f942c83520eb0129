/** Cinder group types and groups (3.13+): `/group_types`, `/groups`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { Group, GroupType } from '../cinder-types.ts';
import { waitForStatus } from '../waiter.ts';
import { type CinderCore, dropUndefined } from './core.ts';

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

export async function listGroupTypes(c: CinderCore, opts: CallOptions = {}): Promise<GroupType[]> {
  const res = await c.call<{ group_types: GroupType[] }>('GET', '/group_types', 'group_type.list', {
    signal: opts.signal,
    feature: 'groups',
  });
  return res.group_types;
}

export async function getGroupType(
  c: CinderCore,
  idOrName: string,
  opts: CallOptions = {},
): Promise<GroupType> {
  const res = await c.call<{ group_type: GroupType }>(
    'GET',
    `/group_types/${encodeURIComponent(idOrName)}`,
    'group_type.get',
    { signal: opts.signal, feature: 'groups' },
  );
  return res.group_type;
}

/** Admin: creates a group type (e.g. with `consistent_group_snapshot_enabled`). */
export async function createGroupType(
  c: CinderCore,
  req: CreateGroupTypeRequest,
  opts: CallOptions = {},
): Promise<GroupType> {
  const res = await c.call<{ group_type: GroupType }>('POST', '/group_types', 'group_type.create', {
    signal: opts.signal,
    body: { group_type: dropUndefined(req) },
    feature: 'groups',
  });
  return res.group_type;
}

export async function deleteGroupType(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', `/group_types/${encodeURIComponent(id)}`, 'group_type.delete', {
    signal: opts.signal,
    feature: 'groups',
  });
}

export async function createGroup(
  c: CinderCore,
  req: CreateGroupRequest,
  opts: CallOptions = {},
): Promise<Group> {
  const res = await c.call<{ group: Group }>('POST', '/groups', 'group.create', {
    signal: opts.signal,
    body: { group: dropUndefined(req) },
    feature: 'groups',
  });
  return res.group;
}

export async function getGroup(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Group> {
  const res = await c.call<{ group: Group }>('GET', `/groups/${encodeURIComponent(id)}`, 'group.get', {
    signal: opts.signal,
    query: { list_volume: true },
    feature: 'groups',
  });
  return res.group;
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
    { signal: opts.signal, feature: 'groups' },
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
  await c.call('PUT', `/groups/${encodeURIComponent(id)}`, 'group.update', {
    signal: opts.signal,
    body: { group },
    feature: 'groups',
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
      'group.list',
      { ...filters, marker },
      {
        signal: opts.signal,
        feature: 'groups',
      },
    ),
  );
}

export function waitForGroup(c: CinderCore, id: string, wait: WaitOptions): Promise<Group | undefined> {
  return waitForStatus<Group>({
    resource: 'group',
    id,
    fetch: (signal) => getGroup(c, id, { signal }),
    status: (g) => g.status,
    target: wait.target,
    failOn: wait.failOn,
    gone: wait.gone,
    signal: wait.signal,
  });
}
