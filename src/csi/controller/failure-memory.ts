/**
 * A bounded memory of recent CreateVolume failures that Cinder would only repeat (a volume it
 * cannot schedule: "No valid backend was found"). The provisioner retries such a request for ever;
 * without this memory every retry creates a real volume, waits for the scheduler to fail it, and
 * deletes it again. For a while after such a failure the same request (name + every parameter that
 * shapes the volume) is answered from memory with the same code and message, and Cinder is not
 * asked. The back-off doubles per repeated failure of the same request (`baseMs` up to `maxMs`);
 * at most `maxEntries` requests are remembered (the oldest is forgotten first).
 */
import { CsiError } from '../errors.ts';

export interface FailureMemoryOptions {
  baseMs?: number;
  maxMs?: number;
  maxEntries?: number;
  now?: () => number;
}

interface Entry {
  code: CsiError['code'];
  message: string;
  until: number;
  backoffMs: number;
}

export class FailureMemory {
  readonly #entries = new Map<string, Entry>();
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(opts: FailureMemoryOptions = {}) {
    this.#baseMs = opts.baseMs ?? 30_000;
    this.#maxMs = opts.maxMs ?? 10 * 60_000;
    this.#maxEntries = opts.maxEntries ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The remembered failure for `key`, re-thrown as a fresh CsiError, while its back-off lasts.
   * Afterwards true: the request failed before (the caller may ask Cinder cheaper questions first).
   */
  check(key: string): boolean {
    const e = this.#entries.get(key);
    if (!e) return false;
    const left = e.until - this.#now();
    if (left <= 0) return true; // kept (for the doubling) until it is replaced or evicted
    throw new CsiError(
      e.code,
      `${e.message} (remembered from a recent attempt; Cinder is asked again in ${Math.ceil(left / 1000)} s)`,
    );
  }

  remember(key: string, err: CsiError): void {
    const prev = this.#entries.get(key);
    const backoffMs = prev ? Math.min(this.#maxMs, prev.backoffMs * 2) : this.#baseMs;
    this.#entries.delete(key);
    this.#entries.set(key, {
      code: err.code,
      message: err.message,
      until: this.#now() + backoffMs,
      backoffMs,
    });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  forget(key: string): void {
    this.#entries.delete(key);
  }
}
