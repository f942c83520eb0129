import type { HostConnector } from '../openstack/cinder-types.ts';
import { sleep } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import { connectorAnnotationKey, encodeConnectorAnnotation, sameConnector } from './connector-annotation.ts';
import { type KubeApi, toKubeApiError } from './kube-api.ts';

/**
 * Node side of the connector exchange: writes this host's connector into the annotation
 * `<driver-name>/connector` of its own Node object (JSON merge patch, nothing else touched).
 *
 * `publish(connector)` never throws and never blocks the caller's serving: it records the desired
 * connector and a background loop writes it, retrying with exponential backoff (and jitter) while
 * the API is down or RBAC forbids it, logging once per failure streak with a clear cause. The
 * annotation is re-applied every `refreshMs` (a no-op patch costs the API server no write), so a
 * removed or overwritten annotation comes back.
 */

export interface ConnectorPublisherOptions {
  api: Pick<KubeApi, 'patchNodeAnnotations'>;
  nodeName: string;
  driverName: string;
  logger: Logger;
  /** Backoff after a failed write: first delay and cap (defaults 1 s, 60 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Re-apply period after success (default 10 min; 0 disables). */
  refreshMs?: number;
}

export type PublisherState = 'idle' | 'publishing' | 'published' | 'failing' | 'stopped';

export class ConnectorPublisher {
  readonly #opts: ConnectorPublisherOptions;
  readonly #key: string;
  readonly #abort = new AbortController();
  #desired: HostConnector | undefined;
  #published: HostConnector | undefined;
  #state: PublisherState = 'idle';
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #waiters: { connector: HostConnector; resolve: () => void }[] = [];
  /** Successful writes and failed attempts (tests, metrics). */
  readonly stats = { writes: 0, failures: 0 };
  /** The last failure, for health reporting; cleared on success. */
  lastError: string | undefined;

  constructor(opts: ConnectorPublisherOptions) {
    this.#opts = opts;
    this.#key = connectorAnnotationKey(opts.driverName);
  }

  get state(): PublisherState {
    return this.#state;
  }

  get annotationKey(): string {
    return this.#key;
  }

  /**
   * Sets the connector to publish (start-up, or when it changed, e.g. a new initiator name or IP).
   * Throws only for a connector that can never be published (invalid, carrying secrets, or whose
   * `host` is not the node name).
   */
  publish(connector: HostConnector): void {
    encodeConnectorAnnotation(connector); // validate now, in the caller's context
    if (connector.host !== this.#opts.nodeName) {
      // the controller requires host == node name (see KubeConnectorSource)
      throw new TypeError(
        `cannot publish host connector: its host "${connector.host}" is not the node name "${this.#opts.nodeName}"`,
      );
    }
    if (this.#desired && sameConnector(this.#desired, connector)) return;
    this.#desired = connector;
    if (this.#state === 'stopped') return;
    this.#loop ??= this.#run();
    this.#wake?.();
  }

  /** Resolves once `connector` (default: the current desired one) has been written. */
  whenPublished(connector?: HostConnector): Promise<void> {
    const c = connector ?? this.#desired;
    if (!c) return Promise.reject(new Error('nothing to publish'));
    if (this.#published && sameConnector(this.#published, c)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ connector: c, resolve }));
  }

  async stop(): Promise<void> {
    this.#state = 'stopped';
    this.#abort.abort(new Error('connector publisher stopped'));
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { api, nodeName, logger } = this.#opts;
    const signal = this.#abort.signal;
    const initial = this.#opts.backoffInitialMs ?? 1000;
    const max = this.#opts.backoffMaxMs ?? 60_000;
    const refreshMs = this.#opts.refreshMs ?? 600_000;
    let delay = initial;
    let failing = false;
    while (!signal.aborted) {
      const connector = this.#desired;
      if (!connector) break;
      this.#state = failing ? 'failing' : 'publishing';
      let wait: number;
      try {
        await api.patchNodeAnnotations(
          nodeName,
          { [this.#key]: encodeConnectorAnnotation(connector) },
          { signal },
        );
        this.stats.writes++;
        const changed = !this.#published || !sameConnector(this.#published, connector);
        this.#published = connector;
        this.lastError = undefined;
        this.#state = 'published';
        if (changed || failing) {
          logger.info(
            { node: nodeName, annotation: this.#key, host: connector.host },
            failing
              ? 'host connector published on the Node (after failures)'
              : 'host connector published on the Node',
          );
        }
        failing = false;
        delay = initial;
        this.#waiters = this.#waiters.filter((w) => {
          if (!sameConnector(w.connector, connector)) return true;
          w.resolve();
          return false;
        });
        if (this.#desired !== connector) continue; // changed while we were writing
        if (refreshMs <= 0) {
          await this.#sleepUntilWoken(undefined);
          continue;
        }
        wait = refreshMs;
      } catch (err) {
        if (signal.aborted) break;
        this.stats.failures++;
        const e = toKubeApiError(err, `patch node ${nodeName}`);
        this.lastError = e.message;
        wait = Math.round(delay * (0.8 + Math.random() * 0.4));
        delay = Math.min(delay * 2, max);
        const hint = e.forbidden
          ? `RBAC forbids it: grant the node plugin's ServiceAccount "patch" on nodes`
          : e.notFound
            ? `Node ${nodeName} does not exist: check the node name the plugin was given (it must be the Kubernetes node name)`
            : e.transient
              ? 'Kubernetes API unavailable'
              : 'the API server refused the patch';
        const fields = { node: nodeName, annotation: this.#key, err: e.message, retryInMs: wait };
        const msg = `cannot publish the host connector on the Node (${hint}); the controller cannot attach volumes to this node until it is published; retrying, node plugin keeps serving`;
        if (failing) logger.debug(fields, msg);
        else logger.error(fields, msg);
        failing = true;
        this.#state = 'failing';
      }
      await this.#sleepUntilWoken(wait);
    }
  }

  /** Sleeps `ms` (forever when undefined) or until publish()/stop() wakes the loop. */
  async #sleepUntilWoken(ms: number | undefined): Promise<void> {
    const woken = new AbortController();
    this.#wake = () => woken.abort();
    const signal = AbortSignal.any([woken.signal, this.#abort.signal]);
    if (ms === undefined) {
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } else {
      await sleep(ms, signal).catch(() => undefined);
    }
    this.#wake = undefined;
  }
}
