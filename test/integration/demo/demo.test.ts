import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { labAvailable } from '../../support/lab.ts';

const repo = new URL('../../../', import.meta.url).pathname;

// The README's main command, run as CI runs it: the driver in `all` mode against the lab Cinder,
// walking one volume through create → publish → stage → write → snapshot → restore → read →
// expand online → teardown. Exit code 0 only when every step and check passed.
test('scripts/demo.sh: the end-to-end walk-through passes', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (loop devices, mounts)');
  const why = await labAvailable();
  if (why) return t.skip(`lab not available: ${why}`);
  const r = spawnSync('bash', ['scripts/demo.sh'], { cwd: repo, encoding: 'utf8', timeout: 600_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `demo failed:\n${out.slice(-4000)}`);
  assert.match(r.stdout, /walk-through passed: \d+ steps and checks/);
  assert.match(r.stdout, /check: restored data identical byte for byte/);
  assert.match(r.stdout, /check: filesystem grew online/);
  assert.doesNotMatch(r.stdout, /✖/);
});
