/**
 * The image's program: scripts/bundle.sh's esbuild bundle run through bin/cinder-csi, laid out as
 * in the image (package.json, bin/, dist/bundle/) in a temporary directory WITHOUT node_modules,
 * so every dependency must be inside the bundle. Node mode answers Probe/NodeGetInfo; `all` mode
 * reaches the lab's noauth Cinder through undici (WebAssembly HTTP parser) inside the bundle.
 * Needs esbuild from the devDependencies (`npm ci`).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { csiClient } from '../../support/csi-client.ts';
import { labAvailable, labNoauth } from '../../support/lab.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'bundle-test-'));
const program = join(dir, 'bin', 'cinder-csi');
const children: ChildProcess[] = [];

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
});

after(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the program in `mode` until its Probe answers ready (bounded), then calls `fn`. */
async function withDriver(
  mode: string,
  env: NodeJS.ProcessEnv,
  fn: (c: ReturnType<typeof csiClient>) => Promise<void>,
): Promise<void> {
  const sock = join(dir, `${mode}.sock`);
  for (const k of Object.keys(env)) if (k.startsWith('OS_CLOUD')) delete env[k];
  const child = spawn(
    program,
    [
      '--mode',
      mode,
      '--endpoint',
      `unix://${sock}`,
      '--node-id',
      'bundle-test',
      '--state-dir',
      join(dir, 'state'),
    ],
    {
      env: { ...env, PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const deadline = Date.now() + 60_000;
  while (!existsSync(sock)) {
    assert.ok(child.exitCode === null, `exited early: ${stderr.slice(0, 500)}`);
    assert.ok(Date.now() < deadline, `no socket after 60 s: ${stderr.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const client = csiClient(`unix://${sock}`);
  try {
    for (;;) {
      const r = await client
        .call<{ ready: { value: boolean } | null }>('Identity', 'Probe', {}, 2000)
        .catch(() => undefined);
      if (r?.ready?.value) break;
      assert.ok(Date.now() < deadline, `not ready after 60 s: ${stderr.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await fn(client);
  } finally {
    client.close();
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
  assert.doesNotMatch(stderr, /Warning|Error/, 'no warnings or errors on stderr');
}

describe('the bundled image program (no node_modules)', () => {
  test('--version names the package version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const out = execFileSync(program, ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}` },
    });
    assert.match(out, new RegExp(`^cinder-csi ${pkg.version.replace(/\./g, '\\.')}`));
    assert.ok(!existsSync(join(dir, 'node_modules')));
  });

  test('node mode: Probe ready, NodeGetInfo over gRPC', async () => {
    // The node plugin does not call Cinder before a NodeStage: any well-formed endpoint will do.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      OS_AUTH_TYPE: 'noauth',
      OS_USER_ID: 'bundle-test',
      OS_PROJECT_ID: '0123456789abcdef0123456789abcdef',
      OS_ENDPOINT: 'http://127.0.0.1:9/v3',
    };
    await withDriver('node', env, async (c) => {
      const info = await c.call<{ node_id: string }>('Node', 'NodeGetInfo', {});
      assert.equal(info.node_id, 'bundle-test');
    });
  });

  test('all mode: ready only after a Cinder round trip; ListVolumes answers from the lab', async (t) => {
    const skip = await labAvailable();
    if (skip) return t.skip(skip);
    const na = labNoauth();
    const env = {
      ...process.env,
      OS_AUTH_TYPE: 'noauth',
      OS_USER_ID: na.userId,
      OS_PROJECT_ID: na.projectId,
      OS_ENDPOINT: na.endpoint,
    };
    await withDriver('all', env, async (c) => {
      const r = await c.call<{ entries: unknown[] }>('Controller', 'ListVolumes', { max_entries: 1 }, 30_000);
      assert.ok(Array.isArray(r.entries));
    });
  });
});
