/**
 * Keystone v3 and noauth against the real lab (test/lab-up.sh): every auth method the driver
 * supports, catalog lookup, bad credentials, the noauth cinder-api on :8786 sharing the Keystone
 * admin project, and a secrets check over every log line the run produced (trace level).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { AuthConfig, CloudConfig } from '../../../src/config/types.ts';
import { CatalogError } from '../../../src/openstack/catalog.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { HttpClient } from '../../../src/openstack/http.ts';
import { OpenStackSession } from '../../../src/openstack/session.ts';
import { createLogger, type Logger } from '../../../src/util/logger.ts';
import {
  LAB_CINDER_URL,
  labAvailable,
  labConfig,
  labNoauth,
  labPassword,
  uniqueName,
} from '../../support/lab.ts';

const skip = await labAvailable();
if (skip) console.log(`# SKIP auth integration tests: ${skip}`);

const WRONG_PASSWORD = 'Wr0ng-Pa55word-auth-it';

describe('OpenStack auth against the lab', { skip }, () => {
  const lines: string[] = [];
  /** Token values and secrets seen during the run: none may appear in any log line. */
  const secrets = new Set<string>([WRONG_PASSWORD]);
  let logger: Logger;
  let http: HttpClient;
  const sessions: OpenStackSession[] = [];
  let adminProjectId: string;

  const withAuth = (base: CloudConfig, auth: Partial<AuthConfig>): CloudConfig => ({
    ...base,
    auth: { ...base.auth, ...auth },
  });
  /** Lab Keystone config with only these auth fields (no user name/project from the defaults). */
  const keystoneOnly = (auth: Partial<AuthConfig> & Pick<AuthConfig, 'type'>): CloudConfig => {
    const base = labConfig('keystone');
    return { ...base, auth: { authUrl: base.auth.authUrl, ...auth } };
  };
  const open = (config: CloudConfig): OpenStackSession => {
    const s = new OpenStackSession({ config, logger, http });
    sessions.push(s);
    return s;
  };
  /** A volume list works and the session is scoped to the expected project. */
  const assertWorks = async (s: OpenStackSession, projectId?: string) => {
    const cinder = s.service('block-storage');
    const res = await cinder.request<{ volumes: unknown[] }>({
      method: 'GET',
      path: '/volumes',
      query: { limit: 1 },
    });
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body.volumes));
    if (projectId) assert.equal(await cinder.projectId(), projectId);
    secrets.add(await s.authToken());
  };

  before(async () => {
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    logger = createLogger({ level: 'trace', destination });
    http = new HttpClient({ logger });
    const admin = open(labConfig('keystone', 'admin'));
    adminProjectId = await admin.service('block-storage').projectId();
    secrets.add(await admin.authToken());
  });

  after(async () => {
    for (const s of sessions) await s.close();
    await http.close();
  });

  it('password by user name + domain, project by name + domain; catalog volumev3 endpoint', async () => {
    const s = open(labConfig('keystone', 'admin'));
    const endpoint = await s.service('block-storage').endpoint();
    assert.equal(endpoint, `${LAB_CINDER_URL}/${adminProjectId}`);
    await assertWorks(s, adminProjectId);
    assert.equal(s.tokenRequests, 1);
  });

  it('password by user id, project by id', async () => {
    const admin = open(labConfig('keystone', 'admin'));
    const users = await admin.service('identity').request<{ users: { id: string; name: string }[] }>({
      method: 'GET',
      path: '/users',
      query: { name: 'admin' },
    });
    const adminUserId = users.body.users[0]!.id;
    const s = open(
      keystoneOnly({
        type: 'password',
        userId: adminUserId,
        password: labPassword('admin'),
        projectId: adminProjectId,
      }),
    );
    await assertWorks(s, adminProjectId);
  });

  it('the demo user is scoped to its own project', async () => {
    const s = open(labConfig('keystone', 'demo'));
    const demoProject = await s.service('block-storage').projectId();
    assert.notEqual(demoProject, adminProjectId);
    assert.equal(await s.service('block-storage').endpoint(), `${LAB_CINDER_URL}/${demoProject}`);
    await assertWorks(s);
  });

  it('application credential by id and by name + user (created for demo, then deleted)', async () => {
    const demo = open(labConfig('keystone', 'demo'));
    const identity = demo.service('identity');
    const demoProject = await demo.service('block-storage').projectId();
    const me = await identity.request<{ token: { user: { id: string } } }>({
      method: 'GET',
      path: '/auth/tokens',
      headers: { 'X-Subject-Token': await demo.authToken() },
    });
    const demoUserId = me.body.token.user.id;
    const name = uniqueName('auth-it-appcred');
    const created = await identity.request<{ application_credential: { id: string; secret: string } }>({
      method: 'POST',
      path: `/users/${demoUserId}/application_credentials`,
      body: { application_credential: { name, description: 'cinder-csi auth integration test' } },
      operation: 'keystone.appcred.create',
    });
    const { id, secret } = created.body.application_credential;
    secrets.add(secret);
    try {
      const byId = open(
        keystoneOnly({
          type: 'v3applicationcredential',
          applicationCredentialId: id,
          applicationCredentialSecret: secret,
        }),
      );
      await assertWorks(byId, demoProject);
      const byName = open(
        keystoneOnly({
          type: 'v3applicationcredential',
          applicationCredentialName: name,
          applicationCredentialSecret: secret,
          username: 'demo',
          userDomainName: 'Default',
        }),
      );
      await assertWorks(byName, demoProject);
      const wrong = open(
        keystoneOnly({
          type: 'v3applicationcredential',
          applicationCredentialId: id,
          applicationCredentialSecret: WRONG_PASSWORD,
        }),
      );
      await assert.rejects(wrong.service('block-storage').endpoint(), { status: 401 });
    } finally {
      await identity.request({
        method: 'DELETE',
        path: `/users/${demoUserId}/application_credentials/${id}`,
      });
    }
  });

  it('token auth re-scoped to a project by name', async () => {
    const admin = open(labConfig('keystone', 'admin'));
    const token = await admin.authToken();
    const s = open(
      keystoneOnly({
        type: 'token',
        token,
        projectName: 'admin',
        projectDomainName: 'Default',
      }),
    );
    await assertWorks(s, adminProjectId);
  });

  it('100 concurrent calls after token expiry: exactly one token request to the real Keystone', async () => {
    let clock = Date.now();
    const s = new OpenStackSession({ config: labConfig('keystone'), logger, http, now: () => clock });
    sessions.push(s);
    const cinder = s.service('block-storage');
    await cinder.request({ method: 'GET', path: '/types' });
    secrets.add(await s.authToken());
    assert.equal(s.tokenRequests, 1);
    clock += 25 * 3_600_000; // past the lab token's 24 h lifetime
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        cinder.request({ method: 'GET', path: '/types', operation: 'cinder.types.list' }),
      ),
    );
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(s.tokenRequests, 2);
    secrets.add(await s.authToken());
  });

  it('catalog lookup honours interface and region', async () => {
    const internal = open({ ...labConfig('keystone'), interface: 'internal' });
    assert.equal(await internal.service('block-storage').endpoint(), `${LAB_CINDER_URL}/${adminProjectId}`);
    const nowhere = open({ ...labConfig('keystone'), region: 'Nowhere' });
    await assert.rejects(nowhere.service('block-storage').endpoint(), (err) => {
      assert.ok(err instanceof CatalogError);
      assert.match(
        err.message,
        /no block-storage \| volumev3 \| volume endpoint for interface public, region Nowhere in the service catalog \(catalog has: /,
      );
      // Keystone lists a service's endpoints in no fixed order.
      assert.match(err.message, /catalog has: [^)]*volumev3\/public\/RegionOne/);
      return true;
    });
  });

  it('bad password: clear 401 OpenStackError without the password', async () => {
    const s = open(withAuth(labConfig('keystone', 'demo'), { password: WRONG_PASSWORD }));
    await assert.rejects(s.service('block-storage').request({ method: 'GET', path: '/volumes' }), (err) => {
      assert.ok(err instanceof OpenStackError);
      assert.equal(err.status, 401);
      assert.match(
        err.message,
        /^POST http:\/\/127\.0\.0\.1:5000\/v3\/auth\/tokens -> HTTP 401: Keystone refused password auth for user "demo": /,
      );
      assert.doesNotMatch(err.message, new RegExp(WRONG_PASSWORD));
      return true;
    });
  });

  it('noauth api: versions, volume list, and the same project as Keystone admin', async () => {
    const n = labNoauth();
    assert.equal(n.projectId, adminProjectId, 'test/lab-up.sh uses the admin project for noauth');
    const s = open(labConfig('noauth'));
    const cinder = s.service('block-storage');
    assert.equal(await cinder.endpoint(), `${n.endpoint}/${n.projectId}`);
    const versions = await cinder.request<{ versions: { id: string; version: string }[] }>({
      method: 'GET',
      path: `${new URL(n.endpoint).origin}/v3/`,
    });
    assert.equal(versions.body.versions[0]?.id, 'v3.0');
    assert.match(versions.body.versions[0]?.version ?? '', /^3\.\d+$/);
    await assertWorks(s, adminProjectId);

    // A volume created through Keystone auth is visible through noauth (same DB, same project).
    const ks = open(labConfig('keystone', 'admin'));
    const name = uniqueName('auth-it-vol');
    const created = await ks.service('block-storage').request<{ volume: { id: string } }>({
      method: 'POST',
      path: '/volumes',
      body: { volume: { name, size: 1, volume_type: 'fake' } },
      operation: 'cinder.volume.create',
    });
    const id = created.body.volume.id;
    try {
      const seen = await cinder.request<{ volume: { name: string } }>({
        method: 'GET',
        path: `/volumes/${id}`,
      });
      assert.equal(seen.body.volume.name, name);
    } finally {
      // delete is refused while 'creating' (which takes up to tens of seconds on a loaded lab)
      const deadline = Date.now() + 180_000;
      while (Date.now() < deadline) {
        const v = await cinder.request<{ volume: { status: string } }>({
          method: 'GET',
          path: `/volumes/${id}`,
        });
        if (v.body.volume.status !== 'creating') break;
        await new Promise((r) => setTimeout(r, 250));
      }
      await cinder.request({ method: 'DELETE', path: `/volumes/${id}` });
    }
  });

  it('no password, token or secret in any log line of this run', () => {
    assert.ok(lines.length > 20, `trace logging captured the run (${lines.length} lines)`);
    const all = lines.join('');
    for (const s of secrets) {
      assert.ok(s.length >= 8, 'secrets are distinctive');
      assert.ok(!all.includes(s), `a secret (${s.slice(0, 4)}...) appears in the logs`);
    }
    // The lab passwords equal the user names (admin/admin), so check the fields instead.
    assert.doesNotMatch(all, /"(password|secret|application_credential_secret)":"(?!\[REDACTED\])/);
    assert.doesNotMatch(all, /"x-(auth|subject)-token":"(?!\[REDACTED\])/i);
  });
});
