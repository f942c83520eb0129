import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadCloudConfig, loadCloudConfigDetailed } from '../../../src/config/load.ts';
import { labAdminAuth, NO_ENV, PLANTED, passwordConf, tempDir } from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

/** What `cinder-lab.sh env` exports for the keystone lab. */
const LAB_ENV: NodeJS.ProcessEnv = {
  OS_VOLUME_API_VERSION: '3.70',
  OS_AUTH_TYPE: 'password',
  OS_AUTH_URL: 'http://127.0.0.1:5000/v3',
  OS_IDENTITY_API_VERSION: '3',
  OS_REGION_NAME: 'RegionOne',
  OS_INTERFACE: 'public',
  OS_USERNAME: 'admin',
  OS_PASSWORD: PLANTED,
  OS_PROJECT_NAME: 'admin',
  OS_USER_DOMAIN_NAME: 'Default',
  OS_PROJECT_DOMAIN_NAME: 'Default',
};

describe('OS_* environment', () => {
  it('reads the openstackclient variables', () => {
    const loaded = loadCloudConfigDetailed({ env: LAB_ENV, configDirs: [] });
    assert.equal(loaded.source, 'environment');
    assert.deepEqual(loaded.files, []);
    assert.deepEqual(loaded.config.auth, labAdminAuth({ projectDomainName: 'Default' }));
    assert.equal(loaded.config.region, 'RegionOne');
    assert.equal(loaded.config.sources['auth.password'], 'environment OS_PASSWORD');
  });

  it('accepts the legacy names OS_TENANT_*, OS_ENDPOINT_TYPE and ids', () => {
    const cfg = loadCloudConfig({
      env: {
        OS_AUTH_URL: 'http://k:5000/v3',
        OS_USER_ID: 'uid',
        OS_PASSWORD: PLANTED,
        OS_TENANT_ID: 'tid',
        OS_ENDPOINT_TYPE: 'internalURL',
        OS_INSECURE: 'true',
      },
    });
    assert.equal(cfg.auth.type, 'password');
    assert.equal(cfg.auth.projectId, 'tid');
    assert.equal(cfg.interface, 'internal');
    assert.equal(cfg.tls.insecure, true);
  });

  it('reads an application credential and a token', () => {
    const ac = loadCloudConfig({
      env: {
        OS_AUTH_TYPE: 'v3applicationcredential',
        OS_AUTH_URL: 'http://k:5000/v3',
        OS_APPLICATION_CREDENTIAL_ID: 'acid',
        OS_APPLICATION_CREDENTIAL_SECRET: PLANTED,
      },
    });
    assert.equal(ac.auth.applicationCredentialSecret, PLANTED);
    const token = loadCloudConfig({
      env: {
        OS_AUTH_URL: 'http://k:5000/v3',
        OS_TOKEN: PLANTED,
        OS_PROJECT_ID: 'p',
      },
    });
    assert.equal(token.auth.type, 'token');
    assert.equal(token.auth.token, PLANTED);
  });

  it('reads noauth for a standalone Cinder (cinderclient convention)', () => {
    const cfg = loadCloudConfig({
      env: {
        OS_AUTH_TYPE: 'noauth',
        OS_USER_ID: 'admin',
        OS_PROJECT_ID: '0123456789abcdef0123456789abcdef',
        OS_ENDPOINT: 'http://127.0.0.1:8776/v3',
        OS_VOLUME_API_VERSION: '3.70',
      },
    });
    assert.deepEqual(cfg.auth, {
      type: 'noauth',
      projectId: '0123456789abcdef0123456789abcdef',
      noauthUserId: 'admin',
    });
    assert.equal(cfg.endpointOverride, 'http://127.0.0.1:8776/v3');
  });
});

describe('precedence', () => {
  const cloudsDir = `${tmp.dir}/prec`;
  tmp.write(
    'prec/clouds.yaml',
    [
      'clouds:',
      '  yaml:',
      '    region_name: FromYaml',
      '    auth:',
      '      auth_url: http://yaml:5000/v3',
      '      user_id: y',
      `      password: ${PLANTED}`,
      '      project_id: p',
    ].join('\n'),
  );
  const opts = { cwd: cloudsDir, configDirs: [cloudsDir] };

  it('--cloud-config files win over OS_CLOUD and OS_* variables', () => {
    const file = tmp.write('prec/cloud.conf', passwordConf());
    const loaded = loadCloudConfigDetailed({ ...opts, files: [file], env: { ...LAB_ENV, OS_CLOUD: 'yaml' } });
    assert.equal(loaded.source, 'cloud.conf');
    assert.equal(loaded.config.auth.authUrl, 'http://keystone.example:5000/v3');
    assert.equal(loaded.config.auth.projectDomainName, 'Default');
    assert.ok(loaded.notes.some((n) => n.includes('OS_CLOUD is set')));
  });

  it('OS_CLOUD wins over OS_* variables, which are not merged in', () => {
    const loaded = loadCloudConfigDetailed({ ...opts, env: { ...LAB_ENV, OS_CLOUD: 'yaml' } });
    assert.equal(loaded.source, 'clouds.yaml');
    assert.equal(loaded.config.auth.authUrl, 'http://yaml:5000/v3');
    assert.equal(loaded.config.auth.username, undefined);
    assert.equal(loaded.config.interface, 'public');
    assert.equal(loaded.config.region, 'FromYaml');
  });

  it('OS_* variables are used when there are no files and no OS_CLOUD', () => {
    const loaded = loadCloudConfigDetailed({ ...opts, env: LAB_ENV });
    assert.equal(loaded.source, 'environment');
  });

  it('a clouds.yaml on the search path is not used without OS_CLOUD', () => {
    assert.throws(() => loadCloudConfig({ ...opts, env: NO_ENV }), { message: /^no cloud configuration/ });
  });
});
