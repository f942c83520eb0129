/**
 * Start-up and idle memory of the driver process.
 *   node bench/startup.ts [--runs 10]
 * Prints: process start → first successful Probe (ready=true) median/min/max over N runs, per mode,
 * and the idle RSS of `--mode node` and `--mode controller` 3 s after ready.
 * Needs the lab's noauth Cinder API (test/lab-up.sh) for controller readiness.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { csiClient } from '../test/support/csi-client.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
const entry = new URL('../dist/cli/main.js', import.meta.url).pathname;
/** The lab's noauth API and project, as test/lab-up.sh records them. */
function labNoauth(): Record<string, string> {
  try {
    const text = readFileSync('/var/lib/cinder-lab/cinder-noauth/noauth.env', 'utf8');
    return Object.fromEntries(
      text
        .split('\n')
        .map((l) => /^(?:export )?([A-Z_]+)=["']?([^"']*)["']?$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    );
  } catch {
    return {};
  }
}
const lab = labNoauth();
const env = {
  ...process.env,
  OS_AUTH_TYPE: 'noauth',
  OS_USER_ID: 'admin',
  OS_PROJECT_ID: lab['CINDER_LAB_NOAUTH_PROJECT'] ?? '0123456789abcdef0123456789abcdef',
  OS_ENDPOINT: lab['CINDER_LAB_NOAUTH_ENDPOINT'] ?? 'http://127.0.0.1:8786/v3',
};

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function once(mode: string, dir: string, i: number, measureRss: boolean) {
  const sock = join(dir, `${mode}-${i}.sock`);
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      entry,
      '--mode',
      mode,
      '--endpoint',
      `unix://${sock}`,
      '--node-id',
      'bench-node',
      '--log-level',
      'warn',
      '--state-dir',
      join(dir, 'state'),
    ],
    { env, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  // Connect only once the socket exists: a client that dialled too early waits out gRPC's
  // reconnect backoff (1 s), which would be measured instead of the driver.
  while (!existsSync(sock)) {
    await new Promise((r) => setTimeout(r, 2));
    if (performance.now() - t0 > 30_000) throw new Error(`${mode}: no socket after 30 s`);
  }
  const client = csiClient(`unix://${sock}`);
  try {
    for (;;) {
      try {
        const r = await client.call<{ ready: { value: boolean } | null }>('Identity', 'Probe', {}, 1000);
        if (r.ready?.value) break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 5));
      if (performance.now() - t0 > 30_000) throw new Error(`${mode}: not ready after 30 s`);
    }
    const ms = performance.now() - t0;
    let rss = Number.NaN;
    if (measureRss) {
      await new Promise((r) => setTimeout(r, 3000));
      rss = rssMiB(child.pid!);
    }
    return { ms, rss };
  } finally {
    client.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
try {
  console.log(`start → Probe ready, ${runs} runs each (dist/cli/main.js, node ${process.version})`);
  for (const mode of ['node', 'controller', 'all']) {
    const times: number[] = [];
    let rss = Number.NaN;
    for (let i = 0; i < runs; i++) {
      const r = await once(mode, dir, i, i === runs - 1);
      times.push(r.ms);
      if (!Number.isNaN(r.rss)) rss = r.rss;
    }
    console.log(
      `${mode.padEnd(10)} median ${median(times).toFixed(0)} ms  min ${Math.min(...times).toFixed(0)}  max ${Math.max(...times).toFixed(0)}  idle RSS ${rss.toFixed(1)} MiB`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
