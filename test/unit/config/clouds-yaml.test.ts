import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadCloudConfig, loadCloudConfigDetailed } from '../../../src/config/load.ts';
import { labAdminAuth, PLANTED, tempDir } from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

const CLOUDS = [
  'clouds:',
  '  lab:',
  '    auth_type: password',
  '    region_name: RegionOne',
  '    interface: internal',
  '    identity_api_version: 3',
  '    auth:',
  '      auth_url: http://127.0.0.1:5000/v3',
  '      username: admin',
  '      project_name: admin',
  '      user_domain_name: Default',
  '      project_domain_id: default',
  '  other:',
  '    auth:',
  '      auth_url: http://other:5000/v3',
  '',
].join('\n');

const SECURE = ['clouds:', '  lab:', '    auth:', `      password: "${PLANTED}"`, ''].join('\n');

describe('clouds.yaml + secure.yaml (OS_CLOUD)', () => {
  it('reads the OS_CLOUD entry and merges secure.yaml over it', () => {
    const dir = join(tmp.dir, 'cwd1');
    const clouds = tmp.write('cwd1/clouds.yaml', CLOUDS);
    const secure = tmp.write('cwd1/secure.yaml', SECURE);
    const loaded = loadCloudConfigDetailed({
      env: { OS_CLOUD: 'lab' },
      cwd: dir,
      home: dir,
      configDirs: [dir],
    });
    assert.equal(loaded.source, 'clouds.yaml');
    assert.deepEqual(loaded.files, [clouds, secure]);
    assert.deepEqual(loaded.config.auth, labAdminAuth({ projectDomainId: 'default' }));
    assert.equal(loaded.config.region, 'RegionOne');
    assert.equal(loaded.config.interface, 'internal');
    assert.equal(loaded.config.sources['auth.password'], `${secure}: clouds.lab.auth.password`);
    assert.ok(loaded.notes.some((n) => n.includes('clouds.lab.identity_api_version: not used')));
  });

  it('searches ./, ~/.config/openstack, /etc/openstack in that order (default search path)', () => {
    const cwd = join(tmp.dir, 'search-cwd');
    const home = join(tmp.dir, 'search-home');
    tmp.write('search-cwd/unrelated.txt', '');
    const inHome = tmp.write('search-home/.config/openstack/clouds.yml', CLOUDS);
    // Cloud `other` has no credentials: the error names the file that was read.
    const load = () => loadCloudConfig({ env: { OS_CLOUD: 'other' }, cwd, home });
    assert.throws(load, { message: new RegExp(`^${inHome}: clouds\\.other\\.auth\\.user_id or `) });
    const inCwd = tmp.write('search-cwd/clouds.yaml', CLOUDS);
    assert.throws(load, { message: new RegExp(`^${inCwd}: clouds\\.other\\.auth\\.user_id or `) });
  });

  it('OS_CLIENT_CONFIG_FILE / OS_CLIENT_SECURE_FILE name the files explicitly', () => {
    const clouds = tmp.write('explicit/my-clouds.yaml', CLOUDS);
    const secure = tmp.write('explicit/my-secure.yaml', SECURE);
    const cfg = loadCloudConfig({
      env: { OS_CLOUD: 'lab', OS_CLIENT_CONFIG_FILE: clouds, OS_CLIENT_SECURE_FILE: secure },
      configDirs: [],
    });
    assert.equal(cfg.auth.password, PLANTED);
  });

  it('maps verify, cacert/cert/key, endpoint overrides and regions', () => {
    const ca = tmp.write('tls/ca.pem', 'ca');
    const cert = tmp.write('tls/client.pem', 'cert');
    const key = tmp.write('tls/client.key', 'key');
    const clouds = tmp.write(
      'tls/clouds.yaml',
      [
        'clouds:',
        '  tls:',
        '    verify: false',
        `    cacert: ${ca}`,
        `    cert: ${cert}`,
        `    key: ${key}`,
        '    volume_endpoint_override: https://cinder.example:8776/v3',
        '    regions:',
        '      - name: R1',
        '      - R2',
        '    auth_type: v3applicationcredential',
        '    auth:',
        '      auth_url: https://keystone.example/v3',
        '      application_credential_name: ac',
        '      user_id: u1',
        `      application_credential_secret: ${PLANTED}`,
      ].join('\n'),
    );
    const cfg = loadCloudConfig({ env: { OS_CLOUD: 'tls', OS_CLIENT_CONFIG_FILE: clouds }, configDirs: [] });
    assert.deepEqual(cfg.tls, { caFile: ca, certFile: cert, keyFile: key, insecure: true });
    assert.equal(cfg.endpointOverride, 'https://cinder.example:8776/v3');
    assert.equal(cfg.region, 'R1');
    assert.equal(cfg.auth.applicationCredentialName, 'ac');
    assert.equal(cfg.auth.userId, 'u1');
  });

  it('keeps YAML scalars as typed text (failsafe schema): password 0123 stays "0123"', () => {
    const clouds = tmp.write(
      'scalars/clouds.yaml',
      [
        'clouds:',
        '  c:',
        '    auth:',
        '      auth_url: http://k/v3',
        '      user_id: u',
        '      password: 0123',
        '      project_id: 1e3',
      ].join('\n'),
    );
    const cfg = loadCloudConfig({ env: { OS_CLOUD: 'c', OS_CLIENT_CONFIG_FILE: clouds }, configDirs: [] });
    assert.equal(cfg.auth.password, '0123');
    assert.equal(cfg.auth.projectId, '1e3');
  });

  it('reads noauth (auth_type none, auth.endpoint)', () => {
    const clouds = tmp.write(
      'noauth/clouds.yaml',
      [
        'clouds:',
        '  standalone:',
        '    auth_type: none',
        '    auth:',
        '      endpoint: http://127.0.0.1:8776/v3',
        '      user_id: admin',
        '      project_id: 0123456789abcdef0123456789abcdef',
      ].join('\n'),
    );
    const cfg = loadCloudConfig({
      env: { OS_CLOUD: 'standalone', OS_CLIENT_CONFIG_FILE: clouds },
      configDirs: [],
    });
    assert.deepEqual(cfg.auth, {
      type: 'noauth',
      projectId: '0123456789abcdef0123456789abcdef',
      noauthUserId: 'admin',
    });
    assert.equal(cfg.endpointOverride, 'http://127.0.0.1:8776/v3');
  });
});
