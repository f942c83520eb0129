/**
 * Volume usage and health: filesystem bytes/inodes (statfs), block device size, and whether a
 * mounted filesystem went read-only behind our back (ext4 `errors=remount-ro`, xfs shutdown).
 */
import { statfs } from 'node:fs/promises';
import type { Executor } from './exec.ts';
import type { MountEntry } from './mount.ts';

export interface FsUsage {
  totalBytes: bigint;
  availableBytes: bigint;
  usedBytes: bigint;
  totalInodes: bigint;
  freeInodes: bigint;
  usedInodes: bigint;
}

/** statfs of a mounted path. `available` is what an unprivileged writer can use (bavail). */
export async function filesystemUsage(p: string): Promise<FsUsage> {
  const s = await statfs(p, { bigint: true });
  return {
    totalBytes: s.blocks * s.bsize,
    availableBytes: s.bavail * s.bsize,
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    totalInodes: s.files,
    freeInodes: s.ffree,
    usedInodes: s.files - s.ffree,
  };
}

/** Size of a block device in bytes (`blockdev --getsize64`). */
export async function blockDeviceSize(
  executor: Executor,
  device: string,
  signal?: AbortSignal,
): Promise<bigint> {
  const r = await executor.run('blockdev', ['--getsize64', device], { timeoutMs: 30_000, signal });
  const text = r.stdout.trim();
  if (!/^\d+$/.test(text)) throw new Error(`blockdev --getsize64 ${device} printed no size`);
  return BigInt(text);
}

/**
 * Why a mounted filesystem is read-only when it should not be, or undefined when it is fine.
 * The superblock's `ro` means the filesystem itself went read-only (errors, shutdown) unless it
 * was mounted read-only on purpose (`expect.superReadOnly`); a per-mount `ro` where
 * `expect.mountReadOnly` is false means someone remounted it.
 */
export function readOnlyProblem(
  entry: MountEntry,
  expect: { superReadOnly: boolean; mountReadOnly: boolean },
): string | undefined {
  if (!expect.superReadOnly && entry.superOptions.includes('ro')) {
    return `the ${entry.fsType} filesystem on ${entry.source} went read-only (filesystem errors or I/O failure); check the node's kernel log`;
  }
  if (!expect.mountReadOnly && entry.mountOptions.includes('ro'))
    return `${entry.mountPoint} was remounted read-only`;
  return undefined;
}
