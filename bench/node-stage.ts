/**
 * Node service latency, work and memory on loop devices (root):
 *  - NodeStage+NodePublish vs the raw commands alone (losetup + mkfs.ext4 + mount + mount --bind),
 *  - NodeUnpublish+NodeUnstage vs raw umount + umount + losetup -d,
 *    N rounds on fresh sparse volumes (64 MiB unless --size); each round runs the service, the raw
 *    commands through the same async executor the service uses, and the raw commands with
 *    execFileSync, in an order that rotates every round; ratios are medians of per-round ratios;
 *  - what each path does per call, counted (load-independent): commands exec'd, connector calls,
 *    mount-table reads, state-file reads/writes/deletes; and this process's CPU time per path;
 *  - one call of each RPC broken down into its commands' time and the service's own work;
 *  - RSS of this process with the node service idle, and the peak during 20 concurrent stages.
 * The connector is the tests' LoopConnector (losetup), standing in for iSCSI/RBD.
 *
 *   bench/node-stage.ts [--n 12] [--concurrent 20] [--size 64]   (size in MiB)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ctx, mountCap, req, rootSkipReason, World } from '../test/integration/node/helpers.ts';
import {
  commandKey,
  countNodeWork,
  emptyCounts,
  formatCounts,
  type WorkCounts,
} from '../test/integration/node/work-counter.ts';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const N = arg('n', 12);
const CONCURRENT = arg('concurrent', 20);
const SIZE_MIB = arg('size', 64);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

type Path = 'service' | 'rawAsync' | 'rawSync';
interface Sample {
  up: number;
  down: number;
  cpuUp: number;
  cpuDown: number;
}

async function main() {
  const why = rootSkipReason();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const w = await World.create();
  const counter = countNodeWork(w);
  try {
    const svc = w.service();
    const cap = mountCap('ext4');
    const samples: Record<Path, Sample[]> = { service: [], rawAsync: [], rawSync: [] };
    const work: Record<Path, { up: WorkCounts; down: WorkCounts }> = {
      service: { up: emptyCounts(), down: emptyCounts() },
      rawAsync: { up: emptyCounts(), down: emptyCounts() },
      rawSync: { up: emptyCounts(), down: emptyCounts() },
    };
    const perRpc = new Map<string, WorkCounts>();
    const addInto = (into: WorkCounts, c: WorkCounts) => {
      for (const k of ['commands', 'connector'] as const) {
        for (const [name, v] of c[k]) {
          const t = into[k].get(name) ?? { n: 0, ms: 0 };
          t.n += v.n;
          t.ms += v.ms;
          into[k].set(name, t);
        }
      }
      into.mountTableReads += c.mountTableReads;
      into.stateReads += c.stateReads;
      into.stateWrites += c.stateWrites;
      into.stateDeletes += c.stateDeletes;
    };
    /** Runs `fn`, adds its counts to `into` (and per RPC), returns [wall ms, CPU ms]. */
    const measured = async (into: WorkCounts, fn: () => Promise<unknown>, rpc?: string) => {
      counter.reset();
      const c0 = cpuMs();
      const t0 = performance.now();
      await fn();
      const wall = performance.now() - t0;
      const cpu = cpuMs() - c0;
      addInto(into, counter.counts);
      if (rpc)
        addInto(perRpc.get(rpc) ?? (perRpc.set(rpc, emptyCounts()).get(rpc) as WorkCounts), counter.counts);
      return [wall, cpu] as const;
    };

    const service = async () => {
      const v = await w.volume(SIZE_MIB);
      const target = v.target();
      const into = work.service;
      let c0 = cpuMs();
      let t0 = performance.now();
      await measured(into.up, () => svc.NodeStageVolume(req.stage(v, cap), ctx()), 'NodeStage');
      await measured(into.up, () => svc.NodePublishVolume(req.publish(v, cap, target), ctx()), 'NodePublish');
      const up = performance.now() - t0;
      const cpuUp = cpuMs() - c0;
      c0 = cpuMs();
      t0 = performance.now();
      await measured(
        into.down,
        () => svc.NodeUnpublishVolume(req.unpublish(v, target), ctx()),
        'NodeUnpublish',
      );
      await measured(into.down, () => svc.NodeUnstageVolume(req.unstage(v), ctx()), 'NodeUnstage');
      samples.service.push({ up, down: performance.now() - t0, cpuUp, cpuDown: cpuMs() - c0 });
    };
    // The same work as bare commands: through the service's executor (async, like the service) or
    // with execFileSync (blocking, counted by hand).
    let rawN = 0;
    const raw = async (mode: 'rawAsync' | 'rawSync') => {
      const r = await w.volume(SIZE_MIB);
      const dir = path.join(w.dir, `raw-${++rawN}`);
      const mnt = path.join(dir, 'mnt');
      const bind = path.join(dir, 'bind');
      await mkdir(mnt, { recursive: true });
      await mkdir(bind, { recursive: true });
      let syncCounts = emptyCounts();
      const run =
        mode === 'rawAsync'
          ? async (cmd: string, a: string[]) => (await w.executor.run(cmd, a)).stdout.trim()
          : async (cmd: string, a: string[]) => {
              const t0 = performance.now();
              const out = execFileSync(cmd, a, {
                encoding: 'utf8',
                stdio: ['ignore', 'pipe', 'pipe'],
              }).trim();
              const k = commandKey(cmd, a);
              const c = syncCounts.commands.get(k) ?? { n: 0, ms: 0 };
              c.n++;
              c.ms += performance.now() - t0;
              syncCounts.commands.set(k, c);
              return out;
            };
      let dev = '';
      const [up, cpuUp] = await measured(work[mode].up, async () => {
        dev = await run('losetup', ['-f', '--show', r.file]);
        await run('mkfs.ext4', ['-F', '-m0', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', dev]);
        await run('mount', ['-t', 'ext4', dev, mnt]);
        await run('mount', ['--bind', mnt, bind]);
      });
      addInto(work[mode].up, syncCounts);
      syncCounts = emptyCounts();
      const [down, cpuDown] = await measured(work[mode].down, async () => {
        await run('umount', [bind]);
        await run('umount', [mnt]);
        await run('losetup', ['-d', dev]);
      });
      addInto(work[mode].down, syncCounts);
      samples[mode].push({ up, down, cpuUp, cpuDown });
    };
    const runPath = (p: Path) => (p === 'service' ? service() : raw(p));

    // Warm-up of each path (module loading, first spawns), not measured.
    for (const p of ['service', 'rawAsync', 'rawSync'] as const) await runPath(p);
    for (const s of Object.values(samples)) s.length = 0;
    for (const c of Object.values(work)) {
      c.up = emptyCounts();
      c.down = emptyCounts();
    }
    perRpc.clear();

    const load0 = load();
    const order: Path[] = ['service', 'rawAsync', 'rawSync'];
    for (let i = 0; i < N; i++) {
      // Rotate: each path runs first, second and third equally often, so load drift hits all alike.
      for (let j = 0; j < 3; j++) await runPath(order[(i + j) % 3] as Path);
    }
    const load1 = load();

    // One call of each RPC broken down: each command's time, the rest is the service's own work.
    const breakdown: string[] = [];
    {
      const v = await w.volume(SIZE_MIB);
      const target = v.target();
      const one = async (label: string, fn: () => Promise<unknown>) => {
        const c = emptyCounts();
        const [wall] = await measured(c, fn);
        const inCmds = [...c.commands.values(), ...c.connector.values()].reduce((a, x) => a + x.ms, 0);
        breakdown.push(
          `  ${label}: ${wall.toFixed(1)} ms = commands ${inCmds.toFixed(1)} ms [${formatCounts(c, 1, true)}] + own work ${(wall - inCmds).toFixed(1)} ms`,
        );
      };
      await one('NodeStage', () => svc.NodeStageVolume(req.stage(v, cap), ctx()));
      await one('NodePublish', () => svc.NodePublishVolume(req.publish(v, cap, target), ctx()));
      await one('NodeUnpublish', () => svc.NodeUnpublishVolume(req.unpublish(v, target), ctx()));
      await one('NodeUnstage', () => svc.NodeUnstageVolume(req.unstage(v), ctx()));
    }

    counter.stop();
    global.gc?.();
    const idleRss = process.memoryUsage().rss;
    const vols = await Promise.all(Array.from({ length: CONCURRENT }, () => w.volume(SIZE_MIB)));
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const tc = performance.now();
    await Promise.all(vols.map((v) => svc.NodeStageVolume(req.stage(v, cap), ctx())));
    const concurrentMs = performance.now() - tc;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    await Promise.all(vols.map((v) => svc.NodeUnstageVolume(req.unstage(v), ctx())));

    const ms = (xs: number[]) => `${median(xs).toFixed(1)} ms`;
    const ratio = (a: number[], b: number[]) => {
      const r = a.map((x, i) => x / (b[i] as number));
      return `${median(r).toFixed(2)} (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})`;
    };
    const col = (p: Path, k: keyof Sample) => samples[p].map((s) => s[k]);
    console.log(
      `node-stage bench (${N} rotating rounds of service / raw async / raw sync, ${SIZE_MIB} MiB ext4 on loop devices; load ${load0} → ${load1}; commit ${commitOf()})`,
    );
    for (const [dir, label, rawLabel] of [
      ['up', 'NodeStage+NodePublish', 'losetup+mkfs+mount+bind'],
      ['down', 'NodeUnpublish+NodeUnstage', 'umount+umount+losetup -d'],
    ] as const) {
      const cpu = dir === 'up' ? 'cpuUp' : 'cpuDown';
      console.log(`  ${label}${dir === 'up' ? ' (goal <= 1.25 vs raw async)' : ''}`);
      console.log(
        `    wall median: service ${ms(col('service', dir))}, raw async ${ms(col('rawAsync', dir))}, raw sync ${ms(col('rawSync', dir))} (${rawLabel})`,
      );
      console.log(
        `    ratio (median of rounds, range): vs raw async ${ratio(col('service', dir), col('rawAsync', dir))}, vs raw sync ${ratio(col('service', dir), col('rawSync', dir))}`,
      );
      console.log(
        `    this process's CPU median: service ${ms(col('service', cpu))}, raw async ${ms(col('rawAsync', cpu))}, raw sync ${ms(col('rawSync', cpu))}`,
      );
      for (const p of ['service', 'rawAsync', 'rawSync'] as const) {
        console.log(`    work per call, ${p}: ${formatCounts(work[p][dir], N)}`);
      }
    }
    console.log('  work per RPC (service, mean of the rounds):');
    for (const [rpc, c] of perRpc) console.log(`    ${rpc}: ${formatCounts(c, N)}`);
    console.log('  one call, broken down (the connector is losetup):');
    for (const line of breakdown) console.log(line);
    console.log(
      `  RSS idle (service built, after runs) ${mb(idleRss)} MB; peak during ${CONCURRENT} concurrent stages ${mb(peak)} MB (${concurrentMs.toFixed(0)} ms for all)`,
    );
  } finally {
    counter.stop();
    await w.cleanup();
  }
}

function commitOf(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

await main();
