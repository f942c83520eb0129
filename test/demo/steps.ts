/**
 * The walk-through's steps (test/demo/walkthrough.ts): each prints one line with its duration and
 * is recorded; a check prints and records its verdict. SIGINT/SIGTERM stop new steps but let the
 * clean-up steps run (a second signal exits); CINDER_CSI_DEMO_FAIL_AT=<step name prefix> makes the
 * matching step fail before it runs.
 */

/** One step's or check's outcome. */
export interface StepResult {
  name: string;
  ok: boolean;
  ms: number;
  note?: string;
}

const color = process.stdout.isTTY;
export const paint = (c: number, s: string) => (color ? `\x1b[${c}m${s}\x1b[0m` : s);

export interface Steps {
  /** Every step and check so far, in order. */
  results: StepResult[];
  /** A step of the walk-through: refused after an interrupt; `failAt` makes it fail. */
  step<T>(name: string, fn: () => Promise<T>, note?: (r: T) => string): Promise<T>;
  /** A clean-up step: runs even after an interrupt and never gets an injected failure. */
  cleanupStep<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Records and prints a check; throws when it failed. */
  check(name: string, ok: boolean, detail: string): void;
  /** The signal that interrupted the run, if any. */
  interrupted(): string | undefined;
}

/** The step runner; installs the SIGINT/SIGTERM handlers. */
export function createSteps(failAt: string | undefined): Steps {
  const results: StepResult[] = [];
  /** Set by SIGINT/SIGTERM: no new step starts, the clean-up still runs (a second signal exits). */
  let interrupted: string | undefined;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) process.exit(130);
      interrupted = sig;
      console.log(`${sig}: stopping after the current call, then cleaning up (again to exit at once)`);
    });
  }

  const step = <T>(name: string, fn: () => Promise<T>, note?: (r: T) => string) => run(name, fn, note, true);
  /** A clean-up step: runs even after an interrupt and never gets an injected failure. */
  const cleanupStep = <T>(name: string, fn: () => Promise<T>) => run(name, fn, undefined, false);

  async function run<T>(
    name: string,
    fn: () => Promise<T>,
    note: ((r: T) => string) | undefined,
    guarded: boolean,
  ): Promise<T> {
    const t0 = performance.now();
    try {
      if (guarded && interrupted) throw new Error(`interrupted (${interrupted})`);
      if (guarded && failAt && name.startsWith(failAt)) {
        throw new Error(`injected failure (CINDER_CSI_DEMO_FAIL_AT=${failAt})`);
      }
      const r = await fn();
      const ms = performance.now() - t0;
      const n = note ? note(r) : undefined;
      results.push({ name, ok: true, ms, ...(n ? { note: n } : {}) });
      console.log(
        `${paint(32, '✔')} ${name.padEnd(58)} ${ms.toFixed(0).padStart(6)} ms${n ? `  ${paint(2, n)}` : ''}`,
      );
      return r;
    } catch (err) {
      const ms = performance.now() - t0;
      const e = err as { code?: number; details?: string; message?: string };
      const msg = e.details ?? e.message ?? String(err);
      results.push({ name, ok: false, ms, note: msg });
      console.log(`${paint(31, '✖')} ${name.padEnd(58)} ${ms.toFixed(0).padStart(6)} ms  ${paint(31, msg)}`);
      throw err;
    }
  }

  function check(name: string, ok: boolean, detail: string): void {
    results.push({ name, ok, ms: 0, note: detail });
    console.log(
      `${ok ? paint(32, '✔') : paint(31, '✖')} check: ${name.padEnd(51)}          ${paint(2, detail)}`,
    );
    if (!ok) throw new Error(`check failed: ${name}: ${detail}`);
  }

  return { results, step, cleanupStep, check, interrupted: () => interrupted };
}
