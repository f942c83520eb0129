/**
 * A re-readable cloud configuration for credential rotation.
 *
 * `watch()` watches the *directories* of every file the configuration was read from (and of the
 * files their symlinks resolve to): a Kubernetes Secret volume updates by swapping its `..data`
 * symlink, an event that a watch on the file itself misses. Events are debounced; the files are
 * re-read and `onChange` runs only when the resulting configuration differs from the last one.
 * A reload that fails validation (e.g. a half-written file) is logged and the previous
 * configuration stays in force. A slow poll backs up `fs.watch`, which some file systems lack.
 */
import { type FSWatcher, watch as fsWatch, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../util/logger.ts';
import { silentLogger } from '../util/logger.ts';
import { type CloudConfigOptions, type LoadedCloudConfig, loadCloudConfigDetailed } from './load.ts';
import type { CloudConfig } from './types.ts';

export interface CloudConfigSourceOptions extends CloudConfigOptions {
  /** Debug lines for ignored keys, warnings for failed reloads. */
  log?: Logger;
  /** Quiet time after the last file event before re-reading (default 200 ms). */
  debounceMs?: number;
  /** Re-read this often even without file events (default 60 s; 0 disables). */
  pollIntervalMs?: number;
}

export class CloudConfigSource {
  readonly #opts: CloudConfigSourceOptions;
  #log: Logger;
  #last: LoadedCloudConfig | undefined;

  constructor(opts: CloudConfigSourceOptions = {}) {
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger();
  }

  /** The configuration of the last successful `load()`, if any. */
  get current(): CloudConfig | undefined {
    return this.#last?.config;
  }

  /** Files the last successful load read (absolute paths). */
  get files(): readonly string[] {
    return this.#last?.files ?? [];
  }

  /** Re-reads and validates every source; throws `ConfigError`. The result becomes `current`. */
  load(): CloudConfig {
    const loaded = loadCloudConfigDetailed(this.#opts);
    // Notes (ignored keys, fallbacks) once, not on every periodic re-read.
    if (!isDeepStrictEqual(loaded.notes, this.#last?.notes)) {
      for (const note of loaded.notes) this.#log.debug({ source: loaded.source }, note);
    }
    this.#last = loaded;
    return loaded.config;
  }

  /**
   * Calls `onChange` with the new configuration whenever the files change to a different valid
   * configuration. Loads first if nothing was loaded yet (and throws if that fails). Returns a
   * function that stops watching.
   */
  watch(onChange: (cfg: CloudConfig) => void, log?: Logger): () => void {
    if (log) this.#log = log;
    if (this.#last === undefined) this.load();
    const debounceMs = this.#opts.debounceMs ?? 200;
    const pollMs = this.#opts.pollIntervalMs ?? 60_000;
    const watchers = new Map<string, FSWatcher>();
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;

    const reload = (): void => {
      timer = undefined;
      if (stopped) return;
      const previous = this.#last?.config;
      let next: CloudConfig;
      try {
        next = this.load();
      } catch (err) {
        // ConfigError messages never contain secret values.
        this.#log.warn(
          { err: { name: (err as Error).name, message: (err as Error).message } },
          'cloud configuration reload failed; keeping the previous configuration',
        );
        return;
      } finally {
        syncWatchers();
      }
      if (isDeepStrictEqual(previous, next)) return;
      this.#log.info({ files: this.files }, 'cloud configuration changed');
      try {
        onChange(next);
      } catch (err) {
        this.#log.error({ err }, 'cloud configuration change handler failed');
      }
    };

    const schedule = (): void => {
      if (stopped) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(reload, debounceMs);
      timer.unref();
    };

    const syncWatchers = (): void => {
      if (stopped) return;
      const wanted = new Set<string>();
      for (const file of this.files) {
        wanted.add(dirname(file));
        try {
          wanted.add(dirname(realpathSync(file)));
        } catch {
          // The file is gone (mid-rotation): its directory watch will see it come back.
        }
      }
      for (const [dir, w] of watchers) {
        if (!wanted.has(dir)) {
          w.close();
          watchers.delete(dir);
        }
      }
      for (const dir of wanted) {
        if (watchers.has(dir)) continue;
        try {
          const w = fsWatch(dir, { persistent: false }, schedule);
          w.on('error', (err) => {
            this.#log.warn({ dir, err: err.message }, 'cloud configuration watch failed; relying on polling');
            w.close();
            watchers.delete(dir);
          });
          watchers.set(dir, w);
        } catch (err) {
          this.#log.warn({ dir, err: (err as Error).message }, 'cannot watch cloud configuration directory');
        }
      }
    };

    syncWatchers();
    const poll = pollMs > 0 ? setInterval(schedule, pollMs) : undefined;
    poll?.unref();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    };
  }
}
