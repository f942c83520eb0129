import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { cinder, labLogin } from '../../doubles/lab-cinder.ts';
import { labAvailable, uniqueName } from '../../support/lab.ts';

const repo = new URL('../../../', import.meta.url).pathname;

async function skipReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (loop devices, mounts)';
  const why = await labAvailable();
  return why ? `lab not available: ${why}` : undefined;
}
const skip = await skipReason();

/**
 * scripts/demo.sh against the lab scripts/test.sh set up (so no set-up of its own). Its step lines
 * are echoed to stderr as they come (the test runner shows them live: a demo takes minutes).
 */
async function demo(args: string[], env: Record<string, string> = {}) {
  const child = spawn('bash', ['scripts/demo.sh', '--no-setup', ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), 900_000);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (l) => {
    stdout += `${l}\n`;
    if (!l.startsWith('{')) process.stderr.write(`# demo ${args.join(' ')}: ${l}\n`);
  });
  const status = await new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  clearTimeout(timer);
  // for failure messages: the walk-through's lines, not the driver log's JSON the script appends
  const out = `${stdout}\n${stderr}`
    .split('\n')
    .filter((l) => !l.startsWith('{'))
    .join('\n');
  return { status, stdout, out };
}

// The README's main command, run as CI runs it, on both attach backends: the driver in `all` mode
// against the lab Cinder, walking one volume through create → publish → stage → write → snapshot →
// restore → read → expand online (ControllerExpandVolume + NodeExpandVolume growing a mounted xfs)
// → teardown. Exit code 0 only when every step and check passed.
describe('scripts/demo.sh: the end-to-end walk-through', { skip }, () => {
  for (const type of ['tgt', 'rbd']) {
    test(`passes on the ${type} backend, online expansion included`, async () => {
      const r = await demo(['--type', type]);
      assert.equal(r.status, 0, `demo --type ${type} failed:\n${r.out.slice(-4000)}`);
      assert.match(r.stdout, /walk-through passed: \d+ steps and checks/);
      assert.match(r.stdout, /check: restored data identical byte for byte/);
      assert.match(r.stdout, /✔ NodeExpandVolume/);
      assert.match(r.stdout, /check: filesystem grew online/);
      assert.doesNotMatch(r.stdout, /✖/);
    });
  }

  // A failure with everything in use (a restored clone attached and mounted, its snapshot and
  // source volume behind it) must still leave nothing in Cinder: the clean-up detaches, then
  // deletes clone, snapshot and volume in that order. rbd, where a clone depends on its snapshot.
  test('a failed walk-through still removes everything it created in Cinder', async (t) => {
    const name = uniqueName('demo-fail');
    const r = await demo(['--type', 'rbd', '--name', name], { CINDER_CSI_DEMO_FAIL_AT: 'NodeExpandVolume' });
    // a failed demo keeps its driver log for the person at the terminal; this one was on purpose
    const log = /\(log: (\/var\/log\/cinder-csi-demo\/driver-[\w.-]+\.log)\)/.exec(r.stdout)?.[1];
    if (log) t.after(() => rmSync(log, { force: true }));
    assert.notEqual(r.status, 0, 'an injected failure must fail the demo');
    assert.match(r.stdout, /✖ NodeExpandVolume .*injected failure/);
    for (const undo of [
      'detach vol2',
      `DeleteVolume ${name}-restore`,
      `DeleteSnapshot ${name}-snap`,
      `DeleteVolume ${name} `,
    ]) {
      assert.match(
        r.stdout,
        new RegExp(`✔ ${undo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
        `clean-up: ${undo}`,
      );
    }
    const s = await labLogin();
    const left = async () => {
      const found: string[] = [];
      for (const n of [name, `${name}-restore`]) {
        const { volumes } = await cinder<{ volumes: { id: string }[] }>(s, 'GET', `/volumes?name=${n}`);
        found.push(...volumes.map((v) => `volume ${n} ${v.id}`));
      }
      const { snapshots } = await cinder<{ snapshots: { id: string }[] }>(
        s,
        'GET',
        `/snapshots?name=${name}-snap`,
      );
      found.push(...snapshots.map((x) => `snapshot ${name}-snap ${x.id}`));
      return found;
    };
    // DeleteVolume/DeleteSnapshot returned; Cinder may still be finishing the last delete (and on
    // a busy machine a single API call may time out: try again)
    let remaining: string[] | Error = new Error('not asked');
    for (let i = 0; i < 30; i++) {
      remaining = await left().catch((e: Error) => e);
      if (Array.isArray(remaining) && remaining.length === 0) break;
      await new Promise((res) => setTimeout(res, 2000));
    }
    if (remaining instanceof Error) throw remaining;
    assert.deepEqual(remaining, [], `left in Cinder after a failed demo:\n${r.out.slice(-3000)}`);
  });
});
