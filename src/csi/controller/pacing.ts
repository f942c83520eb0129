/**
 * Adaptive first polls for Cinder's asynchronous operations.
 *
 * The shared waiter (src/openstack/waiter.ts) polls on a fixed geometric schedule (checks at about
 * 75, 190, 360, 610, 990 ms, ...). A lab/cloud volume create takes a fairly stable time per volume
 * type (0.3-0.7 s on the lab), which falls between those checks, so a volume is often seen 100-400 ms
 * late. The pacer learns how long an operation of a kind (e.g. `volume|fake|none`) takes — the 25th
 * percentile of the last 20 observed ready times — and makes a few checks around that time
 * (0.6, 0.75, 0.9, 1.05, 1.2 × the estimate: observations include the POST and the detection lag,
 * so the real ready time tends to lie early) before handing over to the shared waiter. Without
 * history it hands over at once. It costs few requests (the lab bench: 3-4 per created volume,
 * lookup and POST included) and never waits beyond the caller's signal.
 */
import { sleep } from '../../util/abort.ts';

const HISTORY = 20;
const CHECKS = [0.6, 0.75, 0.9, 1.05, 1.2] as const;

export class Pacer {
  readonly #samples = new Map<string, number[]>();

  observe(kind: string, ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    const list = this.#samples.get(kind) ?? [];
    list.push(ms);
    if (list.length > HISTORY) list.shift();
    this.#samples.set(kind, list);
  }

  /** The expected duration of `kind` in ms, once at least three were observed. */
  estimate(kind: string): number | undefined {
    const list = this.#samples.get(kind);
    if (!list || list.length < 3) return undefined;
    const sorted = [...list].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 4)];
  }

  /**
   * Polls `check` at the learned times after `startedAt` (ms epoch); `check` returns the object
   * when it is ready, `undefined` otherwise (also for failure states, which `fallback` handles with
   * the shared waiter's reporting). Records the observed time of the kind.
   */
  async wait<T>(
    kind: string,
    startedAt: number,
    check: () => Promise<T | undefined>,
    fallback: () => Promise<T>,
    signal: AbortSignal,
  ): Promise<T> {
    const est = this.estimate(kind);
    let result: T | undefined;
    if (est !== undefined) {
      for (const f of CHECKS) {
        const at = startedAt + f * est;
        await sleep(Math.max(0, at - Date.now()), signal);
        result = await check();
        if (result !== undefined) break;
      }
    }
    result ??= await fallback();
    this.observe(kind, Date.now() - startedAt);
    return result;
  }
}
