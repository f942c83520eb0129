/**
 * blockdev double: the real blockdev, except that asking for the size of a device the rbd double
 * mapped first brings that device up to the image's current size (see rbd-state.ts
 * `refreshSize`). krbd does that by itself when an image is resized (header watch/notify); a loop
 * device over rbd-fuse needs a `losetup -c`, and a size query is where the driver looks for the
 * new size (NodeExpandVolume, NodeGetVolumeStats). Without a doubles state dir it is the real tool.
 */
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { main, readJson, record, SYSTEM_PATH } from './common.ts';
import { type Mapping, mapFile, refreshSize } from './rbd-state.ts';

const SIZE_QUERIES = new Set(['--getsize64', '--getsize', '--getsz', '--getss']);

function canonical(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

main(() => {
  const argv = process.argv.slice(2);
  if (process.env['CSI_DOUBLES_STATE'] && argv.some((a) => SIZE_QUERIES.has(a))) {
    const devices = new Set(argv.filter((a) => a.startsWith('/')).map(canonical));
    for (const m of readJson<Mapping[]>(mapFile(), [])) {
      if (devices.has(canonical(m.device)) && refreshSize(m)) record('blockdev', ['refresh', m.device]);
    }
  }
  const r = spawnSync('blockdev', argv, { stdio: 'inherit', env: { ...process.env, PATH: SYSTEM_PATH } });
  process.exitCode = r.status ?? 1;
});
