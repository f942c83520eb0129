/**
 * Node service latency and memory on loop devices (root):
 *  - NodeStage+NodePublish vs the raw commands alone (losetup + mkfs.ext4 + mount + mount --bind),
 *  - NodeUnpublish+NodeUnstage vs raw umount + umount + losetup -d,
 *    N pairs on fresh sparse volumes (64 MiB unless --size), service and raw in alternating order;
 *    the ratio is the median of the per-pair ratios (with their range);
 *  - RSS of this process with the node service idle, and the peak during 20 concurrent stages.
 * The connector is the tests' LoopConnector (losetup), standing in for iSCSI/RBD.
 *
 *   bench/node-stage.ts [--n 10] [--concurrent 20] [--size 64]   (size in MiB)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ctx, mountCap, req, rootSkipReason, World } from '../test/integration/node/helpers.ts';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const N = arg('n', 10);
const CONCURRENT = arg('concurrent', 20);
const SIZE_MIB = arg('size', 64);

const sh = (cmd: string, a: string[]) =>
  execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

async function main() {
  const why = rootSkipReason();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const w = await World.create();
  try {
    const svc = w.service();
    const cap = mountCap('ext4');
    // Warm-up (module loading, first spawn) outside the measurement.
    {
      const v = await w.volume(SIZE_MIB);
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
    }

    const up: number[] = [];
    const down: number[] = [];
    const rawUp: number[] = [];
    const rawDown: number[] = [];
    // Pairs of (service, raw) on fresh volumes, in alternating order (service first, then raw
    // first, ...), so that load drift on the shared machine hits both alike.
    const service = async () => {
      const v = await w.volume(SIZE_MIB);
      const target = v.target();
      let t = performance.now();
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      up.push(performance.now() - t);
      t = performance.now();
      await svc.NodeUnpublishVolume(req.unpublish(v, target), ctx());
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
      down.push(performance.now() - t);
    };
    const raw = async (i: number) => {
      // The same work as bare commands.
      const r = await w.volume(SIZE_MIB);
      const mnt = path.join(w.dir, `raw-${i}`, 'mnt');
      const bind = path.join(w.dir, `raw-${i}`, 'bind');
      await mkdir(mnt, { recursive: true });
      await mkdir(bind, { recursive: true });
      let t = performance.now();
      const dev = sh('losetup', ['-f', '--show', r.file]);
      sh('mkfs.ext4', ['-F', '-m0', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', dev]);
      sh('mount', ['-t', 'ext4', dev, mnt]);
      sh('mount', ['--bind', mnt, bind]);
      rawUp.push(performance.now() - t);
      t = performance.now();
      sh('umount', [bind]);
      sh('umount', [mnt]);
      sh('losetup', ['-d', dev]);
      rawDown.push(performance.now() - t);
    };
    for (let i = 0; i < N; i++) {
      if (i % 2 === 0) {
        await service();
        await raw(i);
      } else {
        await raw(i);
        await service();
      }
    }

    // Breakdown of one stage+publish and one unpublish+unstage: each host command the service ran
    // (count, total ms); the rest is the service's own work (mount table reads, state file, JS).
    const breakdown = async (label: string, fn: () => Promise<unknown>) => {
      const cmds = new Map<string, { n: number; ms: number }>();
      const run = w.executor.run.bind(w.executor);
      w.executor.run = async (cmd, a, o) => {
        const t0 = performance.now();
        try {
          return await run(cmd, a, o);
        } finally {
          const key =
            `${cmd.split('/').pop()} ${a.find((x) => !x.startsWith('-') && !x.includes('/')) ?? ''}`.trim();
          const c = cmds.get(key) ?? { n: 0, ms: 0 };
          c.n++;
          c.ms += performance.now() - t0;
          cmds.set(key, c);
        }
      };
      // The connector (losetup here) is timed as one more "command".
      const conn = w.connector;
      const wrap = <K extends 'connect' | 'disconnect' | 'isConnected'>(k: K) => {
        const orig = conn[k].bind(conn) as (...x: unknown[]) => Promise<unknown>;
        (conn as unknown as Record<string, unknown>)[k] = async (...x: unknown[]) => {
          const t0 = performance.now();
          try {
            return await orig(...x);
          } finally {
            const c = cmds.get(`connector.${k}`) ?? { n: 0, ms: 0 };
            c.n++;
            c.ms += performance.now() - t0;
            cmds.set(`connector.${k}`, c);
          }
        };
        return () => {
          (conn as unknown as Record<string, unknown>)[k] = orig;
        };
      };
      const unwrap = [wrap('connect'), wrap('disconnect'), wrap('isConnected')];
      const t0 = performance.now();
      try {
        await fn();
      } finally {
        w.executor.run = run;
        for (const u of unwrap) u();
      }
      const total = performance.now() - t0;
      const inCmds = [...cmds.values()].reduce((a, c) => a + c.ms, 0);
      console.log(
        `  ${label}: ${total.toFixed(1)} ms = commands ${inCmds.toFixed(1)} ms [${[...cmds]
          .map(([k, c]) => `${k} ×${c.n} ${c.ms.toFixed(1)}`)
          .join(', ')}] + own work ${(total - inCmds).toFixed(1)} ms`,
      );
    };
    {
      const v = await w.volume(SIZE_MIB);
      const target = v.target();
      console.log('one call, broken down (host commands run by the service; the connector is losetup):');
      await breakdown('NodeStage', () => svc.NodeStageVolume(req.stage(v, cap), ctx()));
      await breakdown('NodePublish', () => svc.NodePublishVolume(req.publish(v, cap, target), ctx()));
      await breakdown('NodeUnpublish', () => svc.NodeUnpublishVolume(req.unpublish(v, target), ctx()));
      await breakdown('NodeUnstage', () => svc.NodeUnstageVolume(req.unstage(v), ctx()));
    }

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

    const fmt = (xs: number[]) => `${median(xs).toFixed(1)} ms`;
    const ratios = (a: number[], b: number[]) => {
      const r = a.map((x, i) => x / b[i]!);
      return `ratio median of pairs ${median(r).toFixed(2)} (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})`;
    };
    console.log(
      `node-stage bench (${N} alternating pairs, ${SIZE_MIB} MiB ext4 on loop devices; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`,
    );
    console.log(
      `  NodeStage+NodePublish      median ${fmt(up)}   raw losetup+mkfs+mount+bind ${fmt(rawUp)}   ${ratios(up, rawUp)} (goal <= 1.25)`,
    );
    console.log(
      `  NodeUnpublish+NodeUnstage  median ${fmt(down)}   raw umount+umount+losetup -d ${fmt(rawDown)}   ${ratios(down, rawDown)}`,
    );
    console.log(
      `  RSS idle (service built, after runs) ${mb(idleRss)} MB; peak during ${CONCURRENT} concurrent stages ${mb(peak)} MB (${concurrentMs.toFixed(0)} ms for all)`,
    );
  } finally {
    await w.cleanup();
  }
}

await main();
