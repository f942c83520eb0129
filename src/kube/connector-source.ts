import type { V1Node } from '@kubernetes/client-node';
import type { HostConnector } from '../openstack/cinder-types.ts';
import type { Logger } from '../util/logger.ts';
import { connectorAnnotationKey, parseConnectorAnnotation } from './connector-annotation.ts';
import type { KubeApi } from './kube-api.ts';
import { type CacheEventType, WatchCache } from './watch-cache.ts';

/**
 * Controller side of the connector exchange: a watch-backed cache of every Node's connector
 * annotation (list+watch, resync, reconnect with backoff, 410 Gone → re-list), so
 * ControllerPublishVolume does not GET the Node on every call.
 *
 * `get(nodeId)`:
 *  - Node unknown → undefined (the CSI layer answers NOT_FOUND);
 *  - Node without the annotation → ConnectorNotRegisteredError (FAILED_PRECONDITION: the node
 *    plugin has not registered);
 *  - malformed annotation, or a connector whose host is not the node name → MalformedConnectorError
 *    with the reason (FAILED_PRECONDITION);
 *  - else the connector.
 * Both errors are recognised by name by `isNoConnectorError` (src/csi/connector-source.ts); this
 * class satisfies that file's `ConnectorSource` interface structurally (src/kube sits below src/csi
 * and does not import it).
 * A miss in the cache (node missing, or no connector) is confirmed with one GET before it is
 * reported, so a publish racing with the watch (node just added or annotated) does not fail.
 */

/** What the cache keeps per Node: only the annotation value, not the Node. */
export interface NodeConnectorEntry {
  name: string;
  uid: string | undefined;
  /** Raw annotation value, undefined when the Node has none. */
  annotation: string | undefined;
}

/** The Node exists but its plugin has not published a connector (yet). */
export class ConnectorNotRegisteredError extends Error {
  override name = 'ConnectorNotRegisteredError';
  readonly nodeId: string;
  constructor(nodeId: string, annotationKey: string) {
    super(
      `node ${nodeId} has no host connector (annotation ${annotationKey}): the node plugin has not registered on it yet`,
    );
    this.nodeId = nodeId;
  }
}

/** The Node's connector annotation cannot be used; `reason` says why. */
export class MalformedConnectorError extends Error {
  override name = 'MalformedConnectorError';
  readonly nodeId: string;
  readonly reason: string;
  constructor(nodeId: string, annotationKey: string, reason: string) {
    super(`node ${nodeId} has a malformed host connector annotation ${annotationKey}: ${reason}`);
    this.nodeId = nodeId;
    this.reason = reason;
  }
}

export interface KubeConnectorSourceOptions {
  api: KubeApi;
  driverName: string;
  logger: Logger;
  /** Full re-list period (default 10 min). */
  resyncMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Confirm cache misses with a GET (default true). */
  confirmMisses?: boolean;
}

export type NodeChangeListener = (
  type: CacheEventType,
  name: string,
  entry: NodeConnectorEntry | undefined,
) => void;

export class KubeConnectorSource {
  readonly #api: KubeApi;
  readonly #key: string;
  readonly #logger: Logger;
  readonly #confirmMisses: boolean;
  readonly #cache: WatchCache<V1Node, NodeConnectorEntry>;
  readonly #listeners = new Set<NodeChangeListener>();
  /** Resolves after the first full list of Nodes. */
  readonly ready: Promise<void>;

  constructor(opts: KubeConnectorSourceOptions) {
    this.#api = opts.api;
    this.#key = connectorAnnotationKey(opts.driverName);
    this.#logger = opts.logger;
    this.#confirmMisses = opts.confirmMisses ?? true;
    this.#cache = new WatchCache<V1Node, NodeConnectorEntry>({
      name: 'nodes',
      source: opts.api.nodes,
      keyOf: (n) => n.metadata?.name,
      project: (n) => this.#entry(n),
      logger: opts.logger,
      resyncMs: opts.resyncMs,
      backoffInitialMs: opts.backoffInitialMs,
      backoffMaxMs: opts.backoffMaxMs,
      onChange: (type, name, entry) => {
        for (const l of this.#listeners) {
          try {
            l(type, name, entry);
          } catch (err) {
            this.#logger.error({ err }, 'node change listener failed');
          }
        }
      },
    });
    this.ready = this.#cache.ready;
  }

  /** Annotation key read on Nodes. */
  get annotationKey(): string {
    return this.#key;
  }

  /** Cache counters (lists, watches, errors, 410s). */
  get stats(): Readonly<WatchCache<V1Node, NodeConnectorEntry>['stats']> {
    return this.#cache.stats;
  }

  start(): this {
    this.#cache.start();
    return this;
  }

  stop(): Promise<void> {
    return this.#cache.stop();
  }

  /** Subscribes to Node additions/changes/deletions seen by the cache (e.g. the reconciler). */
  onNodeChange(listener: NodeChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** True when the cache knows the Node (no API call). */
  hasNode(name: string): boolean {
    return this.#cache.has(name);
  }

  /** Every cached Node entry (no API call). */
  nodes(): NodeConnectorEntry[] {
    return [...this.#cache.values()];
  }

  /** The connector for a node, see the class comment. Waits for the first sync. */
  async get(nodeId: string, signal?: AbortSignal): Promise<HostConnector | undefined> {
    await this.#cache.waitReady(signal);
    let entry = this.#cache.get(nodeId);
    if (this.#confirmMisses && entry?.annotation === undefined) {
      // cache miss: the Node (or its annotation) may be newer than the watch has delivered
      const node = await this.#api.getNode(nodeId, { signal });
      entry = node ? this.#entry(node) : undefined;
    }
    if (entry === undefined) return undefined;
    return this.#parse(nodeId, entry);
  }

  #parse(nodeId: string, entry: NodeConnectorEntry): HostConnector {
    if (entry.annotation === undefined) throw new ConnectorNotRegisteredError(nodeId, this.#key);
    const res = parseConnectorAnnotation(entry.annotation);
    if (!res.ok) throw new MalformedConnectorError(nodeId, this.#key, res.reason);
    // the node id is the Kubernetes node name and must be the connector's host (Cinder records
    // it as the attachment's host; the controller matches attachments to nodes by it)
    if (res.connector.host !== nodeId) {
      throw new MalformedConnectorError(
        nodeId,
        this.#key,
        `its host is "${res.connector.host}", not the node name`,
      );
    }
    return res.connector;
  }

  /** Parsed connector of a cached Node, or undefined (no API call, never throws). */
  cachedConnector(nodeId: string): HostConnector | undefined {
    const a = this.#cache.get(nodeId)?.annotation;
    if (a === undefined) return undefined;
    const res = parseConnectorAnnotation(a);
    return res.ok ? res.connector : undefined;
  }

  #entry(n: V1Node): NodeConnectorEntry {
    return {
      name: n.metadata?.name ?? '',
      uid: n.metadata?.uid,
      annotation: n.metadata?.annotations?.[this.#key],
    };
  }
}
