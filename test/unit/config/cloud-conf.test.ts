import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadCloudConfig, loadCloudConfigDetailed } from '../../../src/config/load.ts';
import { NO_ENV, PLANTED, passwordConf, tempDir } from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const noDirs = { configDirs: [] as string[] };

describe('cloud.conf (INI)', () => {
  it('reads an upstream [Global]/[BlockStorage] file', () => {
    const ca = tmp.write('ca.pem', 'ca');
    const file = tmp.write(
      'full.conf',
      [
        '# upstream cinder-csi-plugin cloud.conf',
        '[Global]',
        'auth-url = "https://keystone.example:5000/v3/"',
        'user-id = 0123abcd',
        `password = "${PLANTED};#with comment chars"`,
        'tenant-id = 11112222333344445555666677778888',
        'region = RegionTwo',
        `ca-file = ${ca}`,
        'tls-insecure = false',
        'os-endpoint-type = internalURL',
        'trust-id = trust-1',
        '',
        '[BlockStorage]',
        'node-volume-attach-limit = 60',
        'rescan-on-resize = true',
        'ignore-volume-az = yes',
        'ignore-volume-microversion = 1',
        '',
      ].join('\n'),
    );
    const cfg = loadCloudConfig({ files: [file], env: NO_ENV });
    assert.deepEqual(cfg.auth, {
      type: 'password',
      authUrl: 'https://keystone.example:5000/v3',
      userId: '0123abcd',
      password: `${PLANTED};#with comment chars`,
      projectId: '11112222333344445555666677778888',
      trustId: 'trust-1',
    });
    assert.equal(cfg.region, 'RegionTwo');
    assert.equal(cfg.interface, 'internal');
    assert.deepEqual(cfg.tls, { caFile: ca, insecure: false });
    assert.deepEqual(cfg.blockStorage, {
      nodeVolumeAttachLimit: 60,
      rescanOnResize: true,
      ignoreVolumeAZ: true,
      ignoreVolumeMicroversion: true,
    });
    assert.equal(cfg.sources['auth.authUrl'], `${file}: [Global] auth-url`);
    assert.equal(
      cfg.sources['blockStorage.nodeVolumeAttachLimit'],
      `${file}: [BlockStorage] node-volume-attach-limit`,
    );
  });

  it('applies defaults and domain-name as the user and project domain', () => {
    const file = tmp.write('defaults.conf', passwordConf());
    const cfg = loadCloudConfig({ files: [file], env: NO_ENV });
    assert.equal(cfg.auth.userDomainName, 'Default');
    assert.equal(cfg.auth.projectDomainName, 'Default');
    assert.equal(cfg.interface, 'public');
    assert.deepEqual(cfg.blockStorage, {
      nodeVolumeAttachLimit: 256,
      rescanOnResize: false,
      ignoreVolumeAZ: false,
      ignoreVolumeMicroversion: false,
    });
    assert.deepEqual(cfg.tls, { insecure: false });
  });

  it('accepts project-* aliases and case-insensitive section and key names', () => {
    const file = tmp.write(
      'aliases.conf',
      [
        '[global]',
        'Auth-URL = http://k:5000/v3',
        'username = u',
        `password = ${PLANTED}`,
        'project-name = p',
        'user-domain-id = default',
        'project-domain-name = PD',
        'os-endpoint-type = admin',
      ].join('\n'),
    );
    const cfg = loadCloudConfig({ files: [file], env: NO_ENV });
    assert.equal(cfg.auth.projectName, 'p');
    assert.equal(cfg.auth.userDomainId, 'default');
    assert.equal(cfg.auth.projectDomainName, 'PD');
    assert.equal(cfg.interface, 'admin');
  });

  it('later files override earlier keys; an empty value clears one', () => {
    const base = tmp.write('multi-1.conf', passwordConf('', 'node-volume-attach-limit = 10'));
    const override = tmp.write(
      'multi-2.conf',
      ['[Global]', 'password = rotated-pw', 'region =', '[BlockStorage]', 'rescan-on-resize = true'].join(
        '\n',
      ),
    );
    const cfg = loadCloudConfig({ files: [base, override], env: NO_ENV });
    assert.equal(cfg.auth.password, 'rotated-pw');
    assert.equal(cfg.auth.username, 'admin');
    assert.equal(cfg.region, undefined);
    assert.equal(cfg.blockStorage.nodeVolumeAttachLimit, 10);
    assert.equal(cfg.blockStorage.rescanOnResize, true);
    assert.equal(cfg.sources['auth.password'], `${override}: [Global] password`);
    assert.equal(cfg.sources['auth.username'], `${base}: [Global] username`);
  });

  it('ignores sections of other components with a note', () => {
    const file = tmp.write(
      'shared.conf',
      passwordConf() +
        ['[Networking]', 'public-network-name = ext', '[LoadBalancer]', 'use-octavia = true'].join('\n') +
        [
          '',
          '[LoadBalancerClass "internal"]',
          'subnet-id = x',
          '[Metadata]',
          'search-order = configDrive',
        ].join('\n'),
    );
    const loaded = loadCloudConfigDetailed({ files: [file], env: NO_ENV });
    assert.equal(loaded.source, 'cloud.conf');
    assert.deepEqual(loaded.files, [file]);
    assert.equal(loaded.notes.filter((n) => n.includes('not used by this driver')).length, 4);
  });

  it('reads an application credential and infers the auth type', () => {
    const file = tmp.write(
      'appcred.conf',
      [
        '[Global]',
        'auth-url = http://k:5000/v3',
        'application-credential-id = ac-id',
        `application-credential-secret = ${PLANTED}`,
      ].join('\n'),
    );
    const cfg = loadCloudConfig({ files: [file], env: NO_ENV });
    assert.deepEqual(cfg.auth, {
      type: 'v3applicationcredential',
      authUrl: 'http://k:5000/v3',
      applicationCredentialId: 'ac-id',
      applicationCredentialSecret: PLANTED,
    });
  });

  it('reads noauth (extension keys auth-type and block-storage-endpoint)', () => {
    const file = tmp.write(
      'noauth.conf',
      [
        '[Global]',
        'auth-type = noauth',
        'block-storage-endpoint = http://127.0.0.1:8776/v3/',
        'user-id = admin',
        'tenant-id = 0123456789abcdef0123456789abcdef',
      ].join('\n'),
    );
    const cfg = loadCloudConfig({ files: [file], env: NO_ENV });
    assert.deepEqual(cfg.auth, {
      type: 'noauth',
      projectId: '0123456789abcdef0123456789abcdef',
      noauthUserId: 'admin',
    });
    assert.equal(cfg.endpointOverride, 'http://127.0.0.1:8776/v3');
  });

  it('use-clouds = true fills empty keys from clouds.yaml; cloud.conf keys win', () => {
    const clouds = tmp.write(
      'uc/clouds.yaml',
      [
        'clouds:',
        '  mycloud:',
        '    region_name: FromYaml',
        '    auth:',
        '      auth_url: http://yaml-keystone:5000/v3',
        '      username: yaml-user',
        `      password: ${PLANTED}`,
        '      project_name: yaml-project',
        '      user_domain_name: Default',
        '      project_domain_name: Default',
      ].join('\n'),
    );
    const file = tmp.write(
      'uc/cloud.conf',
      [
        '[Global]',
        'use-clouds = true',
        `clouds-file = ${clouds}`,
        'cloud = mycloud',
        'region = FromIni',
        '[BlockStorage]',
        'node-volume-attach-limit = 30',
      ].join('\n'),
    );
    const loaded = loadCloudConfigDetailed({ files: [file], env: NO_ENV, ...noDirs });
    const cfg = loaded.config;
    assert.equal(cfg.auth.username, 'yaml-user');
    assert.equal(cfg.auth.password, PLANTED);
    assert.equal(cfg.region, 'FromIni');
    assert.equal(cfg.blockStorage.nodeVolumeAttachLimit, 30);
    assert.equal(cfg.sources['auth.password'], `${clouds}: clouds.mycloud.auth.password`);
    assert.deepEqual(loaded.files, [file, clouds]);
  });

  it('use-clouds takes the cloud name from OS_CLOUD when cloud is not set', () => {
    tmp.write(
      'uc2/clouds.yaml',
      [
        'clouds:',
        '  envcloud:',
        '    auth:',
        '      auth_url: http://k:5000/v3',
        '      application_credential_id: x',
        `      application_credential_secret: ${PLANTED}`,
      ].join('\n'),
    );
    const file = tmp.write('uc2/cloud.conf', '[Global]\nuse-clouds = yes\n');
    const cfg = loadCloudConfig({
      files: [file],
      env: { OS_CLOUD: 'envcloud' },
      cwd: `${tmp.dir}/uc2`,
      configDirs: [`${tmp.dir}/uc2`],
    });
    assert.equal(cfg.auth.type, 'v3applicationcredential');
  });
});
