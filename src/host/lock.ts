/**
 * Host-wide lock around iscsiadm and SCSI device add/remove (os-brick's `connect_volume` /
 * `disconnect_volume` external lock). Two layers:
 *  - an in-process FIFO mutex, so concurrent RPCs of this plugin serialise without polling;
 *  - a lock file created with O_EXCL under `<run>/cinder-csi/locks/`, holding our pid, so a
 *    second process on the host (another plugin instance, an operator script using the same
 *    convention) waits too. A lock file whose pid is dead is stale and taken over.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { sleep } from '../util/abort.ts';

export interface HostLockOptions {
  /** Directory for lock files, e.g. paths.run('cinder-csi/locks'). */
  dir: string;
  /** Give up after this long waiting for another process (default 120 s). */
  timeoutMs?: number;
  /** Poll interval while another process holds the file (default 50 ms). */
  pollMs?: number;
}

export class LockTimeoutError extends Error {
  override name = 'LockTimeoutError';
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class HostLock {
  readonly #dir: string;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  /** Tail of the in-process queue per lock name. */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(opts: HostLockOptions) {
    this.#dir = opts.dir;
    this.#timeoutMs = opts.timeoutMs ?? 120_000;
    this.#pollMs = opts.pollMs ?? 50;
  }

  /** Runs `fn` holding the named lock (default name 'connect', shared by iSCSI and SCSI operations). */
  async withLock<T>(fn: () => Promise<T>, opts: { name?: string; signal?: AbortSignal } = {}): Promise<T> {
    const name = opts.name ?? 'connect';
    const prev = this.#queues.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.#queues.set(name, tail);
    try {
      await prev;
      const file = await this.#acquireFile(name, opts.signal);
      try {
        return await fn();
      } finally {
        await rm(file, { force: true });
      }
    } finally {
      release();
      if (this.#queues.get(name) === tail) this.#queues.delete(name);
    }
  }

  async #acquireFile(name: string, signal?: AbortSignal): Promise<string> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.#dir, `${name}.lock`);
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      try {
        const fh = await open(file, 'wx', 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        return file;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = Number.parseInt((await readFile(file, 'utf8').catch(() => '')).trim(), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !pidAlive(owner)) {
        await rm(file, { force: true });
        continue;
      }
      if (owner === process.pid) {
        // Left behind by this process (crash inside fn is handled by finally; this is a leftover
        // from a previous incarnation that had the same pid, e.g. in a container): take it.
        await rm(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new LockTimeoutError(`timed out waiting for host lock ${file}`);
      await sleep(this.#pollMs, signal);
    }
  }
}
