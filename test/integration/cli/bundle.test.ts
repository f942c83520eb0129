/**
 * The image's program: scripts/bundle.sh's esbuild bundle run through bin/cinder-csi, laid out as
 * in the image (package.json, bin/, dist/bundle/) in a temporary directory WITHOUT node_modules,
 * so every dependency must be inside the bundle. Node mode answers Probe/NodeGetInfo; `all` mode
 * reaches the lab's noauth Cinder through undici (WebAssembly HTTP parser) inside the bundle.
 * Needs esbuild from the devDependencies (`npm ci`).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { killChildren } from '../../support/children.ts';
import type { csiClient } from '../../support/csi-client.ts';
import { labAvailable, labNoauthEnv } from '../../support/lab.ts';
import { runProgram } from '../../support/program-run.ts';
import {
  applyManifests,
  CONTROLLER_SA,
  eventually,
  ignore404,
  kubeLab,
  NODE_SA,
  RBAC_YAML,
  runPrefix,
} from '../kube/kube-lab.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'bundle-test-'));
const program = join(dir, 'bin', 'cinder-csi');
const children: ChildProcess[] = [];

/** noauth settings for modes that never reach Cinder before a volume call (an unreachable endpoint). */
function offlineNoauthEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    OS_AUTH_TYPE: 'noauth',
    OS_USER_ID: 'bundle-test',
    OS_PROJECT_ID: '0123456789abcdef0123456789abcdef',
    OS_ENDPOINT: 'http://127.0.0.1:9/v3',
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
});

after(async () => {
  await killChildren(children);
  rmSync(dir, { recursive: true, force: true });
});

/** The program in `mode` until ready, then `fn` (program-run.ts); returns its stderr. */
async function withDriver(
  mode: string,
  env: NodeJS.ProcessEnv,
  fn: (c: ReturnType<typeof csiClient>) => Promise<void>,
  extraArgs: string[] = [],
  nodeId = 'bundle-test',
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<string> {
  for (const k of Object.keys(env)) if (k.startsWith('OS_CLOUD')) delete env[k];
  Object.assign(env, extraEnv);
  const PATH = `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}`;
  const run = { program, dir, mode, nodeId, env: { ...env, PATH }, extraArgs, children };
  return (await runProgram(run, (c) => fn(c))).stderr;
}

/** Moves the bundle's @kubernetes/client-node chunk out of reach (`away`) and back. */
function fullClientChunks(where: 'away' | 'back'): void {
  const bundle = join(dir, 'dist/bundle');
  for (const f of readdirSync(bundle)) {
    const file = join(bundle, f);
    if (where === 'back' && f.endsWith('.away')) renameSync(file, file.slice(0, -5));
    if (where === 'away' && f.endsWith('.js') && readFileSync(file, 'utf8').includes('/api/v1/nodes/{name}'))
      renameSync(file, `${file}.away`);
  }
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
    const env = offlineNoauthEnv();
    await withDriver('node', env, async (c) => {
      const info = await c.call<{ node_id: string }>('Node', 'NodeGetInfo', {});
      assert.equal(info.node_id, 'bundle-test');
    });
  });

  test('node mode configured by a clouds.yaml (OS_CLOUD): the YAML parser is inside the bundle', async () => {
    const clouds = join(dir, 'clouds.yaml');
    writeFileSync(
      clouds,
      'clouds:\n  lab:\n    auth_type: noauth\n    auth:\n      endpoint: http://127.0.0.1:9/v3\n      project_id: 0123456789abcdef0123456789abcdef\n      user_id: bundle-test\n',
    );
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('OS_')) delete env[k];
    env['OS_CLIENT_CONFIG_FILE'] = clouds;
    await withDriver(
      'node',
      env,
      async (c) => {
        const info = await c.call<{ node_id: string }>('Node', 'NodeGetInfo', {});
        assert.equal(info.node_id, 'bundle-test');
      },
      [],
      'bundle-test',
      { OS_CLOUD: 'lab' },
    );
  });

  test('node mode in a cluster: the light Kubernetes client publishes the connector, without the full client', async (t) => {
    const lab = await kubeLab();
    try {
      if (lab.reason) return t.skip(lab.reason);
      await applyManifests(lab.kc!, RBAC_YAML);
      const node = runPrefix('bundle-node');
      await lab.core!.createNode({
        body: { metadata: { name: node, labels: { 'topology.kubernetes.io/zone': 'zone-b' } } },
      });
      try {
        // The full client (@kubernetes/client-node) out of the bundle: node mode must not need it.
        fullClientChunks('away');
        const env = offlineNoauthEnv();
        const kubeconfig = await lab.serviceAccountKubeconfig(NODE_SA);
        await withDriver(
          'node',
          env,
          async (c) => {
            const info = await c.call<{
              node_id: string;
              accessible_topology: { segments: Record<string, string> };
            }>('Node', 'NodeGetInfo', {});
            assert.equal(info.node_id, node);
            assert.equal(Object.values(info.accessible_topology.segments)[0], 'zone-b');
            await eventually(
              'connector annotation',
              async () => {
                const a = (await lab.core!.readNode({ name: node })).metadata?.annotations ?? {};
                return Object.keys(a).some((k) => k.endsWith('/connector'));
              },
              30_000,
            );
          },
          ['--kubeconfig', kubeconfig],
          node,
        );
      } finally {
        fullClientChunks('back');
        await ignore404(lab.core!.deleteNode({ name: node }));
      }
    } finally {
      lab.close();
    }
  });

  test('controller mode in a cluster: its own Kubernetes client lists and watches, without the full client', async (t) => {
    const skip = await labAvailable();
    if (skip) return t.skip(skip);
    const lab = await kubeLab();
    try {
      if (lab.reason) return t.skip(lab.reason);
      await applyManifests(lab.kc!, RBAC_YAML);
      // The full client (@kubernetes/client-node) out of the bundle: the controller must not need it.
      fullClientChunks('away');
      try {
        const env = { ...process.env, ...labNoauthEnv() };
        const kubeconfig = await lab.serviceAccountKubeconfig(CONTROLLER_SA);
        let sawStart = false;
        const stderr = await withDriver(
          'controller',
          env,
          async () => {
            // the node cache and the reconciler's VolumeAttachment cache list and watch; give them time
            await new Promise((r) => setTimeout(r, 3000));
            sawStart = true;
          },
          ['--kubeconfig', kubeconfig, '--log-level', 'warn', '--cluster-id', runPrefix('bundle-ctl')],
        );
        assert.ok(sawStart);
        // a failed list/watch or reconciler pass logs a warning (the log level here)
        assert.doesNotMatch(stderr, /list\/watch failed|reconciler|Kubernetes/i, stderr.slice(0, 500));
      } finally {
        fullClientChunks('back');
      }
    } finally {
      lab.close();
    }
  });

  test('all mode: ready only after a Cinder round trip; ListVolumes answers from the lab', async (t) => {
    const skip = await labAvailable();
    if (skip) return t.skip(skip);
    const env = { ...process.env, ...labNoauthEnv() };
    await withDriver('all', env, async (c) => {
      const r = await c.call<{ entries: unknown[] }>('Controller', 'ListVolumes', { max_entries: 1 }, 30_000);
      assert.ok(Array.isArray(r.entries));
    });
  });
});
