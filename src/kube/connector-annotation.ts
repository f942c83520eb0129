import type { HostConnector } from '../openstack/cinder-types.ts';
import { isSecretKey } from '../util/logger.ts';

/**
 * The host connector a node plugin publishes on its own Node object, as the annotation
 * `<driver-name>/connector`:
 *
 *   { "version": 1, "connector": { "host": "node-1", "initiator": "iqn...", "ip": "10.0.0.5", ... } }
 *
 * The connector is the os-brick style dict Cinder's attachments API takes. It holds no secrets,
 * and the parser rejects any secret-named field so a bug on the node side cannot leak one into
 * the (world-readable) Node object.
 */

export const CONNECTOR_SCHEMA_VERSION = 1;

/** Annotation key on the Node object: `<driver-name>/connector`. */
export function connectorAnnotationKey(driverName: string): string {
  return `${driverName}/connector`;
}

export type ConnectorParseResult = { ok: true; connector: HostConnector } | { ok: false; reason: string };

/** Typed fields of the connector: when present, they must have this JSON type. */
const FIELD_TYPES: Readonly<Record<string, 'string' | 'boolean'>> = {
  host: 'string',
  initiator: 'string',
  ip: 'string',
  platform: 'string',
  os_type: 'string',
  nqn: 'string',
  multipath: 'boolean',
  do_local_attach: 'boolean',
};

/** Upper bound for the annotation value; Kubernetes allows 256 KiB for all annotations together. */
const MAX_ANNOTATION_BYTES = 16 * 1024;

/** Checks a connector object; returns the reason it is unusable, or undefined when it is fine. */
export function connectorProblem(connector: unknown): string | undefined {
  if (connector === null || typeof connector !== 'object' || Array.isArray(connector)) {
    return 'connector is not a JSON object';
  }
  const c = connector as Record<string, unknown>;
  if (typeof c.host !== 'string' || c.host.trim() === '') return 'connector.host is missing or empty';
  for (const [field, type] of Object.entries(FIELD_TYPES)) {
    if (c[field] !== undefined && typeof c[field] !== type) {
      return `connector.${field} must be a ${type}, got ${Array.isArray(c[field]) ? 'array' : typeof c[field]}`;
    }
  }
  const secret = Object.keys(c).find((k) => isSecretKey(k));
  if (secret !== undefined) return `connector carries a secret-named field "${secret}" (refused)`;
  return undefined;
}

/** The annotation value for a connector. Throws when the connector itself is unusable. */
export function encodeConnectorAnnotation(connector: HostConnector): string {
  const problem = connectorProblem(connector);
  if (problem !== undefined) throw new TypeError(`cannot publish host connector: ${problem}`);
  return JSON.stringify({ version: CONNECTOR_SCHEMA_VERSION, connector });
}

/**
 * Parses an annotation value. Never throws: a malformed value gives `{ ok: false, reason }` with a
 * reason fit for a FAILED_PRECONDITION message (it never echoes the value).
 */
export function parseConnectorAnnotation(value: string): ConnectorParseResult {
  if (value.length > MAX_ANNOTATION_BYTES) {
    return { ok: false, reason: `annotation is larger than ${MAX_ANNOTATION_BYTES} bytes` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch (err) {
    return { ok: false, reason: `annotation is not valid JSON (${(err as Error).message})` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { ok: false, reason: 'annotation is not a JSON object' };
  }
  const { version, connector } = doc as { version?: unknown; connector?: unknown };
  if (version === undefined) return { ok: false, reason: 'annotation has no "version" field' };
  if (version !== CONNECTOR_SCHEMA_VERSION) {
    return {
      ok: false,
      reason: `unsupported connector schema version ${JSON.stringify(version)} (this controller reads version ${CONNECTOR_SCHEMA_VERSION}); upgrade the controller or the node plugin so they match`,
    };
  }
  if (connector === undefined) return { ok: false, reason: 'annotation has no "connector" field' };
  const problem = connectorProblem(connector);
  if (problem !== undefined) return { ok: false, reason: problem };
  return { ok: true, connector: connector as HostConnector };
}

/** Stable comparison of two connectors (key order independent), to skip no-op publications. */
export function sameConnector(a: HostConnector, b: HostConnector): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}
