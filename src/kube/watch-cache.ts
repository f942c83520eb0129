import { AbortedError, sleep } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';

/**
 * A list+watch cache of one Kubernetes resource (what client-go calls a reflector + store):
 * list, then watch from the list's resourceVersion; on a closed or broken watch, re-watch from
 * the last seen resourceVersion; on 410 Gone (the version was compacted away), re-list; on any
 * error, back off exponentially (with jitter) and retry; re-list every `resyncMs` anyway. The
 * store keeps a projection of each object (not the object itself) to stay small.
 */

export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  | { type: 'BOOKMARK'; resourceVersion: string };

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface ListWatcher<T> {
  list(signal: AbortSignal): Promise<ListResult<T>>;
  /**
   * Streams events after `resourceVersion`. Resolves when the server ends the stream; rejects
   * with WatchGoneError when the version is too old, with another error on failure.
   */
  watch(resourceVersion: string, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void>;
}

/** The watch's resourceVersion is no longer available (HTTP 410 / Status reason Expired). */
export class WatchGoneError extends Error {
  override name = 'WatchGoneError';
}

export type CacheEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchCacheOptions<T, V> {
  /** For logs, e.g. "nodes". */
  name: string;
  source: ListWatcher<T>;
  /** Key of an object (e.g. metadata.name); undefined skips the object. */
  keyOf(obj: T): string | undefined;
  /** What the store keeps of an object. */
  project(obj: T): V;
  logger: Logger;
  /** Full re-list period (default 10 min). */
  resyncMs?: number;
  /** Backoff after errors: first delay and cap (defaults 500 ms, 30 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Called for every change of the store, including changes found by a re-list. */
  onChange?(type: CacheEventType, key: string, value: V | undefined, old: V | undefined): void;
}

export class WatchCache<T, V> {
  readonly #opts: WatchCacheOptions<T, V>;
  readonly #store = new Map<string, V>();
  readonly #abort = new AbortController();
  #resourceVersion = '';
  #synced = false;
  #running: Promise<void> | undefined;
  #resolveReady!: () => void;
  /** Resolves after the first successful list. */
  readonly ready: Promise<void>;
  /** Counters for tests and metrics. */
  readonly stats = { lists: 0, watches: 0, errors: 0, gone: 0 };

  constructor(opts: WatchCacheOptions<T, V>) {
    this.#opts = opts;
    this.ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
  }

  get synced(): boolean {
    return this.#synced;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  get(key: string): V | undefined {
    return this.#store.get(key);
  }

  has(key: string): boolean {
    return this.#store.has(key);
  }

  values(): IterableIterator<V> {
    return this.#store.values();
  }

  get size(): number {
    return this.#store.size;
  }

  /** Starts the list+watch loop (idempotent). */
  start(): void {
    this.#running ??= this.#loop().catch((err) => {
      if (!(err instanceof AbortedError))
        this.#opts.logger.error({ err }, `${this.#opts.name} cache stopped`);
    });
  }

  async stop(): Promise<void> {
    this.#abort.abort(new Error(`${this.#opts.name} cache stopped`));
    await this.#running;
  }

  /** Waits for the first sync, or rejects when `signal` fires first. */
  async waitReady(signal?: AbortSignal): Promise<void> {
    if (this.#synced) return;
    if (!signal) return this.ready;
    await Promise.race([
      this.ready,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(new AbortedError(signal.reason));
        signal.addEventListener('abort', () => reject(new AbortedError(signal.reason)), { once: true });
      }),
    ]);
  }

  async #loop(): Promise<void> {
    const { logger, name } = this.#opts;
    const signal = this.#abort.signal;
    const initial = this.#opts.backoffInitialMs ?? 500;
    const max = this.#opts.backoffMaxMs ?? 30_000;
    const resyncMs = this.#opts.resyncMs ?? 600_000;
    let delay = initial;
    let needList = true;
    let lastList = 0;
    let failing = false;
    while (!signal.aborted) {
      try {
        if (needList || Date.now() - lastList >= resyncMs) {
          const res = await this.#opts.source.list(signal);
          this.stats.lists++;
          this.#replace(res.items);
          this.#resourceVersion = res.resourceVersion;
          lastList = Date.now();
          needList = false;
          if (!this.#synced) {
            this.#synced = true;
            this.#resolveReady();
          }
          if (failing)
            logger.info({ resource: name }, `${name} cache: Kubernetes API reachable again, re-listed`);
          failing = false;
        }
        this.stats.watches++;
        // a watch ends on its own after the server-side timeout; the resync check above runs between watches
        const started = Date.now();
        await this.#opts.source.watch(this.#resourceVersion, (e) => this.#apply(e), signal);
        if (Date.now() - started < 1000) {
          // a server that closes watches at once must not make this a busy loop
          await sleep(delay, signal).catch(() => undefined);
          delay = Math.min(delay * 2, max);
        } else {
          delay = initial;
        }
      } catch (err) {
        if (signal.aborted) break;
        this.stats.errors++;
        if (err instanceof WatchGoneError) {
          this.stats.gone++;
          logger.info({ resource: name }, `${name} cache: watch expired (410 Gone), re-listing`);
          needList = true;
          continue;
        }
        // after a failure we cannot know what we missed reliably if the watch cannot resume; a
        // re-list on the next success is cheap and always correct
        needList = true;
        const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
        const log = failing ? logger.debug.bind(logger) : logger.warn.bind(logger);
        log(
          { resource: name, err: (err as Error).message, retryInMs: wait },
          `${name} cache: list/watch failed, retrying (serving the last known state)`,
        );
        failing = true;
        await sleep(wait, signal).catch(() => undefined);
        delay = Math.min(delay * 2, max);
      }
    }
  }

  #apply(e: WatchEvent<T>): void {
    if (e.type === 'BOOKMARK') {
      this.#resourceVersion = e.resourceVersion;
      return;
    }
    const rv = (e.object as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion;
    if (rv) this.#resourceVersion = rv;
    const key = this.#opts.keyOf(e.object);
    if (key === undefined) return;
    const old = this.#store.get(key);
    if (e.type === 'DELETED') {
      if (this.#store.delete(key)) this.#opts.onChange?.('DELETED', key, undefined, old);
      return;
    }
    const value = this.#opts.project(e.object);
    this.#store.set(key, value);
    this.#opts.onChange?.(old === undefined ? 'ADDED' : 'MODIFIED', key, value, old);
  }

  /** Replaces the store with a fresh list, reporting the differences as changes. */
  #replace(items: T[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      const key = this.#opts.keyOf(obj);
      if (key === undefined) continue;
      seen.add(key);
      const old = this.#store.get(key);
      const value = this.#opts.project(obj);
      this.#store.set(key, value);
      if (old === undefined) this.#opts.onChange?.('ADDED', key, value, undefined);
      else if (JSON.stringify(old) !== JSON.stringify(value))
        this.#opts.onChange?.('MODIFIED', key, value, old);
    }
    for (const [key, old] of [...this.#store]) {
      if (!seen.has(key)) {
        this.#store.delete(key);
        this.#opts.onChange?.('DELETED', key, undefined, old);
      }
    }
  }
}
