/**
 * The session's token lifecycle (cache, refresh ahead of expiry, re-auth on 401, single-flight,
 * credential reload, noauth) against a local fake Keystone (test/support/fault-server.ts: a test
 * double for the token endpoint only; the real Keystone is exercised in
 * test/integration/openstack/auth.test.ts). Auth bodies and the catalog: keystone-auth.test.ts.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { AuthConfig, CloudConfig } from '../../../src/config/types.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { HttpClient } from '../../../src/openstack/http.ts';
import { OpenStackSession } from '../../../src/openstack/session.ts';
import { AbortedError } from '../../../src/util/abort.ts';
import { createLogger, silentLogger } from '../../../src/util/logger.ts';
import { type FakeKeystone, FaultServer } from '../../support/fault-server.ts';

/** The [BlockStorage] defaults (nothing of it matters to the session). */
const BLOCK_STORAGE = {
  nodeVolumeAttachLimit: 256,
  rescanOnResize: false,
  ignoreVolumeAZ: false,
  ignoreVolumeMicroversion: false,
};

describe('OpenStackSession (Keystone)', () => {
  let srv: FaultServer;
  let ks: FakeKeystone;
  let http: HttpClient;
  let sessions: OpenStackSession[];

  const config = (over: Partial<AuthConfig> = {}, top: Partial<CloudConfig> = {}): CloudConfig => ({
    auth: {
      type: 'password',
      authUrl: `${srv.url}/v3`,
      username: 'admin',
      password: 'pw',
      userDomainName: 'Default',
      projectName: 'proj',
      projectDomainName: 'Default',
      ...over,
    },
    region: 'R1',
    interface: 'public',
    tls: { insecure: false },
    blockStorage: BLOCK_STORAGE,
    sources: {},
    ...top,
  });
  const session = (cfg: CloudConfig | (() => CloudConfig), extra: { now?: () => number } = {}) => {
    const s = new OpenStackSession({ config: cfg, logger: silentLogger(), http, ...extra });
    sessions.push(s);
    return s;
  };

  beforeEach(async () => {
    srv = await FaultServer.start();
    ks = srv.fakeKeystone({ project: 'p1', password: 'pw' });
    srv.script('GET', '/v3/p1/volumes', { status: 200, body: { volumes: [] } });
    http = new HttpClient({ logger: silentLogger(), backoffBaseMs: 1, connectionsPerOrigin: 128 });
    sessions = [];
  });
  afterEach(async () => {
    for (const s of sessions) await s.close();
    await http.close();
    await srv.close();
  });

  it('authenticates once, resolves the catalog endpoint and reuses the token', async () => {
    const s = session(config());
    const cinder = s.service('block-storage');
    assert.equal(await cinder.endpoint(), `${srv.url}/v3/p1`);
    assert.equal(await cinder.projectId(), 'p1');
    await cinder.request({ method: 'GET', path: '/volumes' });
    await cinder.request({ method: 'GET', path: 'volumes' });
    assert.equal(s.tokenRequests, 1);
    assert.equal(ks.tokenRequests, 1);
    assert.equal(srv.requests.at(-1)!.headers['x-auth-token'], 'tok-1');
    const sent = srv.requests.find((r) => r.path === '/v3/auth/tokens')!.json as {
      auth: { scope: unknown };
    };
    assert.deepEqual(sent.auth.scope, { project: { name: 'proj', domain: { name: 'Default' } } });
  });

  it('honours interface, region and the endpoint override', async () => {
    const internal = session(config({}, { interface: 'internal', region: 'R2' }));
    assert.equal(await internal.service('block-storage').endpoint(), `${srv.url}/internal/v3/p1`);
    const missing = session(config({}, { region: 'R9' }));
    await assert.rejects(missing.service('block-storage').endpoint(), /no block-storage .* region R9/);
    const override = session(config({}, { endpointOverride: 'http://cinder.example:8776/v3' }));
    assert.equal(await override.service('block-storage').endpoint(), 'http://cinder.example:8776/v3/p1');
  });

  it('re-authenticates once on 401 and retries the request', async () => {
    const s = session(config());
    const cinder = s.service('block-storage');
    await cinder.request({ method: 'GET', path: '/volumes' });
    ks.revokeAll();
    const res = await cinder.request({ method: 'GET', path: '/volumes' });
    assert.equal(res.status, 200);
    assert.equal(s.tokenRequests, 2);
    assert.equal(srv.requests.at(-1)!.headers['x-auth-token'], 'tok-2');
  });

  it('gives up after one re-auth when the service keeps answering 401', async () => {
    srv.script('GET', '/v3/p1/forbidden', {
      status: 401,
      body: { error: { code: 401, message: 'The request you have made requires authentication.' } },
    });
    const s = session(config());
    await assert.rejects(s.service('block-storage').request({ method: 'GET', path: '/forbidden' }), {
      name: 'OpenStackError',
      status: 401,
    });
    assert.equal(s.tokenRequests, 2);
    assert.equal(srv.count('GET', '/v3/p1/forbidden'), 2);
  });

  it('100 concurrent calls after a revocation cause exactly one token request', async () => {
    const s = session(config());
    const cinder = s.service('block-storage');
    await cinder.request({ method: 'GET', path: '/volumes' });
    ks.revokeAll();
    ks.delayMs = 50;
    const results = await Promise.all(
      Array.from({ length: 100 }, () => cinder.request({ method: 'GET', path: '/volumes' })),
    );
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(s.tokenRequests, 2);
    assert.equal(ks.tokenRequests, 2);
  });

  it('100 concurrent calls after expiry cause exactly one token request (refresh ahead of expiry)', async () => {
    let clock = Date.now();
    const s = session(config(), { now: () => clock });
    const cinder = s.service('block-storage');
    await cinder.request({ method: 'GET', path: '/volumes' });
    clock += 54 * 60_000; // token lives 1 h: still more than 5 min left
    await cinder.request({ method: 'GET', path: '/volumes' });
    assert.equal(s.tokenRequests, 1);
    clock += 2 * 60_000; // 4 min left: inside the refresh margin
    ks.delayMs = 30;
    await Promise.all(Array.from({ length: 100 }, () => cinder.request({ method: 'GET', path: '/volumes' })));
    assert.equal(s.tokenRequests, 2);
  });

  it("counts the token lifetime from receipt: Keystone's clock skew does not matter", async () => {
    ks.skewMs = -2 * 3_600_000; // Keystone's clock is 2 h behind: expires_at is in our past
    const s = session(config());
    await s.service('block-storage').request({ method: 'GET', path: '/volumes' });
    await s.service('block-storage').request({ method: 'GET', path: '/volumes' });
    assert.equal(s.tokenRequests, 1);
  });

  it('an aborted waiter does not disturb the shared token request', async () => {
    const s = session(config());
    ks.delayMs = 200;
    const ac = new AbortController();
    const aborted = s
      .service('block-storage')
      .request({ method: 'GET', path: '/volumes', signal: ac.signal });
    const other = s.service('block-storage').request({ method: 'GET', path: '/volumes' });
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(aborted, AbortedError);
    assert.equal((await other).status, 200);
    assert.equal(s.tokenRequests, 1);
  });

  it('bad password: 401 OpenStackError naming the user, never the password', async () => {
    const s = session(config({ password: 'Wr0ngPassw0rd' }));
    await assert.rejects(s.service('block-storage').endpoint(), (err) => {
      assert.ok(err instanceof OpenStackError);
      assert.equal(err.status, 401);
      assert.equal(err.unauthorized, true);
      assert.match(err.message, /Keystone refused password auth for user "admin": The request you have made/);
      assert.doesNotMatch(err.message, /Wr0ngPassw0rd/);
      assert.doesNotMatch(JSON.stringify(err), /Wr0ngPassw0rd/);
      return true;
    });
  });

  it('re-reads credentials after an auth failure and on reloadCredentials()', async () => {
    let password = 'old-wrong';
    let reads = 0;
    const s = session(() => {
      reads++;
      return config({ password });
    });
    await assert.rejects(s.service('block-storage').endpoint(), { status: 401 });
    password = 'pw'; // the operator fixed the Secret
    assert.equal(await s.service('block-storage').endpoint(), `${srv.url}/v3/p1`);
    assert.equal(s.tokenRequests, 2);

    const readsBefore = reads;
    ks.password = 'rotated';
    password = 'rotated';
    s.reloadCredentials();
    assert.ok(reads > readsBefore);
    await s.service('block-storage').request({ method: 'GET', path: '/volumes' });
    assert.equal(s.tokenRequests, 3, 'reload dropped the cached token');
    const last = srv.requests.filter((r) => r.path === '/v3/auth/tokens').at(-1)!.json as {
      auth: { identity: { password: { user: { password: string } } } };
    };
    assert.equal(last.auth.identity.password.user.password, 'rotated');
  });

  it('logs nothing secret at trace level', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = createLogger({ level: 'trace', destination });
    const tracedHttp = new HttpClient({ logger, backoffBaseMs: 1 });
    const s = new OpenStackSession({
      config: config({ password: 'Sup3rSecretPw' }),
      logger,
      http: tracedHttp,
    });
    ks.password = 'Sup3rSecretPw';
    try {
      await s.service('block-storage').request({ method: 'GET', path: '/volumes' });
      ks.revokeAll();
      await s.service('block-storage').request({ method: 'GET', path: '/volumes' });
    } finally {
      await s.close();
      await tracedHttp.close();
    }
    const all = lines.join('');
    assert.ok(lines.length > 6, 'trace logging produced lines');
    assert.match(all, /"path":"\/v3\/auth\/tokens"/);
    for (const secret of ['Sup3rSecretPw', ...ks.issued])
      assert.ok(!all.includes(secret), `leaked ${secret}`);
  });
});

