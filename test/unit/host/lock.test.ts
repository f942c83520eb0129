import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { HostLock, LockTimeoutError } from '../../../src/host/lock.ts';

describe('HostLock', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lock-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('serialises critical sections in FIFO order and removes the lock file', async () => {
    const lock = new HostLock({ dir });
    const events: string[] = [];
    let inside = 0;
    const job = (n: number) =>
      lock.withLock(async () => {
        inside++;
        assert.equal(inside, 1, 'never two holders at once');
        events.push(`start${n}`);
        assert.ok(existsSync(path.join(dir, 'connect.lock')));
        await new Promise((r) => setTimeout(r, 10));
        events.push(`end${n}`);
        inside--;
        return n;
      });
    assert.deepEqual(await Promise.all([job(1), job(2), job(3)]), [1, 2, 3]);
    assert.deepEqual(events, ['start1', 'end1', 'start2', 'end2', 'start3', 'end3']);
    assert.equal(existsSync(path.join(dir, 'connect.lock')), false);
  });

  it('releases on error and lets different names run concurrently', async () => {
    const lock = new HostLock({ dir });
    await assert.rejects(
      lock.withLock(async () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    let other = false;
    await lock.withLock(async () => {
      await lock.withLock(
        async () => {
          other = true;
        },
        { name: 'rbd' },
      );
    });
    assert.equal(other, true);
  });

  it('waits for a lock file held by another live process, and takes over a stale one', async () => {
    mkdirSync(dir, { recursive: true });
    // A live foreign holder: pid 1 always exists.
    writeFileSync(path.join(dir, 'connect.lock'), '1\n');
    const lock = new HostLock({ dir, timeoutMs: 150, pollMs: 20 });
    await assert.rejects(
      lock.withLock(async () => 1),
      LockTimeoutError,
    );
    // A dead holder: a pid that has exited.
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    writeFileSync(path.join(dir, 'connect.lock'), `${dead}\n`);
    assert.equal(await lock.withLock(async () => 42), 42);
  });
});
