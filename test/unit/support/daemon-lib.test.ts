/**
 * scripts/daemon-lib.sh, the daemon helpers of the lab scripts (test/k8s, test/lab), on a real dummy daemon
 * (`sleep`) in a temporary RUN/LOG: start_bg runs it in its own session with a pid file, wait_for
 * waits for it and gives up when it died, stop_bg stops it and removes the pid file. A daemon must
 * not inherit fd 8, the set-up's lock (kube-node.sh's flock): if it did, the lock would stay held
 * for as long as the daemon lives and every later `kube-node.sh up` would wait for it in vain.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const LIB = resolve(import.meta.dirname, '../../../scripts/daemon-lib.sh');

/** Runs a bash script that has sourced the lib with RUN/LOG under DIR; never throws for an exit. */
function bash(dir: string, script: string) {
  const r = spawnSync(
    'bash',
    ['-c', `set -Eeuo pipefail; RUN=$1/run LOG=$1/log; . "$2"\n${script}`, '_', dir, LIB],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  if (r.error) throw r.error;
  return r;
}

function killDummy(dir: string): void {
  try {
    const pid = Number(readFileSync(join(dir, 'run', 'dummy.pid'), 'utf8').split(' ')[0]);
    if (pid > 1) process.kill(pid, 'SIGKILL');
  } catch {
    // no pid file or the process is gone: nothing to clean up
  }
}

test('start_bg: a daemon in its own session, without the set-up lock (fd 8); wait_for, stop_bg', () => {
  const dir = mkdtempSync(join(tmpdir(), 'daemon-lib-'));
  try {
    const r = bash(
      dir,
      `exec 8>"$1/lock"; flock 8
      start_bg dummy sleep 300
      pid=$(pidof_svc dummy)
      wait_for dummy "the dummy's pid file" 10 test -s "$RUN/dummy.pid"
      echo "script fds: $(ls /proc/$$/fd | sort -n | tr '\\n' ' ')"
      echo "daemon fds: $(ls /proc/$pid/fd | sort -n | tr '\\n' ' ')"
      echo "session: $(ps -o sid= -p "$pid" | tr -d ' ') pid: $pid"
      exec 8>&-
      flock -n "$1/lock" true && echo "lock: free while the daemon runs"
      start_bg dummy sleep 300
      stop_bg -t 5 dummy
      kill -0 "$pid" 2>/dev/null && echo "still running" || echo "stopped"
      [[ -e $RUN/dummy.pid ]] && echo "pid file kept" || echo "pid file removed"`,
    );
    assert.equal(r.status, 0, r.stderr);
    const fds = (name: string) =>
      new RegExp(`${name} fds: (.*)`).exec(r.stdout)?.[1]?.trim().split(' ') ?? [];
    assert.ok(fds('script').includes('8'), `the set-up holds its lock on fd 8: ${r.stdout}`);
    assert.ok(fds('daemon').includes('2'), r.stdout);
    assert.ok(!fds('daemon').includes('8'), `the daemon inherited the set-up's lock (fd 8): ${r.stdout}`);
    const m = /session: (\d+) pid: (\d+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(m[1], m[2], 'the daemon leads its own session (setsid)');
    assert.match(r.stdout, /lock: free while the daemon runs/);
    assert.match(r.stderr, /dummy already running/, 'a second start_bg leaves the running daemon alone');
    assert.match(r.stdout, /stopped\npid file removed/);
    assert.match(readFileSync(join(dir, 'log', 'dummy.out'), 'utf8'), /===== .* sleep 300/);
  } finally {
    killDummy(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('wait_for gives up, with the daemon log, when the daemon died', () => {
  const dir = mkdtempSync(join(tmpdir(), 'daemon-lib-'));
  try {
    const r = bash(
      dir,
      `start_bg dummy sh -c 'echo dummy-failed; exit 3'\nwait_for dummy "a port that never opens" 30 false`,
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /dummy-failed/);
    assert.match(r.stderr, /ERROR: dummy died while waiting for a port that never opens/);
  } finally {
    killDummy(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});
