/**
 * Sessions on the lab Cinder for the Cinder client's integration tests, per auth mode: keystone
 * (admin/admin through Keystone on :5000, Cinder from the catalog on :8776) and noauth (Cinder's
 * second API on :8786, `X-Auth-Token: admin:<hex project>`), both through the project's
 * OpenStackSession and test/support/lab.ts; plus sessions on throw-away projects for quota tests.
 */
import { randomBytes } from 'node:crypto';
import type { CloudConfig } from '../../../src/config/types.ts';
import { OpenStackSession, type ServiceSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { labAvailable, labConfig } from '../../support/lab.ts';

export type LabMode = 'keystone' | 'noauth';

export interface LabSession {
  session?: ServiceSession;
  /** The whole session (token counters, other services). */
  os?: OpenStackSession;
  /** Why the mode is unavailable (test skip reason). */
  reason?: string;
  /**
   * A session on a fresh project of its own (for quota tests that must not disturb others): noauth
   * makes up a hex project id; keystone creates a project (admin role for admin), removed on close().
   */
  isolatedProjectSession?: () => Promise<ServiceSession>;
  close(): Promise<void>;
}

/** The lab config of test/support/lab.ts, optionally on another project (name in keystone mode, hex id in noauth). */
export function labCloudConfig(mode: LabMode, project?: string): CloudConfig {
  const cfg = labConfig(mode);
  if (!project) return cfg;
  return mode === 'noauth'
    ? { ...cfg, auth: { ...cfg.auth, projectId: project } }
    : { ...cfg, auth: { ...cfg.auth, projectName: project } };
}

export async function labSession(mode: LabMode): Promise<LabSession> {
  const down = await labAvailable();
  if (down) return { reason: down, close: async () => {} };
  const os = new OpenStackSession({ config: labCloudConfig(mode), logger: silentLogger() });
  const extra: OpenStackSession[] = [];
  const session = os.service('block-storage');
  try {
    await session.endpoint(AbortSignal.timeout(30_000));
  } catch (err) {
    await os.close();
    return { reason: `lab ${mode} session failed: ${(err as Error).message}`, close: async () => {} };
  }
  const cleanups: (() => Promise<unknown>)[] = [];
  return {
    session,
    os,
    close: async () => {
      for (const c of cleanups.reverse()) await c().catch(() => {});
      await Promise.all([os, ...extra].map((s) => s.close()));
    },
    isolatedProjectSession: async () => {
      let project = randomBytes(16).toString('hex');
      if (mode === 'keystone') {
        const name = `cinderclient-it-${randomBytes(4).toString('hex')}`;
        project = name;
        const id = await createKeystoneProject(os, name);
        cleanups.push(() => deleteKeystoneProject(os, id));
      }
      const isolated = new OpenStackSession({
        config: labCloudConfig(mode, project),
        logger: silentLogger(),
      });
      extra.push(isolated);
      return isolated.service('block-storage');
    },
  };
}

/**
 * Creates a Keystone project in domain Default where admin has the admin role; returns its id (the
 * controller's quota tests use it too: test/integration/controller/lab.ts).
 */
export async function createKeystoneProject(
  os: OpenStackSession,
  name: string,
  description = 'cinder client integration test (temporary)',
): Promise<string> {
  const identity = os.service('identity');
  const created = await identity.request<{ project: { id: string } }>({
    method: 'POST',
    path: '/projects',
    body: {
      project: { name, domain_id: 'default', description },
    },
    operation: 'test.keystone.project.create',
  });
  const id = created.body.project.id;
  try {
    const user = await identity.request<{ users: { id: string }[] }>({
      method: 'GET',
      path: '/users',
      query: { name: 'admin' },
    });
    const role = await identity.request<{ roles: { id: string }[] }>({
      method: 'GET',
      path: '/roles',
      query: { name: 'admin' },
    });
    await identity.request({
      method: 'PUT',
      path: `/projects/${id}/users/${user.body.users[0]!.id}/roles/${role.body.roles[0]!.id}`,
      operation: 'test.keystone.role.grant',
    });
  } catch (err) {
    await deleteKeystoneProject(os, id).catch(() => {});
    throw err;
  }
  return id;
}

/** Disables and deletes a Keystone project. */
export async function deleteKeystoneProject(os: OpenStackSession, id: string): Promise<void> {
  const identity = os.service('identity');
  // Keystone refuses to delete an enabled project.
  await identity.request({ method: 'PATCH', path: `/projects/${id}`, body: { project: { enabled: false } } });
  await identity.request({ method: 'DELETE', path: `/projects/${id}` });
}
