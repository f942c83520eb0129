/**
 * multipathd emulation for the doubles (this machine has no device-mapper). Enabled per state dir
 * by creating <state>/multipath/enabled. After every iSCSI state change, LUN devices of different
 * sessions that share one backing file are paths of one map: the doubles create
 * /sys/block/dm-N (dm/name, slaves/), /sys/block/<path>/holders/dm-N and /dev/dm-N,
 * /dev/mapper/<name> under the host root, pointing at the first path's real loop device.
 * Maps stay (with fewer paths) until `multipath -f <name>`, as with a real multipathd.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { exists, link, readJson, stateDir, touch, under, writeJson } from './common.ts';

export interface MpMap {
  dm: string;
  name: string;
  file: string;
  /** Kernel names of the current paths. */
  paths: string[];
}

interface PathDev {
  name: string;
  loop: string;
  file: string;
}

const mapsFile = () => path.join(stateDir(), 'multipath', 'maps.json');
export const multipathEnabled = () => exists(path.join(stateDir(), 'multipath', 'enabled'));
export const loadMaps = (): MpMap[] => readJson<MpMap[]>(mapsFile(), []);

function removeHolder(p: string, dm: string): void {
  rmSync(under(`/sys/block/${p}/holders/${dm}`), { recursive: true, force: true });
  rmSync(under(`/sys/block/${dm}/slaves/${p}`), { recursive: true, force: true });
}

/** Reconciles maps with the current path devices. */
export function syncMaps(devs: PathDev[]): void {
  if (!multipathEnabled()) return;
  const maps = loadMaps();
  const byFile = new Map<string, PathDev[]>();
  for (const d of devs) byFile.set(d.file, [...(byFile.get(d.file) ?? []), d]);
  for (const [file, paths] of byFile) {
    let m = maps.find((x) => x.file === file);
    if (!m && paths.length < 2) continue;
    if (!m) {
      const used = new Set(maps.map((x) => x.dm));
      let n = 0;
      while (used.has(`dm-${n}`)) n++;
      const wwid = `36001405${createHash('sha256').update(file).digest('hex').slice(0, 24)}`;
      m = { dm: `dm-${n}`, name: wwid, file, paths: [] };
      maps.push(m);
      touch(under(`/sys/block/${m.dm}/dm/name`), `${m.name}\n`);
      const first = paths[0] as PathDev;
      link(under(`/dev/${m.dm}`), first.loop);
      link(under(`/dev/mapper/${m.name}`), first.loop);
    }
    for (const p of paths) {
      mkdirSync(under(`/sys/block/${p.name}/holders/${m.dm}`), { recursive: true });
      mkdirSync(under(`/sys/block/${m.dm}/slaves/${p.name}`), { recursive: true });
    }
    for (const gone of m.paths.filter((x) => !paths.some((p) => p.name === x))) removeHolder(gone, m.dm);
    m.paths = paths.map((p) => p.name);
  }
  for (const m of maps) {
    if (byFile.has(m.file)) continue;
    for (const gone of m.paths) removeHolder(gone, m.dm);
    m.paths = [];
  }
  writeJson(mapsFile(), maps);
}

/** `multipath -f NAME`: removes the map (its paths stay). */
export function flushMap(nameOrDm: string): boolean {
  const maps = loadMaps();
  const m = maps.find(
    (x) => x.name === nameOrDm || x.dm === nameOrDm || `/dev/mapper/${x.name}` === nameOrDm,
  );
  if (!m) return false;
  for (const p of m.paths) removeHolder(p, m.dm);
  rmSync(under(`/sys/block/${m.dm}`), { recursive: true, force: true });
  rmSync(under(`/dev/${m.dm}`), { force: true });
  rmSync(under(`/dev/mapper/${m.name}`), { force: true });
  writeJson(
    mapsFile(),
    maps.filter((x) => x !== m),
  );
  return true;
}
