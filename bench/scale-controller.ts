/**
 * The scale bench's controller process (bench/scale.ts): bin/cinder-csi --mode controller with the
 * run's cluster id, noauth on the lab, optionally with a kubeconfig; its RSS after its start-up
 * reconciler pass and a ListVolumes of all pages over gRPC.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { csiClient } from '../test/support/csi-client.ts';
import { labNoauth } from '../test/support/lab.ts';
import { median, sleep } from './scale-volumes.ts';

/** The controller (cluster id `prefix`) as a real process; its RSS after start, its first reconciler pass and a listing. */
export async function controllerRss(
  prefix: string,
  dir: string,
  kubeconfig: string | undefined,
  settleMs: number,
): Promise<{ rss: number; anon: number; listMs: number }> {
  const sock = join(dir, `ctl-${randomBytes(3).toString('hex')}.sock`);
  const n = labNoauth();
  const child: ChildProcess = spawn(
    join(import.meta.dirname, '../bin/cinder-csi'),
    [
      '--mode',
      'controller',
      '--endpoint',
      `unix://${sock}`,
      '--cluster-id',
      prefix,
      '--log-level',
      'warn',
      '--state-dir',
      join(dir, 'state'),
      ...(kubeconfig ? ['--kubeconfig', kubeconfig] : []),
    ],
    {
      env: {
        ...process.env,
        PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}`,
        OS_AUTH_TYPE: 'noauth',
        OS_USER_ID: n.userId,
        OS_PROJECT_ID: n.projectId,
        OS_ENDPOINT: n.endpoint,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const client = csiClient(`unix://${sock}`);
  try {
    const t0 = Date.now();
    for (;;) {
      if (Date.now() - t0 > 60_000) throw new Error('controller not ready after 60 s');
      if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}`);
      if (existsSync(sock)) {
        const r = await client
          .call<{ ready: { value: boolean } | null }>('Identity', 'Probe', {}, 2000)
          .catch(() => undefined);
        if (r?.ready?.value) break;
      }
      await sleep(50);
    }
    await sleep(settleMs); // its start-up reconciler pass
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
      token = res.next_token;
    } while (token && ++pages < 10_000);
    const listMs = performance.now() - t1;
    await sleep(2000);
    const samples: { rss: number; anon: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const text = readFileSync(`/proc/${child.pid}/smaps_rollup`, 'utf8');
      const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]) / 1024;
      samples.push({ rss: kb('Rss'), anon: kb('Anonymous') });
      await sleep(200);
    }
    return { rss: median(samples.map((s) => s.rss)), anon: median(samples.map((s) => s.anon)), listMs };
  } finally {
    client.close();
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  }
}
