/**
 * Per-key in-flight guard. `tryAcquire(key)` returns a release function, or undefined when an
 * operation on that key is already running; the CSI layer answers ABORTED then, as the spec asks,
 * and the sidecars retry. No global lock: different keys never wait on each other.
 */
export class KeyedLocks {
  readonly #held = new Set<string>();

  tryAcquire(...keys: string[]): (() => void) | undefined {
    if (keys.some((k) => this.#held.has(k))) return undefined;
    for (const k of keys) this.#held.add(k);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of keys) this.#held.delete(k);
    };
  }

  isHeld(key: string): boolean {
    return this.#held.has(key);
  }

  get size(): number {
    return this.#held.size;
  }
}
