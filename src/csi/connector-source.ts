/**
 * Where the controller gets a node's host connector (os-brick `get_connector_properties` dict)
 * for ControllerPublishVolume. The node id is the Kubernetes node name and equals the connector's
 * `host` (Cinder records it as the attachment's host).
 *
 * Implementations here: `StaticConnectorSource` (a JSON file or flag value, for tests and COs
 * without Kubernetes) and `LocalConnectorSource` (mode `all`: the local node service's own
 * connector). The Kubernetes Node-annotation source lives in src/kube.
 */
import { readFileSync } from 'node:fs';
import type { HostConnector } from '../openstack/cinder-types.ts';

export interface ConnectorSource {
  /**
   * The connector of `nodeId`; `undefined` when the node is unknown (→ NOT_FOUND).
   * Throws `NoConnectorError` when the node exists but has not published a connector yet
   * (→ FAILED_PRECONDITION: the node plugin is not running or not registered).
   */
  get(nodeId: string, signal?: AbortSignal): Promise<HostConnector | undefined>;
}

/** The node is known but has no (valid) connector. */
export class NoConnectorError extends Error {
  override name = 'NoConnectorError';
  readonly nodeId: string;
  constructor(nodeId: string, why: string) {
    super(`node ${nodeId} has no host connector: ${why}`);
    this.nodeId = nodeId;
  }
}

/** A connector file/flag that cannot be used. Names the source, never echoes values. */
export class ConnectorConfigError extends Error {
  override name = 'ConnectorConfigError';
}

/**
 * Connectors from a fixed map `{ "<node>": { <connector> } | null }` (null: node known, no
 * connector). Each connector must be an object whose `host`, when present, equals the node id
 * (it is filled in when absent).
 */
export class StaticConnectorSource implements ConnectorSource {
  readonly #nodes: ReadonlyMap<string, HostConnector | null>;

  constructor(nodes: Record<string, HostConnector | null>) {
    this.#nodes = validateMap(nodes, 'connector map');
  }

  /** Parses a JSON document (a flag value or a file's content). `origin` names it in errors. */
  static fromJson(text: string, origin = 'connector JSON'): StaticConnectorSource {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConnectorConfigError(`${origin}: not valid JSON (${(err as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConnectorConfigError(`${origin}: expected an object { "<node name>": { connector } }`);
    }
    return new StaticConnectorSource(validateMapOrThrow(parsed as Record<string, unknown>, origin));
  }

  /** Reads the file once, synchronously (start-up configuration). */
  static fromFile(path: string): StaticConnectorSource {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConnectorConfigError(
        `connector file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      );
    }
    return StaticConnectorSource.fromJson(text, `connector file ${path}`);
  }

  async get(nodeId: string): Promise<HostConnector | undefined> {
    if (!this.#nodes.has(nodeId)) return undefined;
    const c = this.#nodes.get(nodeId);
    if (!c) throw new NoConnectorError(nodeId, 'none configured for it');
    return { ...c };
  }

  get nodes(): string[] {
    return [...this.#nodes.keys()];
  }
}

export type LocalConnectorFn = (
  signal?: AbortSignal,
) => HostConnector | undefined | Promise<HostConnector | undefined>;

/** Mode `all`: the only node is this one; its connector comes from the local node service. */
export class LocalConnectorSource implements ConnectorSource {
  readonly #nodeId: string;
  readonly #connector: LocalConnectorFn;

  constructor(nodeId: string, connector: LocalConnectorFn) {
    this.#nodeId = nodeId;
    this.#connector = connector;
  }

  async get(nodeId: string, signal?: AbortSignal): Promise<HostConnector | undefined> {
    if (nodeId !== this.#nodeId) return undefined;
    const c = await this.#connector(signal);
    if (!c) throw new NoConnectorError(nodeId, 'the local node service has not computed it yet');
    if (c.host !== nodeId)
      throw new NoConnectorError(nodeId, `its host field is "${c.host}", not the node id`);
    return { ...c };
  }
}

/**
 * True for "the node exists but has no usable connector" from any source: `NoConnectorError`, or
 * the Kubernetes source's ConnectorNotRegisteredError / MalformedConnectorError (→ FAILED_PRECONDITION).
 */
export function isNoConnectorError(err: unknown): err is Error {
  if (err instanceof NoConnectorError) return true;
  return (
    err instanceof Error &&
    (err.name === 'ConnectorNotRegisteredError' || err.name === 'MalformedConnectorError')
  );
}

/**
 * Asks each source in turn; the first connector found wins. When no source knows the node →
 * undefined; when some source knows it without a connector → that source's error.
 */
export function chainConnectorSources(sources: readonly ConnectorSource[]): ConnectorSource {
  if (sources.length === 1 && sources[0]) return sources[0];
  return {
    async get(nodeId, signal) {
      let known: unknown;
      for (const s of sources) {
        try {
          const c = await s.get(nodeId, signal);
          if (c) return c;
        } catch (err) {
          if (!isNoConnectorError(err)) throw err;
          known ??= err;
        }
      }
      if (known) throw known;
      return undefined;
    },
  };
}

function validateMapOrThrow(
  raw: Record<string, unknown>,
  origin: string,
): Record<string, HostConnector | null> {
  const out: Record<string, HostConnector | null> = {};
  for (const [node, value] of Object.entries(raw)) {
    if (value === null) {
      out[node] = null;
      continue;
    }
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new ConnectorConfigError(`${origin}: connector of node "${node}" must be an object or null`);
    }
    out[node] = value as HostConnector;
  }
  return out;
}

function validateMap(
  nodes: Record<string, HostConnector | null>,
  origin: string,
): Map<string, HostConnector | null> {
  const map = new Map<string, HostConnector | null>();
  for (const [node, c] of Object.entries(nodes)) {
    if (node === '') throw new ConnectorConfigError(`${origin}: empty node name`);
    if (c === null) {
      map.set(node, null);
      continue;
    }
    if (c.host !== undefined && c.host !== node) {
      throw new ConnectorConfigError(
        `${origin}: connector of node "${node}" has host "${String(c.host)}"; it must equal the node name`,
      );
    }
    map.set(node, { ...c, host: node });
  }
  return map;
}
