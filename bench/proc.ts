/**
 * A benchmarked process's own figures from /proc (bench/startup.ts, bench/scale-controller.ts):
 * CPU time of all its threads and its RSS split into anonymous and file-backed pages.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface Mem {
  rss: number;
  anon: number;
  file: number;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * CPU milliseconds used by all threads of `pid` (/proc/PID/task/TID/schedstat, ns on CPU): unlike
 * wall time it hardly depends on the machine's load. Threads that already exited are not counted.
 */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread gone
    }
  }
  return ns / 1e6;
}

/** RSS of `pid` in MiB (/proc/PID/smaps_rollup), anonymous and file-backed. */
export function memOf(pid: number): Mem {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  const rss = kb('Rss') / 1024;
  const anon = kb('Anonymous') / 1024;
  return { rss, anon, file: rss - anon };
}

/** Idle memory: after `settleMs`, 5 samples 200 ms apart, the median of each figure. */
export async function idleMemory(pid: number, settleMs = 2000): Promise<Mem> {
  await sleep(settleMs);
  const samples: Mem[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(memOf(pid));
    await sleep(200);
  }
  return {
    rss: median(samples.map((s) => s.rss)),
    anon: median(samples.map((s) => s.anon)),
    file: median(samples.map((s) => s.file)),
  };
}
