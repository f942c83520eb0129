/**
 * State of the rbd / rbd-nbd double shared with the blockdev double: the mapped images
 * (<state>/rbd/mapped.json), their rbd-fuse mount, and the size refresh that stands in for krbd's
 * header watch (the kernel updates a mapped device's size by itself when the image is resized).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { real, stateDir } from './common.ts';

export interface Mapping {
  id: number;
  pool: string;
  name: string;
  device: string;
  readOnly: boolean;
}

export const mapFile = (): string => path.join(stateDir(), 'rbd', 'mapped.json');
/** The rbd-fuse mount of mapping `id` (it shows that one image, as a file named like it). */
export const fuseDir = (id: number): string => path.join(stateDir(), 'rbd', `fuse-${id}`);

/** The image's size as Ceph has it now (`rbd info`, the lab's admin identity), or undefined. */
function imageSize(m: Mapping): number | undefined {
  const r = real('rbd', ['info', `${m.pool}/${m.name}`, '--format', 'json']);
  if (r.status !== 0) return undefined;
  try {
    const size = (JSON.parse(r.stdout) as { size?: unknown }).size;
    return typeof size === 'number' ? size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes the mapped loop device show the image's current size, like krbd after a resize: waits
 * (at most `waitMs`) until rbd-fuse reports the size `rbd info` gives (librbd refreshes on the
 * header notify, FUSE caches attributes for a moment), then `losetup -c`. Returns whether the
 * device's size was re-read.
 */
export function refreshSize(m: Mapping, waitMs = 10_000): boolean {
  const want = imageSize(m);
  if (want === undefined) return false;
  const file = path.join(fuseDir(m.id), m.name);
  const deadline = Date.now() + waitMs;
  for (;;) {
    let seen: number | undefined;
    try {
      seen = statSync(file).size;
    } catch {
      return false;
    }
    if (seen === want) break;
    if (Date.now() > deadline) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  const dev = real('blockdev', ['--getsize64', m.device]);
  if (dev.status === 0 && Number(dev.stdout.trim()) === want) return false;
  return real('losetup', ['-c', m.device]).status === 0;
}
