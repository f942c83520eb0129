/**
 * Child processes a test started: SIGKILL every one still running and wait until each has exited,
 * so a suite's `after` leaves no process behind (and no open handle keeps the runner alive).
 */
import type { ChildProcess } from 'node:child_process';

export async function killChildren(children: Iterable<ChildProcess>): Promise<void> {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }
  }
}
