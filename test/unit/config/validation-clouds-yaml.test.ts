/**
 * Configuration errors of clouds.yaml (and cloud.conf's use-clouds) and the config summaries:
 * the message names file and key, and the planted secret never appears, not even in
 * describeConfig, JSON or inspect output. cloud.conf errors: validation.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { describeConfig } from '../../../src/config/describe.ts';
import { loadCloudConfig } from '../../../src/config/load.ts';
import {
  assertNoSecret,
  confFiles,
  expectConfigError,
  global,
  NO_ENV,
  PLANTED,
  passwordConf,
  tempDir,
} from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
/** Writes a cloud.conf and returns a loader for it. */
const conf = confFiles(tmp);

describe('clouds.yaml errors', () => {
  const env = (file: string, cloud = 'c'): NodeJS.ProcessEnv => ({
    OS_CLOUD: cloud,
    OS_CLIENT_CONFIG_FILE: file,
  });
  const yamlLoad =
    (file: string, cloud = 'c') =>
    () =>
      loadCloudConfig({ env: env(file, cloud), configDirs: [] });
  const GOOD = ['clouds:', '  c:', '    auth:', '      auth_url: http://k/v3', `      password: ${PLANTED}`];

  it('no clouds.yaml found', () => {
    expectConfigError(
      () => loadCloudConfig({ env: { OS_CLOUD: 'c' }, configDirs: [`${tmp.dir}/empty`] }),
      `environment OS_CLOUD: no clouds.yaml found (searched ${tmp.dir}/empty; set OS_CLIENT_CONFIG_FILE to name one)`,
    );
  });

  it('OS_CLIENT_CONFIG_FILE does not exist', () => {
    expectConfigError(
      yamlLoad(`${tmp.dir}/missing.yaml`),
      `environment OS_CLIENT_CONFIG_FILE: file ${tmp.dir}/missing.yaml does not exist`,
    );
  });

  it('no such cloud', () => {
    const file = tmp.write('y1.yaml', GOOD.join('\n'));
    expectConfigError(yamlLoad(file, 'd'), `${file}: clouds.d: no such cloud in this file`);
  });

  it('invalid YAML reports position only, never the line', () => {
    const file = tmp.write(
      'y2.yaml',
      ['clouds:', '  c:', '    auth:', `      password: "${PLANTED}`, '  x: [', ''].join('\n'),
    );
    expectConfigError(
      yamlLoad(file),
      new RegExp(`^${file}: invalid YAML \\([A-Z_]+\\) at line \\d+, column \\d+$`),
    );
  });

  it('duplicate keys are invalid YAML', () => {
    const file = tmp.write('y3.yaml', [...GOOD, `      password: ${PLANTED}`].join('\n'));
    expectConfigError(yamlLoad(file), `${file}: invalid YAML (DUPLICATE_KEY) at line 6, column 7`);
  });

  it('unknown auth key (typo protection)', () => {
    const file = tmp.write('y4.yaml', [...GOOD, `      pasword: ${PLANTED}`].join('\n'));
    expectConfigError(yamlLoad(file), `${file}: clouds.c.auth.pasword: unknown auth key`);
  });

  it('a map where a single value is expected', () => {
    const file = tmp.write('y5.yaml', [...GOOD, '      username:', `        secret: ${PLANTED}`].join('\n'));
    expectConfigError(yamlLoad(file), `${file}: clouds.c.auth.username: expected a single value`);
  });

  it('verify not a boolean', () => {
    const file = tmp.write('y6.yaml', [...GOOD, '    verify: sometimes'].join('\n'));
    expectConfigError(
      yamlLoad(file),
      `${file}: clouds.c.verify: not a boolean (use true/false, 1/0 or yes/no)`,
    );
  });

  it('vendor profiles are refused', () => {
    const file = tmp.write('y7.yaml', [...GOOD, '    profile: vexxhost'].join('\n'));
    expectConfigError(
      yamlLoad(file),
      `${file}: clouds.c.profile: vendor profiles are not supported; write the settings out in the cloud entry`,
    );
  });

  it('clouds is not a map', () => {
    const file = tmp.write('y8.yaml', 'clouds: [a, b]\n');
    expectConfigError(yamlLoad(file), `${file}: clouds: expected a map of clouds`);
  });

  it('missing key named in clouds.yaml terms', () => {
    const file = tmp.write('y9.yaml', GOOD.join('\n'));
    expectConfigError(
      yamlLoad(file),
      `${file}: clouds.c.auth.user_id or clouds.c.auth.username: required for auth type password`,
    );
  });

  it('use-clouds without a cloud name', () => {
    const { file, load } = conf(global(['use-clouds = true']));
    expectConfigError(load, `${file}: [Global] cloud: required with use-clouds = true (or set OS_CLOUD)`);
  });

  it('clouds-file does not exist', () => {
    const { file, load } = conf(
      global(['use-clouds = true', 'cloud = c', `clouds-file = ${tmp.dir}/nope.yaml`]),
    );
    expectConfigError(load, `${file}: [Global] clouds-file: file ${tmp.dir}/nope.yaml does not exist`);
  });
});

describe('secrets in summaries', () => {
  it('describeConfig, JSON and inspect of a config never show the secrets', () => {
    const configs = [
      loadCloudConfig({ files: [conf(passwordConf()).file], env: NO_ENV }),
      loadCloudConfig({
        env: {
          OS_AUTH_URL: 'http://k/v3',
          OS_APPLICATION_CREDENTIAL_ID: 'i',
          OS_APPLICATION_CREDENTIAL_SECRET: PLANTED,
        },
      }),
      loadCloudConfig({ env: { OS_AUTH_URL: 'http://k/v3', OS_TOKEN: PLANTED, OS_PROJECT_ID: 'p' } }),
    ];
    for (const cfg of configs) {
      const summary = describeConfig(cfg);
      assertNoSecret(JSON.stringify(summary));
      assert.ok(JSON.stringify(summary).includes('[REDACTED]'));
      assertNoSecret(JSON.stringify(cfg));
      assertNoSecret(inspect(cfg, { depth: 10 }));
      assertNoSecret(JSON.stringify(cfg.auth));
      assertNoSecret(inspect(cfg.auth));
    }
    // The secrets themselves are still there for the OpenStack layer.
    assert.equal(configs[0]?.auth.password, PLANTED);
    assert.equal(configs[1]?.auth.applicationCredentialSecret, PLANTED);
    assert.equal(configs[2]?.auth.token, PLANTED);
  });
});
