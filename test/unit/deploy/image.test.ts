/**
 * The container image: test/image/build.sh builds the Dockerfile with buildah on a cached local
 * base (debootstrap bookworm + Node.js 24) and runs the driver and the node tools inside it.
 * Takes minutes (first run ~5, then ~2-3 with the base cached), so it runs in CI (CI=true) or when
 * CINDER_CSI_IMAGE_TEST=1, and needs root (debootstrap, chroot builds). `--cached`: the image of
 * this source tree, built once and shared with the tests that run it on the lab node
 * (test/integration/kube/project-image.ts); when one of them built it already, the checks run on it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { ROOT, type RunResult, run } from './helpers.ts';

/** Like run(), but echoes the script's lines to stderr as they come (the build takes minutes and
 * prints a progress line at least every 15 s; the test runner shows them live). */
async function runLive(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const out = { stdout: '', stderr: '' };
  for (const name of ['stdout', 'stderr'] as const) {
    createInterface({ input: child[name] }).on('line', (l) => {
      out[name] += `${l}\n`;
      process.stderr.write(`# ${l}\n`);
    });
  }
  const status = await new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  clearTimeout(timer);
  return { status, ...out };
}

function skipReason(): string | undefined {
  const wanted = process.env['CINDER_CSI_IMAGE_TEST'] ?? (process.env['CI'] === 'true' ? '1' : '0');
  if (wanted !== '1') return 'image build test runs in CI or with CINDER_CSI_IMAGE_TEST=1 (takes minutes)';
  if (process.getuid?.() !== 0) return 'image build test needs root (debootstrap, buildah chroot isolation)';
  return undefined;
}

test('the Dockerfile builds here and the image runs the driver and the node tools', {
  skip: skipReason(),
  // base + image on a busy machine: beyond the runner's per-test default of 15 min
  timeout: 45 * 60_000,
}, async () => {
  // CINDER_CSI_IMAGE_CONTEXT: build an exported tree (e.g. `git archive`) instead of the working tree.
  const context = process.env['CINDER_CSI_IMAGE_CONTEXT'];
  const args = [
    join(ROOT, 'test', 'image', 'build.sh'),
    '--cached',
    ...(context ? ['--context', context] : []),
  ];
  const r = await runLive('bash', args, 40 * 60_000);
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out.slice(-4000));
  assert.match(r.stdout, /^image: all checks passed$/m);
  assert.match(r.stdout, /^image: tag localhost\/cinder-csi:src-[0-9a-f]{16}$/m);
  for (const check of [
    'cinder-csi --version',
    'iscsiadm --version',
    'rbd --version',
    'mkfs.xfs -V',
    'default user is non-root',
  ]) {
    assert.match(r.stderr, new RegExp(`ok {3}${check.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), check);
  }
  // The base is cached: a second base.sh call answers from the cache with the same reference, and
  // exactly one archive (the current key) is kept for later runs on this machine.
  const again = run('bash', [join(ROOT, 'test', 'image', 'base.sh')], 5 * 60_000);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout.trim(), /^localhost\/cinder-csi-base:[0-9a-f]{16}$/);
  assert.match(again.stderr, /present in storage|restoring base image/);
  const cacheDir = process.env['CINDER_CSI_IMAGE_CACHE'] ?? '/var/cache/cinder-csi/image';
  const key = again.stdout.trim().split(':')[1];
  assert.deepEqual(
    readdirSync(cacheDir).filter((f) => f.startsWith('base-')),
    [`base-${key}.oci.tar`],
  );
});
