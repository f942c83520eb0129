/**
 * The scale bench's controller process (bench/scale.ts): bin/cinder-csi --mode controller with the
 * run's cluster id, noauth on the lab, `--log-level info` as the chart deploys it, optionally with a
 * kubeconfig (then its start-up reconciler pass runs too). One run measures, for the process itself
 * (/proc: CPU of all its threads, RSS split into anonymous and file-backed pages):
 *  - spawn → first Probe ready=true (wall) and the CPU used by then;
 *  - its start-up reconciler pass: from ready until it has logged all `stale` reserved attachments
 *    as waiting for the grace period (the pass's last step), wall and CPU; with no kubeconfig or
 *    `stale` 0 there is nothing to see the pass's end by, and it waits `settleMs` instead;
 *  - idle RSS after that (2 s later, median of 5 samples);
 *  - a ListVolumes of all pages over gRPC (Cinder's default page): wall and the process's CPU;
 *  - RSS after the listing (the same way).
 * `v8Flags` replaces the entrypoint's V8 flags (CINDER_CSI_NODE_FLAGS; undefined: the image's).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { csiClient } from '../test/support/csi-client.ts';
import { labNoauthEnv } from '../test/support/lab.ts';
import { cpuMs, idleMemory, sleep } from './proc.ts';
import type { ControllerRun } from './scale-report.ts';

/**
 * The flag variants compared by `--flag-variants`: the image's flags (since 75959f9 interpreter-only
 * in every mode) and `opt`, the same with V8's optimizing compilers on (the controller's flags before).
 */
export const FLAG_VARIANTS: Record<string, string | undefined> = {
  image: undefined,
  opt: '--max-semi-space-size=1 --liftoff-only',
};

/** The reconciler's info line for each stale attachment still inside its grace period. */
const PENDING = 'waiting for the grace period';

export async function controllerRun(o: {
  prefix: string;
  dir: string;
  kubeconfig: string | undefined;
  v8Flags: string | undefined;
  /** Reserved attachments of the run that the start-up pass logs as stale. */
  stale: number;
  settleMs: number;
}): Promise<ControllerRun> {
  const sock = join(o.dir, `ctl-${randomBytes(3).toString('hex')}.sock`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}`,
    ...labNoauthEnv(),
  };
  if (o.v8Flags !== undefined) env['CINDER_CSI_NODE_FLAGS'] = o.v8Flags;
  else delete env['CINDER_CSI_NODE_FLAGS'];
  const t0 = performance.now();
  const child: ChildProcess = spawn(
    join(import.meta.dirname, '../bin/cinder-csi'),
    [
      '--mode',
      'controller',
      '--endpoint',
      `unix://${sock}`,
      '--cluster-id',
      o.prefix,
      '--log-level',
      'info',
      // nothing of the run is deleted by the process's own passes
      '--reconcile-grace',
      '3600',
      '--state-dir',
      join(o.dir, 'state'),
      ...(o.kubeconfig ? ['--kubeconfig', o.kubeconfig] : []),
    ],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const pid = child.pid!;
  let pending = 0;
  let passEnd: { ms: number; cpu: number } | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.includes(PENDING) || ++pending !== o.stale) return;
    try {
      passEnd = { ms: performance.now(), cpu: cpuMs(pid) };
    } catch {
      // the process is gone (its /proc with it): the run fails on its next step, not here
    }
  });
  const client = csiClient(`unix://${sock}`);
  try {
    for (;;) {
      if (performance.now() - t0 > 60_000) throw new Error('controller not ready after 60 s');
      if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}`);
      if (existsSync(sock)) {
        const r = await client
          .call<{ ready: { value: boolean } | null }>('Identity', 'Probe', {}, 2000)
          .catch(() => undefined);
        if (r?.ready?.value) break;
      }
      await sleep(20);
    }
    const ready = { ms: performance.now(), cpu: cpuMs(pid) };
    const watch = o.kubeconfig !== undefined && o.stale > 0;
    if (watch) {
      const limit = ready.ms + Math.max(120_000, o.settleMs * 5);
      while (!passEnd && performance.now() < limit && child.exitCode === null) await sleep(50);
    } else {
      await sleep(o.settleMs);
    }
    const pass = passEnd ?? { ms: performance.now(), cpu: cpuMs(pid) };
    const idle = await idleMemory(pid);
    const c0 = cpuMs(pid);
    const t1 = performance.now();
    let token = '';
    let pages = 0;
    do {
      const res = await client.call<{ next_token: string }>(
        'Controller',
        'ListVolumes',
        { max_entries: 0, starting_token: token },
        120_000,
      );
      pages++;
      token = res.next_token;
    } while (token && pages < 10_000);
    const listMs = performance.now() - t1;
    const listCpu = cpuMs(pid) - c0;
    return {
      readyMs: ready.ms - t0,
      startCpu: ready.cpu,
      // a pass over few volumes can end before the first Probe answers: 0; not seen: no figure
      passMs: passEnd ? Math.max(0, pass.ms - ready.ms) : Number.NaN,
      passCpu: Math.max(0, pass.cpu - ready.cpu),
      passSeen: watch && passEnd !== undefined,
      idle,
      listMs,
      listCpu,
      pages,
      after: await idleMemory(pid),
    };
  } finally {
    client.close();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  }
}
