/**
 * Mount table queries (parsed from /proc/<pid>/mountinfo) and mount/umount/bind mounts through the
 * host executor. Mount points are compared by their real path, the way the kernel lists them.
 */
import { readFileSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { sleep } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import { CommandError, type Executor } from './exec.ts';

/** One line of /proc/<pid>/mountinfo (see proc(5)). */
export interface MountEntry {
  id: number;
  parentId: number;
  /** `major:minor` of the filesystem's device (for a bind of a device node: devtmpfs's). */
  majorMinor: string;
  /** Path inside the filesystem that is mounted here ('/' for the whole filesystem). */
  root: string;
  mountPoint: string;
  /** Per-mount options (ro/rw, nosuid, ...). */
  mountOptions: string[];
  fsType: string;
  source: string;
  /** Per-superblock options (ro here means the filesystem itself is read-only, e.g. after errors). */
  superOptions: string[];
}

/** Undoes mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Parses the text of /proc/<pid>/mountinfo; malformed lines are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || f.length < sep + 4) continue;
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      majorMinor: f[2] as string,
      root: unescapeMountField(f[3] as string),
      mountPoint: unescapeMountField(f[4] as string),
      mountOptions: (f[5] as string).split(','),
      fsType: f[sep + 1] as string,
      source: unescapeMountField(f[sep + 2] as string),
      superOptions: (f[sep + 3] as string).split(','),
    });
  }
  return out;
}

/** The topmost entry mounted at `canonical` (a real path), if any. */
function topmost(table: readonly MountEntry[], canonical: string): MountEntry | undefined {
  for (let i = table.length - 1; i >= 0; i--) {
    const e = table[i] as MountEntry;
    if (e.mountPoint === canonical) return e;
  }
  return undefined;
}

/** Real path of `p`, or its normalized absolute form when it does not exist (or is unreachable). */
export async function canonicalPath(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * `major:minor` of a block device node (following symlinks), as mountinfo prints it, or undefined
 * when `p` does not exist or is not a block device.
 */
export async function deviceNumber(p: string): Promise<string | undefined> {
  try {
    const s = await stat(p, { bigint: true });
    if (!s.isBlockDevice()) return undefined;
    const r = s.rdev;
    // glibc's gnu_dev_major/gnu_dev_minor encoding.
    const major = ((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn);
    const minor = (r & 0xffn) | ((r >> 12n) & ~0xffn);
    return `${major}:${minor}`;
  } catch {
    return undefined;
  }
}

export interface MounterOptions {
  executor: Executor;
  logger?: Logger;
  /** The mount table to read (default /proc/self/mountinfo). */
  mountInfoPath?: string;
  /** Timeout of mount/umount commands (default 60 s: a mount may replay a journal). */
  timeoutMs?: number;
}

export interface MountRequest {
  /** Filesystem type (`-t`); omitted for binds. */
  fsType?: string;
  /** Options joined into one `-o` argument. */
  options?: string[];
  signal?: AbortSignal;
}

export interface UnmountOptions {
  signal?: AbortSignal;
  /** The mount table the caller read for this call (default: read it now). */
  table?: readonly MountEntry[];
  /** How long to keep retrying while the mount is busy (default 10 s). */
  busyTimeoutMs?: number;
}

/** The mount is still busy after the bounded wait: something on the node holds files open. */
export class MountBusyError extends Error {
  override name = 'MountBusyError';
  readonly mountPoint: string;
  constructor(mountPoint: string, waitedMs: number) {
    super(`${mountPoint} is still busy after ${waitedMs} ms: a process on the node keeps files open on it`);
    this.mountPoint = mountPoint;
  }
}

const isBusy = (e: unknown) => e instanceof CommandError && /busy/i.test(e.stderr);
const isNotMounted = (e: unknown) =>
  e instanceof CommandError &&
  /not mounted|no mount point specified|no such file or directory/i.test(e.stderr);

export class Mounter {
  readonly #exec: Executor;
  readonly #log: Logger | undefined;
  readonly #mountInfoPath: string;
  readonly #timeoutMs: number;

  constructor(opts: MounterOptions) {
    this.#exec = opts.executor;
    this.#log = opts.logger;
    this.#mountInfoPath = opts.mountInfoPath ?? '/proc/self/mountinfo';
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /**
   * The current mount table: one read of mountinfo. An RPC reads it once and passes it to `find`,
   * `isMountPoint` and `unmount` (each reads it again when given none).
   */
  async list(): Promise<MountEntry[]> {
    // Read synchronously: mountinfo is generated by the kernel from memory (no disk I/O to wait
    // for), and the asynchronous read costs five trips through libuv's thread pool (open, fstat,
    // read, read to EOF, close), each delayed on a loaded node.
    return parseMountInfo(readFileSync(this.#mountInfoPath, 'utf8'));
  }

  /** The topmost mount at `p` (compared by real path), if `p` is a mount point. */
  async find(p: string, table?: readonly MountEntry[]): Promise<MountEntry | undefined> {
    const target = await canonicalPath(p);
    return topmost(table ?? (await this.list()), target);
  }

  async isMountPoint(p: string, table?: readonly MountEntry[]): Promise<boolean> {
    return (await this.find(p, table)) !== undefined;
  }

  /** `mount [-t type] [-o opts] source target`. */
  async mount(source: string, target: string, req: MountRequest = {}): Promise<void> {
    const args: string[] = [];
    if (req.fsType) args.push('-t', req.fsType);
    const opts = (req.options ?? []).filter((o) => o !== '');
    if (opts.length > 0) args.push('-o', opts.join(','));
    args.push(source, target);
    await this.#exec.run('mount', args, { timeoutMs: this.#timeoutMs, signal: req.signal });
  }

  /**
   * Bind mounts `source` (a directory or a device node) onto `target`; read-only needs a second
   * remount because the kernel ignores `ro` on the bind itself. A failed remount undoes the bind.
   */
  async bindMount(
    source: string,
    target: string,
    opts: { readOnly?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.#exec.run('mount', ['--bind', source, target], {
      timeoutMs: this.#timeoutMs,
      signal: opts.signal,
    });
    if (!opts.readOnly) return;
    try {
      await this.#exec.run('mount', ['-o', 'remount,bind,ro', target], {
        timeoutMs: this.#timeoutMs,
        signal: opts.signal,
      });
    } catch (e) {
      await this.unmount(target).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Unmounts `target` until no mount is left there (stacked mounts included): one `umount` per
   * mount the table lists at `target` (read once, or `opts.table`), without reading it again.
   * Not mounted (or missing) is success. While busy, retries with backoff up to `busyTimeoutMs`,
   * then throws MountBusyError.
   */
  async unmount(target: string, opts: UnmountOptions = {}): Promise<void> {
    const busyTimeoutMs = opts.busyTimeoutMs ?? 10_000;
    const canonical = await canonicalPath(target);
    let left = (opts.table ?? (await this.list())).filter((e) => e.mountPoint === canonical).length;
    const started = Date.now();
    let delay = 100;
    for (let round = 0; left > 0; round++) {
      if (round >= 64) throw new Error(`${target} is still a mount point after repeated unmounts`);
      try {
        await this.#exec.run('umount', [target], { timeoutMs: this.#timeoutMs, signal: opts.signal });
        left--;
      } catch (e) {
        if (isNotMounted(e)) return;
        if (!isBusy(e)) throw e;
        const waited = Date.now() - started;
        if (waited >= busyTimeoutMs) throw new MountBusyError(target, waited);
        this.#log?.info({ target, waitedMs: waited }, 'mount busy, retrying unmount');
        await sleep(Math.min(delay, busyTimeoutMs - waited), opts.signal);
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  /**
   * Marks a block device read-only in the kernel (`blockdev --setro`): every write to it fails
   * from then on, whatever opens it (a filesystem's journal replay included), until it is
   * disconnected or set read-write again.
   */
  async setReadOnly(device: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#exec.run('blockdev', ['--setro', device], { timeoutMs: 30_000, signal });
    } catch (e) {
      // A device that is read-only already (an RBD image mapped --read-only) is what we want.
      if (await this.isReadOnly(device, signal).catch(() => false)) return;
      throw e;
    }
  }

  /**
   * Clears the kernel's read-only mark again (`blockdev --setrw`). The mark belongs to the block
   * device, not to the mount, and some device nodes outlive a disconnect (loop devices keep it
   * for their next user), so a read-only staging clears it before it disconnects.
   */
  async setReadWrite(device: string, signal?: AbortSignal): Promise<void> {
    await this.#exec.run('blockdev', ['--setrw', device], { timeoutMs: 30_000, signal });
  }

  /** Whether the kernel treats a block device as read-only (`blockdev --getro`). */
  async isReadOnly(device: string, signal?: AbortSignal): Promise<boolean> {
    const r = await this.#exec.run('blockdev', ['--getro', device], { timeoutMs: 30_000, signal });
    return r.stdout.trim() === '1';
  }

  /** Flushes dirty pages of every filesystem (`sync`); with `device`, also its buffers. */
  async sync(device?: string, signal?: AbortSignal): Promise<void> {
    if (device) {
      await this.#exec.run('blockdev', ['--flushbufs', device], { timeoutMs: 120_000, signal });
      return;
    }
    await this.#exec.run('sync', [], { timeoutMs: 120_000, signal });
  }
}
