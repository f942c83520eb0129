/**
 * What the node service tests on loop devices share beyond helpers.ts: a World per test with
 * clean-up, a CSI error matcher, and blkid/findmnt readings of the real host.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CsiError } from '../../../src/csi/errors.ts';
import { sh, World } from './helpers.ts';

/** Online ext4 resize (EXT4_IOC_RESIZE_FS) needs CAP_SYS_RESOURCE, which some sandboxes drop. */
function capSysResourceMissing(): string | undefined {
  const line = readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\s*([0-9a-f]+)/m)?.[1];
  if (line && (BigInt(`0x${line}`) & (1n << 24n)) === 0n) {
    return 'online ext4 resize needs CAP_SYS_RESOURCE, which this process lacks (the kernel answers EPERM)';
  }
  return undefined;
}
export const noOnlineExt4Resize = capSysResourceMissing();
export const noBtrfs =
  spawnSync('which', ['mkfs.btrfs']).status === 0 ? undefined : 'mkfs.btrfs is not installed';

/** Runs `fn` in a fresh World and cleans it up (mounts, loop devices, files) whatever happens. */
export async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const w = await World.create();
  try {
    await fn(w);
  } finally {
    await w.cleanup();
  }
}

/** An assert.rejects matcher: a CsiError with `code` (and a message matching `pattern`). */
export function rejectsWith(code: number, pattern?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CsiError, `expected CsiError, got ${String(e)}`);
    assert.equal(e.code, code, `code ${e.code} (${e.message})`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

/** The filesystem type blkid finds, '' for a blank device (blkid exits 2). */
export function blkidType(dev: string): string {
  try {
    return sh('blkid', ['-p', '-o', 'value', '-s', 'TYPE', dev]);
  } catch {
    return '';
  }
}

/** The mount at `p` as findmnt lists it, or undefined. */
export async function findmnt(
  p: string,
): Promise<{ source: string; options: string; fstype: string } | undefined> {
  try {
    const [source, options, fstype] = sh('findmnt', [
      '-n',
      '-o',
      'SOURCE,OPTIONS,FSTYPE',
      '--mountpoint',
      p,
    ]).split(/\s+/);
    return { source: source ?? '', options: options ?? '', fstype: fstype ?? '' };
  } catch {
    return undefined;
  }
}
