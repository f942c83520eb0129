/** Shared helpers for the configuration tests: temp files and secret-leak assertions. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { loadCloudConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/types.ts';

/** A value planted as password / secret / token in every error path; it must never be printed. */
export const PLANTED = 'S3cr3t-planted-xyz';

/**
 * The lab admin's password auth as the loaders return it, with the project's domain as the source
 * names it (by id or by name).
 */
export function labAdminAuth(projectDomain: { projectDomainId: string } | { projectDomainName: string }) {
  return {
    type: 'password',
    authUrl: 'http://127.0.0.1:5000/v3',
    username: 'admin',
    password: PLANTED,
    projectName: 'admin',
    userDomainName: 'Default',
    ...projectDomain,
  };
}

export interface TempDir {
  dir: string;
  /** Writes `content` to `name` (relative to the temp dir, directories created) and returns the path. */
  write(name: string, content: string): string;
  cleanup(): void;
}

export function tempDir(): TempDir {
  const dir = mkdtempSync(join(tmpdir(), 'cinder-csi-config-'));
  return {
    dir,
    write(name, content) {
      const path = join(dir, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
      return path;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Asserts that `fn` throws a ConfigError whose message equals `expected` (string) or matches it
 * (RegExp), and that neither the message, the stack nor the inspected error contains PLANTED.
 */
export function expectConfigError(fn: () => unknown, expected: string | RegExp): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${inspect(caught)}`);
  if (typeof expected === 'string') assert.equal(caught.message, expected);
  else assert.match(caught.message, expected);
  assertNoSecret(caught.message);
  assertNoSecret(caught.stack ?? '');
  assertNoSecret(inspect(caught));
  return caught;
}

export function assertNoSecret(text: string): void {
  assert.ok(!text.includes(PLANTED), `planted secret leaked into: ${text}`);
}

/** An INI cloud.conf with a password setup; `extra` lines are appended to [Global]. */
export function passwordConf(extra = '', blockStorage = ''): string {
  return [
    '[Global]',
    'auth-url = http://keystone.example:5000/v3',
    'username = admin',
    `password = ${PLANTED}`,
    'tenant-name = admin',
    'domain-name = Default',
    'region = RegionOne',
    extra,
    '[BlockStorage]',
    blockStorage,
    '',
  ].join('\n');
}

/** A clean environment (no OS_* leaking in from the test runner's shell). */
export const NO_ENV: NodeJS.ProcessEnv = Object.freeze({});

/** A writer of numbered cloud.conf files in `tmp`: each call returns the file and a loader for it. */
export function confFiles(tmp: TempDir): (text: string) => { file: string; load: () => unknown } {
  let n = 0;
  return (text) => {
    const file = tmp.write(`c${++n}.conf`, text);
    return { file, load: () => loadCloudConfig({ files: [file], env: NO_ENV, configDirs: [] }) };
  };
}

/** A cloud.conf of `lines` in [Global] and `blockStorage` in [BlockStorage]. */
export function global(lines: string[], blockStorage: string[] = []): string {
  return ['[Global]', ...lines, '[BlockStorage]', ...blockStorage, ''].join('\n');
}