describe('OpenStackSession (noauth)', () => {
  let srv: FaultServer;
  let s: OpenStackSession;
  const noauth = (projectId: string, endpointOverride = '') =>
    new OpenStackSession({
      config: {
        auth: { type: 'noauth', noauthUserId: 'admin', projectId },
        interface: 'public',
        endpointOverride: endpointOverride || `${srv.url}/v3`,
        tls: { insecure: false },
        blockStorage: BLOCK_STORAGE,
        sources: {},
      },
      logger: silentLogger(),
    });
  beforeEach(async () => {
    srv = await FaultServer.start();
  });
  afterEach(async () => {
    await s?.close();
    await srv.close();
  });

  it('sends user:project and appends the project to the endpoint', async () => {
    s = noauth('0123abcd');
    srv.script('GET', '/v3/0123abcd/volumes', { status: 200, body: { volumes: [] } });
    const cinder = s.service('block-storage');
    assert.equal(await cinder.endpoint(), `${srv.url}/v3/0123abcd`);
    assert.equal(await cinder.projectId(), '0123abcd');
    await cinder.request({ method: 'GET', path: '/volumes' });
    assert.equal(srv.requests.at(-1)!.headers['x-auth-token'], 'admin:0123abcd');
    assert.equal(s.tokenRequests, 0);
  });

  it('does not retry a 401 (there is nothing to refresh)', async () => {
    s = noauth('0123abcd');
    srv.script('GET', '/v3/0123abcd/volumes', { status: 401, body: 'no' });
    await assert.rejects(s.service('block-storage').request({ method: 'GET', path: '/volumes' }), {
      status: 401,
    });
    assert.equal(srv.count(), 1);
  });

  it('refuses a project id that Cinder would not route (not hex)', async () => {
    s = noauth('admin');
    await assert.rejects(s.service('block-storage').endpoint(), /project_id_regex/);
    await assert.rejects(s.service('image').endpoint(), /only block-storage/);
  });
});
