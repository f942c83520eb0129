/**
 * A test body that its suite's `after` hook must outlast. When a node:test test times out, the
 * runner marks it failed, aborts `t.signal` and runs the after hooks at once, but it cannot stop
 * the body: the body goes on and can create (a namespace, a pod, a volume) what the hook already
 * deleted, which then leaks. `run(t, body)` keeps the body's promise; the body checks `t.signal`
 * before it creates anything (and passes it down to long steps); `settled()`, first thing in the
 * after hook, waits (bounded) until every body ended, so the clean-up sees all they created.
 */
import type { TestContext } from 'node:test';

export class TestWork {
  readonly #running = new Set<Promise<unknown>>();

  /** Runs `body` as test `t`'s work (the test's own result is the body's). */
  async run<T>(t: TestContext, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const p = body(t.signal);
    this.#running.add(p);
    try {
      return await p;
    } finally {
      this.#running.delete(p);
    }
  }

  /** Waits until the bodies still running ended (failed or not), at most `timeoutMs`. */
  async settled(timeoutMs = 300_000): Promise<void> {
    if (this.#running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => {
      timer = setTimeout(r, timeoutMs);
      timer.unref();
    });
    await Promise.race([Promise.allSettled([...this.#running]), bound]);
    clearTimeout(timer);
  }
}
