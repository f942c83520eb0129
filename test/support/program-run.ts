/**
 * The image program (bin/cinder-csi) run as a process for a test: started in `mode` on a unix
 * socket in `dir`, until its Probe answers ready (bounded: 60 s), then `fn` with a CSI client and
 * the process's command line (bin/cinder-csi execs node, so the child's PID is node's); stopped
 * with SIGTERM afterwards, whatever `fn` did. No warning or error may reach stderr. The child is
 * pushed to `children` for the suite's clean-up (children.ts).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { csiClient } from './csi-client.ts';

export interface ProgramRun {
  program: string;
  dir: string;
  mode: string;
  nodeId: string;
  /** The whole environment of the process (PATH included). */
  env: NodeJS.ProcessEnv;
  extraArgs?: string[];
  children: ChildProcess[];
}

export interface ProgramResult {
  stderr: string;
  /** At most 1 MB of it. */
  stdout: string;
  exitCode: number | null;
}

const LIMIT_MS = 60_000;

export async function runProgram(
  o: ProgramRun,
  fn: (c: ReturnType<typeof csiClient>, cmdline: string[]) => Promise<void>,
): Promise<ProgramResult> {
  const sock = join(o.dir, `${o.mode}-${o.children.length}.sock`);
  const args = ['--mode', o.mode, '--endpoint', `unix://${sock}`, '--node-id', o.nodeId];
  args.push('--state-dir', join(o.dir, 'state'), ...(o.extraArgs ?? []));
  const child = spawn(o.program, args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
  o.children.push(child);
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  child.stdout?.on('data', (d) => {
    stdout += String(d).slice(0, 1_000_000 - stdout.length);
  });
  const deadline = Date.now() + LIMIT_MS;
  while (!existsSync(sock)) {
    assert.ok(child.exitCode === null, `exited early: ${stderr.slice(0, 500)}`);
    assert.ok(Date.now() < deadline, `no socket after 60 s: ${stderr.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
  const client = csiClient(`unix://${sock}`);
  try {
    for (;;) {
      const r = await client
        .call<{ ready: { value: boolean } | null }>('Identity', 'Probe', {}, 2000)
        .catch(() => undefined);
      if (r?.ready?.value) break;
      assert.ok(Date.now() < deadline, `not ready after 60 s: ${stderr.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await fn(client, cmdline);
  } finally {
    client.close();
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
  assert.doesNotMatch(stderr, /Warning|Error/, 'no warnings or errors on stderr');
  return { stderr, stdout, exitCode: child.exitCode };
}
