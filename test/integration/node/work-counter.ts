/**
 * Counts what the node service does for each call, independently of the machine's load: host
 * commands run through the World's executor (by name, with their time), connector calls, reads
 * of the mount table (Mounter.list, i.e. /proc/self/mountinfo), and state-file reads, writes and
 * deletes (StateStore). Used by the node tests (to pin that nothing is repeated) and by
 * bench/node-stage.ts. It wraps the World's executor and connector instances and the Mounter
 * and StateStore prototypes of this process: `stop()` puts everything back (call it in `finally`).
 */
import path from 'node:path';
import { StateStore } from '../../../src/csi/node/state.ts';
import { Mounter } from '../../../src/host/mount.ts';
import type { World } from './helpers.ts';

export interface WorkCounts {
  /** Host commands by name (`mount --bind` apart from `mount`), with their total time. */
  commands: Map<string, { n: number; ms: number }>;
  /** Connector calls (connect, disconnect, isConnected), with their total time. */
  connector: Map<string, { n: number; ms: number }>;
  mountTableReads: number;
  stateReads: number;
  stateWrites: number;
  stateDeletes: number;
}

export const emptyCounts = (): WorkCounts => ({
  commands: new Map(),
  connector: new Map(),
  mountTableReads: 0,
  stateReads: 0,
  stateWrites: 0,
  stateDeletes: 0,
});

/** Number of host commands plus connector calls that ran a command (connect/disconnect). */
export function commandCount(c: WorkCounts): number {
  let n = 0;
  for (const v of c.commands.values()) n += v.n;
  for (const [k, v] of c.connector) if (k !== 'isConnected') n += v.n;
  return n;
}

/** `mkfs.ext4`, `mount --bind`, `losetup -d`: the command's name and its first long option. */
export function commandKey(cmd: string, args: readonly string[]): string {
  const flag = args.find((a) => a === '--bind' || a === '-d' || a === '--setro' || a === '--setrw');
  return flag ? `${path.basename(cmd)} ${flag}` : path.basename(cmd);
}

function tally(m: Map<string, { n: number; ms: number }>, key: string, ms: number): void {
  const c = m.get(key) ?? { n: 0, ms: 0 };
  c.n++;
  c.ms += ms;
  m.set(key, c);
}

export interface WorkCounter {
  /** Counts since the last reset. */
  readonly counts: WorkCounts;
  reset(): void;
  stop(): void;
}

type AnyFn = (...a: unknown[]) => Promise<unknown>;

/** Starts counting the node service's work in `w`. */
export function countNodeWork(w: World): WorkCounter {
  let counts = emptyCounts();
  const undo: (() => void)[] = [];
  const wrap = (obj: object, key: string, onCall: (ms: number, args: unknown[]) => void) => {
    const o = obj as Record<string, AnyFn>;
    const own = Object.hasOwn(o, key);
    const orig = o[key] as AnyFn;
    o[key] = async function (this: unknown, ...args: unknown[]) {
      const t0 = performance.now();
      try {
        return await orig.apply(this, args);
      } finally {
        onCall(performance.now() - t0, args);
      }
    };
    undo.push(() => {
      if (own) o[key] = orig;
      else delete o[key];
    });
  };
  wrap(w.executor, 'run', (ms, a) =>
    tally(counts.commands, commandKey(a[0] as string, a[1] as string[]), ms),
  );
  for (const k of ['connect', 'disconnect', 'isConnected']) {
    wrap(w.connector, k, (ms) => tally(counts.connector, k, ms));
  }
  wrap(Mounter.prototype, 'list', () => counts.mountTableReads++);
  wrap(StateStore.prototype, 'get', () => counts.stateReads++);
  wrap(StateStore.prototype, 'put', () => counts.stateWrites++);
  wrap(StateStore.prototype, 'delete', () => counts.stateDeletes++);
  return {
    get counts() {
      return counts;
    },
    reset() {
      counts = emptyCounts();
    },
    stop() {
      for (const u of undo.splice(0).reverse()) u();
    },
  };
}

/** One line: `3 commands [blkid ×1, mkfs.ext4 ×1, mount ×1], connector connect ×1, mountinfo ×1, ...`. */
export function formatCounts(c: WorkCounts, per = 1, withMs = false): string {
  const fmt = (m: Map<string, { n: number; ms: number }>) =>
    [...m]
      .map(([k, v]) => `${k} ×${+(v.n / per).toFixed(2)}${withMs ? ` ${(v.ms / per).toFixed(1)} ms` : ''}`)
      .join(', ');
  const parts = [`${+(commandCount(c) / per).toFixed(2)} commands [${fmt(c.commands)}]`];
  if (c.connector.size > 0) parts.push(`connector ${fmt(c.connector)}`);
  parts.push(
    `mountinfo reads ${+(c.mountTableReads / per).toFixed(2)}`,
    `state reads ${+(c.stateReads / per).toFixed(2)} writes ${+(c.stateWrites / per).toFixed(2)} deletes ${+(c.stateDeletes / per).toFixed(2)}`,
  );
  return parts.join(', ');
}
