/**
 * The image's program started from its startup snapshot: scripts/bundle.sh, then
 * scripts/build-snapshot.sh (the blob, made with this node), laid out as in the image (package.json,
 * bin/, dist/bundle/) in a temporary directory WITHOUT node_modules, run through bin/cinder-csi.
 * Each start checks from /proc/PID/cmdline that node really started from the blob (bin/cinder-csi
 * falls back to the bundle silently), so a blob that stops working fails here, not only in the
 * benchmark. Also: the fallbacks (CINDER_CSI_SNAPSHOT=0, a GRPC_* setting, a node newer than the
 * blob) and `all` mode reaching the lab's noauth Cinder (undici, loaded after the start).
 * Needs esbuild from the devDependencies (`npm ci`).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { killChildren } from '../../support/children.ts';
import type { csiClient } from '../../support/csi-client.ts';
import { labAvailable, labNoauthEnv } from '../../support/lab.ts';
import { type ProgramResult, runProgram } from '../../support/program-run.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'snapshot-test-'));
const program = join(dir, 'bin', 'cinder-csi');
const blob = join(dir, 'dist/bundle/snapshot.blob');
const PATH = `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}`;
const children: ChildProcess[] = [];

/** noauth settings for node mode, which reaches Cinder only at a volume call (an unreachable endpoint). */
function offlineEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('OS_') || k.startsWith('GRPC_')) delete env[k];
  delete env['CINDER_CSI_SNAPSHOT'];
  return {
    ...env,
    OS_AUTH_TYPE: 'noauth',
    OS_USER_ID: 'snapshot-test',
    OS_PROJECT_ID: '0123456789abcdef0123456789abcdef',
    OS_ENDPOINT: 'http://127.0.0.1:9/v3',
    ...extra,
  };
}

before(() => {
  const esbuild = process.env['ESBUILD'] ?? join(ROOT, 'node_modules/.bin/esbuild');
  assert.ok(existsSync(esbuild), `no ${esbuild}: install the devDependencies (scripts/npm-deps.sh)`);
  execFileSync('bash', [join(ROOT, 'scripts/bundle.sh'), join(dir, 'dist/bundle')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 300_000,
  });
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin/cinder-csi'), program);
  execFileSync('chmod', ['0755', program]);
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  execFileSync('sh', [join(ROOT, 'scripts/build-snapshot.sh'), dir], {
    env: { ...process.env, PATH },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 120_000,
  });
  assert.ok(existsSync(blob), 'build-snapshot.sh made no blob');
});

after(async () => {
  await killChildren(children);
  rmSync(dir, { recursive: true, force: true });
});

/** The program in `mode` until ready, then `fn` (program-run.ts); it must exit 0 on SIGTERM. */
async function withDriver(
  mode: string,
  env: NodeJS.ProcessEnv,
  fn: (c: ReturnType<typeof csiClient>, cmdline: string[]) => Promise<void>,
  extraArgs: string[] = [],
): Promise<ProgramResult> {
  const run = { program, dir, mode, nodeId: 'snapshot-test', env: { ...env, PATH }, extraArgs, children };
  const res = await runProgram(run, fn);
  assert.equal(res.exitCode, 0, `exit code after SIGTERM; stderr: ${res.stderr.slice(0, 500)}`);
  return res;
}

const fromBlob = (cmdline: string[]) => {
  const i = cmdline.indexOf('--snapshot-blob');
  return i > 0 && resolve(cmdline[i + 1] ?? '') === blob;
};

describe('the image program started from its startup snapshot', () => {
  test('--version from the blob names the package version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const out = execFileSync(process.execPath, ['--snapshot-blob', blob, '--', '--version'], {
      encoding: 'utf8',
    });
    assert.match(out, new RegExp(`^cinder-csi ${pkg.version.replace(/\./g, '\\.')}`));
    assert.ok(!existsSync(join(dir, 'node_modules')));
  });

  test('node mode from the blob: Probe ready, GetPluginInfo, NodeGetInfo, clean stop', async () => {
    await withDriver('node', offlineEnv(), async (c, cmdline) => {
      assert.ok(fromBlob(cmdline), `not started from the blob: ${cmdline.join(' ')}`);
      const info = await c.call<{ name: string; vendor_version: string }>('Identity', 'GetPluginInfo', {});
      assert.equal(info.name, 'cinder.csi.dev');
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.equal(info.vendor_version, pkg.version);
      const node = await c.call<{ node_id: string }>('Node', 'NodeGetInfo', {});
      assert.equal(node.node_id, 'snapshot-test');
      // the environment is the one of the start, not of the build (which ran with PATH only)
      const caps = await c.call<{ capabilities: unknown[] }>('Node', 'NodeGetCapabilities', {});
      assert.ok(caps.capabilities.length > 0);
    });
  });

  test("random values are the start's, not the build's: request ids differ between two starts", async () => {
    // crypto.randomUUID keeps a cache of random bytes: one filled while the blob was built would
    // hand every process the same ids (Math.random is reseeded by V8, that cache is not).
    const firstIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { stdout } = await withDriver(
        'node',
        offlineEnv(),
        async (c, cmdline) => {
          assert.ok(fromBlob(cmdline), `not started from the blob: ${cmdline.join(' ')}`);
          await c.call('Identity', 'GetPluginInfo', {});
        },
        ['--log-level', 'debug'],
      );
      const id = /"requestId":"([0-9a-f-]{36})"/.exec(stdout)?.[1];
      assert.ok(id, `no requestId in the debug log: ${stdout.slice(0, 300)}`);
      firstIds.push(id);
    }
    assert.notEqual(firstIds[0], firstIds[1]);
  });

  test('falls back to the bundle: CINDER_CSI_SNAPSHOT=0, a GRPC_* setting, a node newer than the blob', async () => {
    for (const extra of [{ CINDER_CSI_SNAPSHOT: '0' }, { GRPC_VERBOSITY: 'ERROR' }]) {
      await withDriver('node', offlineEnv(extra), async (_c, cmdline) => {
        assert.ok(!fromBlob(cmdline), `${JSON.stringify(extra)}: started from the blob`);
        assert.ok(
          cmdline.some((a) => a.endsWith('dist/bundle/main.js')),
          cmdline.join(' '),
        );
      });
    }
    const old = new Date('1970-01-02T00:00:00Z');
    utimesSync(blob, old, old);
    try {
      await withDriver('node', offlineEnv(), async (_c, cmdline) => {
        assert.ok(!fromBlob(cmdline), 'a blob older than node was used');
      });
    } finally {
      const now = new Date();
      utimesSync(blob, now, now);
    }
  });

  test('all mode from the blob: ready after a Cinder round trip; ListVolumes answers from the lab', async (t) => {
    const skip = await labAvailable();
    if (skip) return t.skip(skip);
    await withDriver('all', offlineEnv(labNoauthEnv()), async (c, cmdline) => {
      assert.ok(fromBlob(cmdline), `not started from the blob: ${cmdline.join(' ')}`);
      // The entrypoint's V8 flags hold in every mode, the controller's too (bin/cinder-csi).
      for (const flag of ['--no-opt', '--no-maglev', '--no-sparkplug', '--max-semi-space-size=1']) {
        assert.ok(cmdline.includes(flag), `${flag} missing: ${cmdline.join(' ')}`);
      }
      const r = await c.call<{ entries: unknown[] }>('Controller', 'ListVolumes', { max_entries: 1 }, 30_000);
      assert.ok(Array.isArray(r.entries));
    });
  });
});
