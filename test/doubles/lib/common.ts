/**
 * Shared plumbing of the host tool doubles (iscsiadm, rbd, tee, multipath). This machine has no
 * kernel iSCSI initiator, no krbd and no device-mapper, so the doubles keep the tools' state
 * model in a state dir and expose the lab's real volume data as loop devices, with a sysfs-like
 * tree under the test host root.
 *
 * Environment:
 *   CSI_DOUBLES_STATE  state dir (required): sessions, node records, mapped images, calls.log, loops
 *   CSI_HOST_ROOT      test host root where the /sys and /dev trees are created (required)
 *
 * Every invocation appends one JSON line {tool, argv} (secrets masked) to <state>/calls.log.
 * Loop devices created are listed in <state>/loops.json; teardown detaches only those.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

/** Thrown to end a double with an exit code and a message (so locks are released on the way out). */
export class DoubleExit extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export function die(code: number, msg: string): never {
  throw new DoubleExit(code, msg);
}

/** Runs a double's main function, mapping DoubleExit to stderr + exit code. */
export function main(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof DoubleExit) {
      if (e.message) process.stderr.write(`${e.message}\n`);
      process.exitCode = e.code;
      return;
    }
    process.stderr.write(`double crashed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 99;
  }
}

export function env(name: string): string {
  const v = process.env[name];
  if (!v) die(1, `${name} is not set (test double configuration)`);
  return v;
}

export const stateDir = (): string => env('CSI_DOUBLES_STATE');
export const hostRoot = (): string => env('CSI_HOST_ROOT');

/** Real system PATH without the doubles folder, for calling the real tools. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function record(tool: string, argv: string[]): void {
  const dir = stateDir();
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, 'calls.log'), `${JSON.stringify({ tool, argv })}\n`);
}

export function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

export function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Crude cross-process lock (mkdir is atomic) around state updates. */
export function withStateLock<T>(fn: () => T): T {
  const lock = path.join(stateDir(), 'lock');
  mkdirSync(stateDir(), { recursive: true });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) die(1, 'double: state lock timeout');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(lock);
  }
}

/** Runs a real tool; returns status and output. */
export function real(cmd: string, args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, PATH: SYSTEM_PATH, ...extraEnv },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// ---- loop devices -------------------------------------------------------------------------

const loopsFile = () => path.join(stateDir(), 'loops.json');

export function attachLoop(file: string, readOnly = false): string {
  const dev = execFileSync('losetup', [...(readOnly ? ['--read-only'] : []), '--find', '--show', file], {
    encoding: 'utf8',
    env: { ...process.env, PATH: SYSTEM_PATH },
    timeout: 30_000,
  }).trim();
  const loops = readJson<string[]>(loopsFile(), []);
  loops.push(dev);
  writeJson(loopsFile(), loops);
  return dev;
}

/** Detaches a loop device this state dir created (others are never touched). */
export function detachLoop(dev: string): void {
  const loops = readJson<string[]>(loopsFile(), []);
  if (!loops.includes(dev)) return;
  real('blockdev', ['--flushbufs', dev]);
  // A `blockdev --setro` mark outlives the detach and would make the loop device read-only for
  // its next user; a real iSCSI/RBD device vanishes with its mark.
  real('blockdev', ['--setrw', dev]);
  // Kept in the list when detaching fails, so the test teardown retries.
  if (real('losetup', ['-d', dev]).status !== 0) return;
  writeJson(
    loopsFile(),
    loops.filter((l) => l !== dev),
  );
}

export function ownedLoops(state: string): string[] {
  return readJson<string[]>(path.join(state, 'loops.json'), []);
}

// ---- host root tree -----------------------------------------------------------------------

export function under(p: string): string {
  return path.join(hostRoot(), p);
}

export function link(at: string, target: string): void {
  mkdirSync(path.dirname(at), { recursive: true });
  rmSync(at, { force: true });
  symlinkSync(target, at);
}

export function touch(p: string, content = ''): void {
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, content);
}

/** /sys/block/<name> and /dev/<name> for a block device the doubles expose. */
export function addBlock(name: string, realDev: string, withScsiDevice: boolean): void {
  const sys = under(`/sys/block/${name}`);
  mkdirSync(path.join(sys, 'holders'), { recursive: true });
  if (withScsiDevice) {
    touch(path.join(sys, 'device', 'delete'));
    touch(path.join(sys, 'device', 'rescan'));
  }
  link(under(`/dev/${name}`), realDev);
}

export function removeBlock(name: string): void {
  rmSync(under(`/sys/block/${name}`), { recursive: true, force: true });
  rmSync(under(`/dev/${name}`), { force: true });
}

export function exists(p: string): boolean {
  return existsSync(p);
}
