/**
 * The empty directory (mount access) or empty file (block access) NodePublishVolume creates at a
 * target path to mount onto. Each is recorded in the volume's state before it is created, and
 * only recorded ones are ever removed, and only while still empty and unmounted: a file or
 * directory the driver did not make, or one that holds anything, is left alone.
 */
import { lstat, rm, rmdir } from 'node:fs/promises';
import type { MountEntry } from '../../host/mount.ts';
import type { RpcContext } from '../rpc.ts';
import type { NodeContext } from './context.ts';
import { errnoCode, isMissingPath } from './errors.ts';
import type { VolumeState } from './state.ts';

export type PlaceholderOutcome = 'removed' | 'absent' | 'kept';

/**
 * Removes the placeholder at `target` if it is still an empty directory or an empty regular file.
 * Anything else (content written while unmounted, a device node, a symlink) is kept and logged.
 */
export async function removePlaceholder(target: string, ctx: RpcContext): Promise<PlaceholderOutcome> {
  let s: Awaited<ReturnType<typeof lstat>>;
  try {
    s = await lstat(target);
  } catch (e) {
    if (isMissingPath(e)) return 'absent';
    throw e;
  }
  try {
    if (s.isDirectory()) {
      await rmdir(target);
      return 'removed';
    }
    if (s.isFile() && s.size === 0) {
      await rm(target);
      return 'removed';
    }
  } catch (e) {
    if (isMissingPath(e)) return 'absent';
    if (errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
  }
  ctx.log.warn({ target }, 'target path holds data the driver did not put there; leaving it in place');
  return 'kept';
}

/**
 * Removes every placeholder of `st` among `paths` that is not a mount point and forgets it
 * (mutates `st`; the caller stores it). Mounted ones stay recorded. `table`: the mount table the
 * caller read for this call, if none of `paths` was mounted or unmounted since.
 */
export async function removePlaceholders(
  c: NodeContext,
  st: VolumeState,
  paths: readonly string[],
  ctx: RpcContext,
  table?: readonly MountEntry[],
): Promise<void> {
  for (const p of paths) {
    if (await c.mounter.isMountPoint(p, table)) continue;
    await removePlaceholder(p, ctx);
    st.placeholders = (st.placeholders ?? []).filter((x) => x !== p);
  }
}
