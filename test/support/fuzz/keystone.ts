/**
 * A throw-away Keystone user of the lab whose password is the fuzz run's planted secret, so the
 * driver really authenticates with it (and the run can check it never shows up in a log or reply).
 * It gets the admin role on the admin project, like the lab credentials the other tests use.
 */
import { LAB_CINDER_URL, LAB_KEYSTONE_URL, labPassword } from '../lab.ts';

async function json(res: Response, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export async function keystoneToken(user: string, password: string, project = 'admin'): Promise<string> {
  const res = await fetch(`${LAB_KEYSTONE_URL}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user, domain: { name: 'Default' }, password } },
        },
        scope: { project: { name: project, domain: { name: 'Default' } } },
      },
    }),
    signal: AbortSignal.timeout(15_000),
  });
  await json(res, 'keystone token');
  const token = res.headers.get('x-subject-token');
  if (!token) throw new Error('keystone token: no X-Subject-Token');
  return token;
}

export interface FuzzUser {
  name: string;
  password: string;
  projectId: string;
  /** Deletes the user (its tokens die with it). */
  remove(): Promise<void>;
}

export async function createFuzzUser(name: string, password: string): Promise<FuzzUser> {
  const admin = await keystoneToken('admin', labPassword('admin'));
  const h = { 'x-auth-token': admin, 'content-type': 'application/json' };
  const get = async (path: string) =>
    json(
      await fetch(`${LAB_KEYSTONE_URL}${path}`, { headers: h, signal: AbortSignal.timeout(15_000) }),
      path,
    );
  const projects = (await get('/projects?name=admin')) as { projects: { id: string }[] };
  const roles = (await get('/roles?name=admin')) as { roles: { id: string }[] };
  const projectId = projects.projects[0]?.id;
  const roleId = roles.roles[0]?.id;
  if (!projectId || !roleId) throw new Error('lab keystone: no admin project or role');
  const created = (await json(
    await fetch(`${LAB_KEYSTONE_URL}/users`, {
      method: 'POST',
      headers: h,
      body: JSON.stringify({ user: { name, password, domain_id: 'default', enabled: true } }),
      signal: AbortSignal.timeout(15_000),
    }),
    'create user',
  )) as { user: { id: string } };
  const userId = created.user.id;
  const remove = async () => {
    const res = await fetch(`${LAB_KEYSTONE_URL}/users/${userId}`, {
      method: 'DELETE',
      headers: h,
      signal: AbortSignal.timeout(15_000),
    });
    await res.arrayBuffer();
  };
  try {
    const res = await fetch(`${LAB_KEYSTONE_URL}/projects/${projectId}/users/${userId}/roles/${roleId}`, {
      method: 'PUT',
      headers: h,
      signal: AbortSignal.timeout(15_000),
    });
    await json(res, 'assign role');
  } catch (err) {
    await remove();
    throw err;
  }
  return { name, password, projectId, remove };
}

/**
 * Removes every volume (with its attachments and snapshots) carrying the run's cluster id, directly
 * through Cinder: whatever the run's own CSI deletes left behind. Returns how many it found.
 */
export async function sweepCluster(token: string, projectId: string, clusterId: string): Promise<number> {
  const base = `${new URL(LAB_CINDER_URL).origin}/v3/${projectId}`;
  const h = {
    'x-auth-token': token,
    'openstack-api-version': 'volume 3.44',
    'content-type': 'application/json',
  };
  const req = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: h,
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  // Groups the driver made for group snapshots (description names the cluster): their group
  // snapshots first, then the group with its volumes (a CreateVolumeGroupSnapshot whose reply
  // never came leaves one, for the sidecar's retry to pick up).
  const groups = (await req('GET', '/groups/detail')).body as {
    groups?: { id: string; description?: string }[];
  };
  const ours = (groups.groups ?? []).filter((g) => (g.description ?? '').endsWith(`cluster=${clusterId}`));
  for (const g of ours) {
    const gs = (await req('GET', `/group_snapshots/detail?group_id=${g.id}`)).body as {
      group_snapshots?: { id: string; group_id: string }[];
    };
    for (const s of (gs.group_snapshots ?? []).filter((x) => x.group_id === g.id)) {
      await req('DELETE', `/group_snapshots/${s.id}`);
    }
  }
  for (let i = 0; i < 60 && ours.length > 0; i++) {
    let pending = 0;
    for (const g of ours) {
      const r = await req('POST', `/groups/${g.id}/action`, { delete: { 'delete-volumes': true } });
      if (r.status === 404) continue;
      pending++;
    }
    if (pending === 0) break;
    await new Promise((res) => setTimeout(res, 1000));
  }
  const filter = encodeURIComponent(JSON.stringify({ 'cinder.csi.dev/cluster': clusterId }));
  const vols = (await req('GET', `/volumes/detail?metadata=${filter}`)).body as {
    volumes?: { id: string; attachments?: { attachment_id: string }[] }[];
  };
  const found = vols.volumes ?? [];
  for (const v of found) {
    const atts = (await req('GET', `/attachments?volume_id=${v.id}`)).body as {
      attachments?: { id: string }[];
    };
    for (const a of atts.attachments ?? []) await req('DELETE', `/attachments/${a.id}`);
    const backups = (await req('GET', `/backups?volume_id=${v.id}`)).body as { backups?: { id: string }[] };
    for (const b of backups.backups ?? []) await req('DELETE', `/backups/${b.id}`);
  }
  // Backups are deleted asynchronously; a volume with a backup in progress cannot go yet.
  for (let i = 0; i < 60; i++) {
    let pending = 0;
    for (const v of found) {
      const r = await req('DELETE', `/volumes/${v.id}?cascade=true`);
      if (r.status === 404) continue;
      if (r.status >= 400) pending++;
    }
    if (pending === 0) break;
    await new Promise((res) => setTimeout(res, 1000));
  }
  return found.length + ours.length;
}
