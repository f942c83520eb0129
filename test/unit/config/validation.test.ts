import { chmodSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { loadCloudConfig } from '../../../src/config/load.ts';
import { confFiles, expectConfigError, global, NO_ENV, PLANTED, passwordConf, tempDir } from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
/** Writes a cloud.conf and returns a loader for it. */
const conf = confFiles(tmp);

const KEYSTONE = 'auth-url = http://keystone.example:5000/v3';
describe('cloud.conf file and syntax errors', () => {
  it('missing file', () => {
    const file = `${tmp.dir}/does-not-exist.conf`;
    expectConfigError(() => loadCloudConfig({ files: [file], env: NO_ENV }), `${file}: file does not exist`);
  });

  it('unknown section', () => {
    const { file, load } = conf(`${passwordConf()}[Globl]\nregion = x\n`);
    expectConfigError(load, `${file}: [Globl]: unknown section (expected [Global] or [BlockStorage])`);
  });

  it('unknown key in [Global] (typo protection)', () => {
    const { file, load } = conf(passwordConf(`passwrod = ${PLANTED}`));
    expectConfigError(load, `${file}: [Global] passwrod: unknown key`);
  });

  it('unknown key in [BlockStorage]', () => {
    const { file, load } = conf(passwordConf('', 'node-volume-attach-limt = 3'));
    expectConfigError(load, `${file}: [BlockStorage] node-volume-attach-limt: unknown key`);
  });

  it('a line that is not key = value (e.g. a wrapped password) is named by line number only', () => {
    const { file, load } = conf(['[Global]', KEYSTONE, 'password = first-part', PLANTED, ''].join('\n'));
    expectConfigError(load, `${file}: line 4: not a [section] or key = value line`);
  });

  it('key outside of any section', () => {
    const { file, load } = conf(`password = ${PLANTED}\n${passwordConf()}`);
    expectConfigError(
      load,
      `${file}: password: key outside of any section (expected [Global] or [BlockStorage])`,
    );
  });

  it('two spellings of the same key in one file', () => {
    const { file, load } = conf(passwordConf('project-name = other'));
    expectConfigError(
      load,
      `${file}: [Global] project-name: conflicts with [Global] tenant-name (they are the same setting; keep one)`,
    );
  });

  it('upstream trustee keys are refused', () => {
    const { file, load } = conf(passwordConf(`trustee-password = ${PLANTED}`));
    expectConfigError(
      load,
      `${file}: [Global] trustee-password: trustee authentication is not supported by this driver`,
    );
  });

  it('no configuration at all', () => {
    expectConfigError(() => loadCloudConfig({ env: NO_ENV, configDirs: [] }), /^no cloud configuration: /);
  });
});

describe('value errors', () => {
  it('auth-url not a URL (even when a secret was typed into it)', () => {
    const { file, load } = conf(passwordConf().replace(KEYSTONE, `auth-url = ${PLANTED}`));
    expectConfigError(
      load,
      `${file}: [Global] auth-url: not a valid URL (expected http:// or https:// with a host)`,
    );
  });

  it('auth-url not http(s)', () => {
    const { file, load } = conf(passwordConf().replace(KEYSTONE, 'auth-url = ftp://keystone.example/v3'));
    expectConfigError(
      load,
      `${file}: [Global] auth-url: not a valid URL (expected http:// or https:// with a host)`,
    );
  });

  it('URL with embedded credentials', () => {
    const { file, load } = conf(
      passwordConf().replace(KEYSTONE, `auth-url = http://admin:${PLANTED}@k:5000/v3`),
    );
    expectConfigError(load, `${file}: [Global] auth-url: must not contain credentials`);
  });

  it('endpoint not a URL', () => {
    const { file, load } = conf(passwordConf('endpoint = 127.0.0.1:8776'));
    expectConfigError(
      load,
      `${file}: [Global] endpoint: not a valid URL (expected http:// or https:// with a host)`,
    );
  });

  for (const bad of ['0', '-1', '2.5', 'many', '99999999999999999999']) {
    it(`node-volume-attach-limit = ${bad} is not a positive integer`, () => {
      const { file, load } = conf(passwordConf('', `node-volume-attach-limit = ${bad}`));
      expectConfigError(load, `${file}: [BlockStorage] node-volume-attach-limit: not a positive integer`);
    });
  }

  it('boolean in [Global] and [BlockStorage]', () => {
    const a = conf(passwordConf('tls-insecure = maybe'));
    expectConfigError(
      a.load,
      `${a.file}: [Global] tls-insecure: not a boolean (use true/false, 1/0 or yes/no)`,
    );
    const b = conf(passwordConf('', 'rescan-on-resize = on'));
    expectConfigError(
      b.load,
      `${b.file}: [BlockStorage] rescan-on-resize: not a boolean (use true/false, 1/0 or yes/no)`,
    );
  });

  it('os-endpoint-type', () => {
    const { file, load } = conf(passwordConf('os-endpoint-type = private'));
    expectConfigError(
      load,
      `${file}: [Global] os-endpoint-type: not a valid endpoint interface (use public, internal or admin)`,
    );
  });

  it('auth-type', () => {
    const { file, load } = conf(passwordConf('auth-type = kerberos'));
    expectConfigError(
      load,
      new RegExp(`^${file}: \\[Global\\] auth-type: unsupported auth type \\(use one of password, `),
    );
  });

  it('ca-file does not exist', () => {
    const { file, load } = conf(passwordConf(`ca-file = ${tmp.dir}/nope.pem`));
    expectConfigError(load, `${file}: [Global] ca-file: file ${tmp.dir}/nope.pem does not exist`);
  });

  it('ca-file is not a regular file', () => {
    const { file, load } = conf(passwordConf(`ca-file = ${tmp.dir}`));
    expectConfigError(load, `${file}: [Global] ca-file: ${tmp.dir} is not a regular file`);
  });

  it('ca-file not readable', { skip: process.getuid?.() === 0 ? 'root can read any file' : false }, () => {
    const ca = tmp.write('unreadable.pem', 'x');
    chmodSync(ca, 0o000);
    const { file, load } = conf(passwordConf(`ca-file = ${ca}`));
    expectConfigError(load, `${file}: [Global] ca-file: file ${ca} is not readable`);
  });

  it('cert-file without key-file and key-file without cert-file', () => {
    const pem = tmp.write('client.pem', 'x');
    const a = conf(passwordConf(`cert-file = ${pem}`));
    expectConfigError(a.load, `${a.file}: [Global] key-file: required with a client certificate`);
    const b = conf(passwordConf(`key-file = ${pem}`));
    expectConfigError(b.load, `${b.file}: [Global] cert-file: required with a client key`);
  });
});

describe('required keys per auth type', () => {
  it('password: auth-url', () => {
    const { file, load } = conf(
      global(['username = u', `password = ${PLANTED}`, 'tenant-id = p', 'domain-id = d']),
    );
    expectConfigError(load, `${file}: [Global] auth-url: required for auth type password`);
  });

  it('password: user', () => {
    const { file, load } = conf(global([KEYSTONE, `password = ${PLANTED}`, 'tenant-id = p']));
    expectConfigError(
      load,
      `${file}: [Global] user-id or [Global] username: required for auth type password`,
    );
  });

  it('password: user domain with username', () => {
    const { file, load } = conf(global([KEYSTONE, 'username = u', `password = ${PLANTED}`, 'tenant-id = p']));
    expectConfigError(
      load,
      `${file}: [Global] user-domain-name or [Global] user-domain-id or [Global] domain-name or [Global] domain-id: required with username`,
    );
  });

  it('password: password', () => {
    const { file, load } = conf(global([KEYSTONE, 'user-id = u', 'tenant-id = p']));
    expectConfigError(load, `${file}: [Global] password: required for auth type password`);
  });

  it('password: project scope', () => {
    const { file, load } = conf(global([KEYSTONE, 'user-id = u', `password = ${PLANTED}`]));
    expectConfigError(
      load,
      `${file}: [Global] tenant-id or [Global] tenant-name or [Global] trust-id: required for auth type password`,
    );
  });

  it('password: project domain with a project name', () => {
    const { file, load } = conf(
      global([KEYSTONE, 'user-id = u', `password = ${PLANTED}`, 'tenant-name = p']),
    );
    expectConfigError(
      load,
      `${file}: [Global] tenant-domain-name or [Global] tenant-domain-id or [Global] domain-name or [Global] domain-id: required with a project name`,
    );
  });

  it('application credential: secret, id or name, user with a name', () => {
    const a = conf(global([KEYSTONE, 'application-credential-id = x']));
    expectConfigError(
      a.load,
      `${a.file}: [Global] application-credential-secret: required for auth type v3applicationcredential`,
    );
    const b = conf(global([KEYSTONE, `application-credential-secret = ${PLANTED}`]));
    expectConfigError(
      b.load,
      `${b.file}: [Global] application-credential-id or [Global] application-credential-name: required for auth type v3applicationcredential`,
    );
    const c = conf(
      global([KEYSTONE, 'application-credential-name = n', `application-credential-secret = ${PLANTED}`]),
    );
    expectConfigError(
      c.load,
      `${c.file}: [Global] user-id or [Global] username: required for auth type v3applicationcredential`,
    );
  });

  it('token: token (environment)', () => {
    expectConfigError(
      () =>
        loadCloudConfig({ env: { OS_AUTH_TYPE: 'v3token', OS_AUTH_URL: 'http://k/v3', OS_PROJECT_ID: 'p' } }),
      'environment: OS_TOKEN: required for auth type token',
    );
  });

  it('noauth: endpoint, project id, user id', () => {
    const base = [
      'auth-type = noauth',
      'endpoint = http://127.0.0.1:8776/v3',
      'user-id = admin',
      'tenant-id = abc',
    ];
    const a = conf(global(base.filter((l) => !l.startsWith('endpoint'))));
    expectConfigError(
      a.load,
      `${a.file}: [Global] endpoint: required for auth type noauth (the Cinder endpoint, e.g. http://host:8776/v3)`,
    );
    const b = conf(global(base.filter((l) => !l.startsWith('tenant-id'))));
    expectConfigError(b.load, `${b.file}: [Global] tenant-id: required for auth type noauth`);
    const c = conf(global(base.filter((l) => !l.startsWith('user-id'))));
    expectConfigError(c.load, `${c.file}: [Global] user-id: required for auth type noauth`);
  });

  it("noauth: project id must match Cinder's project_id_regex", () => {
    const { file, load } = conf(
      global(['auth-type = noauth', 'endpoint = http://c:8776/v3', 'user-id = admin', 'tenant-id = Admin']),
    );
    expectConfigError(
      load,
      `${file}: [Global] tenant-id: not a valid noauth project id (Cinder's project_id_regex allows lowercase hex digits and '-' only)`,
    );
  });

  it('noauth: user id must not contain a colon', () => {
    expectConfigError(
      () =>
        loadCloudConfig({
          env: {
            OS_AUTH_TYPE: 'noauth',
            OS_ENDPOINT: 'http://c:8776/v3',
            OS_USER_ID: `a:${PLANTED}`,
            OS_PROJECT_ID: 'ab',
          },
        }),
      "environment OS_USER_ID: not a valid noauth user id (no ':' or whitespace allowed)",
    );
  });
});
