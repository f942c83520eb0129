/**
 * Test-side helpers for the host tool doubles in test/doubles/bin (iscsiadm, rbd, rbd-nbd, tee):
 * a fresh state dir and host root per test, the environment that points the doubles at them, the
 * recorded calls, and a teardown that releases exactly what the doubles created (their loop
 * devices and rbd-fuse mounts), never anything else.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DOUBLES_BIN = path.join(import.meta.dirname, 'bin');

export interface DoublesEnv {
  state: string;
  root: string;
  bin: string;
  /** Environment for the executor: the doubles' variables (PATH is prepended by the executor). */
  env: Record<string, string>;
  calls(): { tool: string; argv: string[] }[];
  teardown(): void;
}

const SYS = { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

/** Releases loop devices and rbd-fuse mounts listed in a doubles state dir. */
export function releaseDoubles(state: string): void {
  let loops: string[] = [];
  try {
    loops = JSON.parse(readFileSync(path.join(state, 'loops.json'), 'utf8')) as string[];
  } catch {
    loops = [];
  }
  for (const l of loops) {
    spawnSync('blockdev', ['--setrw', l], { env: SYS, timeout: 10_000 }); // see lib/common.ts detachLoop
    spawnSync('losetup', ['-d', l], { env: SYS, timeout: 10_000 });
  }
  let fuse: string[] = [];
  try {
    fuse = readdirSync(path.join(state, 'rbd')).filter((d) => d.startsWith('fuse-'));
  } catch {
    fuse = [];
  }
  for (const d of fuse) {
    const mnt = path.join(state, 'rbd', d);
    if (spawnSync('mountpoint', ['-q', mnt], { env: SYS }).status === 0) {
      spawnSync('fusermount', ['-u', mnt], { env: SYS, timeout: 10_000 });
      if (spawnSync('mountpoint', ['-q', mnt], { env: SYS }).status === 0) {
        spawnSync('umount', ['-l', mnt], { env: SYS, timeout: 10_000 });
      }
    }
  }
}

export function setupDoubles(prefix = 'hostlayer'): DoublesEnv {
  const base = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const state = path.join(base, 'state');
  const root = path.join(base, 'root');
  return {
    state,
    root,
    bin: DOUBLES_BIN,
    env: {
      CSI_DOUBLES_STATE: state,
      CSI_HOST_ROOT: root,
      CSI_DOUBLES_NODE: process.execPath,
    },
    calls() {
      try {
        return readFileSync(path.join(state, 'calls.log'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { tool: string; argv: string[] });
      } catch {
        return [];
      }
    },
    teardown() {
      releaseDoubles(state);
      // Never recurse into a mount still there (a live rbd-fuse mount would delete the image).
      const mounts =
        spawnSync('findmnt', ['-rn', '-o', 'TARGET'], { env: SYS, encoding: 'utf8' }).stdout ?? '';
      if (mounts.split('\n').some((m) => m.startsWith(`${base}/`))) return;
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Why root+loop tests cannot run here, or undefined when they can. */
export function loopSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (loop devices)';
  if (spawnSync('losetup', ['--version'], { env: SYS }).status !== 0) return 'losetup not available';
  if (spawnSync('losetup', ['--find'], { env: SYS }).status !== 0) return 'no free loop device';
  return undefined;
}
