/**
 * rbd / rbd-nbd double for a machine without krbd or nbd. `map` checks the caller's cephx
 * credentials for real (the real `rbd info` with the same --id/-m/--keyring against the lab's
 * Ceph), then exposes the image through rbd-fuse (one `rbd-fuse -p <pool> -r <image>` mount per
 * mapping, unmounted by unmap: rbd-fuse holds the image open, a watcher like krbd's, so Cinder
 * cannot delete or move a mapped image and is not held up by an unmapped one) attached as a loop
 * device, with /dev/rbd/<pool>/<image> under the test host root.
 * Supported: map, unmap, showmapped / list-mapped (and the `device` forms); everything else is
 * passed to the real rbd. A resize of a mapped image reaches its device the way krbd's header
 * watch would: the blockdev double refreshes the size when asked for it (rbd-state.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  addBlock,
  attachLoop,
  detachLoop,
  die,
  exists,
  link,
  main,
  ownedLoops,
  readJson,
  real,
  record,
  removeBlock,
  SYSTEM_PATH,
  stateDir,
  under,
  withStateLock,
  writeJson,
} from './common.ts';
import { fuseDir, type Mapping, mapFile } from './rbd-state.ts';

const tool = process.env.CSI_DOUBLE_TOOL === 'rbd-nbd' ? 'rbd-nbd' : 'rbd';

function fuseMount(id: number, pool: string, name: string): string {
  const mnt = fuseDir(id);
  mkdirSync(mnt, { recursive: true });
  if (real('mountpoint', ['-q', mnt]).status !== 0) {
    const r = real('rbd-fuse', ['-p', pool, '-r', name, mnt]);
    if (r.status !== 0) die(1, `rbd: could not start rbd-fuse: ${r.stderr.trim()}`);
  }
  return mnt;
}

/** Best effort: a mount left behind (busy) is unmounted by the test teardown (releaseDoubles). */
function fuseUnmount(id: number): void {
  const mnt = fuseDir(id);
  if (real('mountpoint', ['-q', mnt]).status === 0 && real('fusermount', ['-u', mnt]).status !== 0) return;
  // never recursive: on a live rbd-fuse mount that would delete the image
  try {
    rmdirSync(mnt);
  } catch {
    // not empty or gone: leave it to the teardown
  }
}

function opt(argv: string[], ...names: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) if (names.includes(argv[i] as string)) return argv[i + 1];
  return undefined;
}

function positional(argv: string[]): string[] {
  const withValue = new Set([
    '--id',
    '-m',
    '--mon_host',
    '--keyring',
    '-k',
    '-p',
    '--pool',
    '--format',
    '-o',
    '--options',
    '-c',
    '--conf',
    '--name',
    '-n',
    '--user',
  ]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (withValue.has(a)) i++;
    else if (!a.startsWith('-')) out.push(a);
  }
  return out;
}

function map(argv: string[]): void {
  const spec = positional(argv)[0] ?? die(22, `${tool}: image name was not specified`);
  const [pool, name] = spec.includes('/')
    ? (spec.split('/') as [string, string])
    : [opt(argv, '-p', '--pool') ?? 'rbd', spec];
  // Real cephx check with the caller's identity, monitors and keyring.
  const auth: string[] = ['info', `${pool}/${name}`, '--format', 'json'];
  for (const k of ['--id', '-m', '--keyring']) {
    const v = opt(argv, k);
    if (v !== undefined) auth.push(k, v);
  }
  const check = real('rbd', auth);
  if (check.status !== 0) die(check.status, `${tool}: map failed: ${check.stderr.trim()}`);
  const readOnly = argv.includes('--read-only');
  withStateLock(() => {
    const maps = readJson<Mapping[]>(mapFile(), []);
    const already = maps.find((m) => m.pool === pool && m.name === name);
    if (already) process.stderr.write(`${tool}: warning: image already mapped as ${already.device}\n`);
    const id = maps.reduce((n, m) => Math.max(n, m.id + 1), 0);
    const file = path.join(fuseMount(id, pool, name), name);
    if (!exists(file)) {
      fuseUnmount(id);
      die(2, `${tool}: map failed: (2) No such file or directory`);
    }
    let device: string;
    try {
      device = attachLoop(file, readOnly);
    } catch (e) {
      fuseUnmount(id);
      throw e;
    }
    maps.push({ id, pool, name, device, readOnly });
    writeJson(mapFile(), maps);
    const dev = path.basename(device);
    addBlock(dev, device, false);
    if (tool === 'rbd') link(under(`/dev/rbd/${pool}/${name}`), device);
    process.stdout.write(`${device}\n`);
  });
}

function unmap(argv: string[]): void {
  const spec = positional(argv)[0] ?? die(22, `${tool}: unmap requires a device or image`);
  withStateLock(() => {
    const maps = readJson<Mapping[]>(mapFile(), []);
    const m = maps.find((x) => x.device === spec || `${x.pool}/${x.name}` === spec);
    if (!m) die(22, `${tool}: ${spec}: not a mapped image or snapshot`);
    const dev = path.basename(m.device);
    removeBlock(dev);
    if (tool === 'rbd' && !maps.some((x) => x !== m && x.pool === m.pool && x.name === m.name)) {
      rmSync(under(`/dev/rbd/${m.pool}/${m.name}`), { force: true });
    }
    detachLoop(m.device);
    if (!ownedLoops(stateDir()).includes(m.device)) fuseUnmount(m.id);
    writeJson(
      mapFile(),
      maps.filter((x) => x !== m),
    );
  });
}

function showmapped(argv: string[]): void {
  const maps = readJson<Mapping[]>(mapFile(), []);
  if (opt(argv, '--format') === 'json') {
    const rows = maps.map((m) => ({
      id: String(m.id),
      pool: m.pool,
      namespace: '',
      name: m.name,
      snap: '-',
      device: m.device,
    }));
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return;
  }
  if (maps.length === 0) return;
  process.stdout.write('id  pool  namespace  image  snap  device\n');
  for (const m of maps) process.stdout.write(`${m.id}  ${m.pool}             ${m.name}  -     ${m.device}\n`);
}

main(() => {
  let argv = process.argv.slice(2);
  record(tool, argv);
  if (argv[0] === 'device') argv = argv.slice(1); // `rbd device map` == `rbd map`
  const cmd = argv[0];
  const rest = argv.slice(1);
  if (cmd === 'map') map(rest);
  else if (cmd === 'unmap') unmap(rest);
  else if (cmd === 'showmapped' || cmd === 'list' || cmd === 'list-mapped') showmapped(rest);
  else if (tool === 'rbd') {
    const r = spawnSync('rbd', argv, { stdio: 'inherit', env: { ...process.env, PATH: SYSTEM_PATH } });
    process.exitCode = r.status ?? 1;
  } else die(22, `${tool}: unsupported command '${cmd ?? ''}' in this double`);
});
