/**
 * StorageClass / VolumeSnapshotClass / VolumeAttributesClass parameters and volume capabilities.
 *
 * CreateVolume `parameters` (names kept from the upstream cinder-csi-plugin where they exist):
 *   type            Cinder volume type (name or id)
 *   availability    availability zone (wins over the topology requirement)
 *   imageRef        Glance image id or name to create the volume from (content source must be empty)
 *   schedulerHints  Cinder scheduler hints: `key=value,key=value` or a JSON object
 *                   (e.g. `different_host=<volume id>`)
 *   metadata        extra metadata for the Cinder volume: `key=value,...` or a JSON object of strings
 *   csi.storage.k8s.io/pvc/name, /pvc/namespace, /pv/name  (external-provisioner
 *                   `--extra-create-metadata`): stored verbatim as volume metadata
 *   fsType (any case, e.g. `fstype`) external-provisioner takes it as the filesystem type (it
 *                   reaches the node in the volume capability) but still passes it on: ignored here
 * Anything else is INVALID_ARGUMENT naming the unknown keys. Every value that reaches Cinder must be
 * storable there: no control characters and no 4-byte UTF-8 (Cinder's MySQL columns are 3-byte
 * utf8 and answer such text with HTTP 500), at most 255 characters.
 *
 * Mutable parameters (CreateVolume `mutable_parameters`, ControllerModifyVolume):
 *   type            volume type to retype to
 *   migrationPolicy `never` (default) or `on-demand` (let Cinder migrate the data between backends)
 *
 * CreateSnapshot `parameters`:
 *   type            `snapshot` (default) or `backup` (a Cinder backup, taken from a temporary snapshot)
 *   force           `true`/`false`: allow snapshots of in-use volumes (default true, as the CO
 *                   snapshots volumes that pods use)
 *   csi.storage.k8s.io/volumesnapshot/name, .../namespace, .../volumesnapshotcontent/name: metadata
 */

import { multiNodeWriterMountProblem } from '../access-modes.ts';
import { invalidArgument } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { SNAPSHOT_EXTRA_METADATA, VOLUME_EXTRA_METADATA } from './context.ts';

export interface VolumeParams {
  type?: string;
  availability?: string;
  imageRef?: string;
  schedulerHints?: Record<string, string>;
  /** User metadata + extra-create-metadata (never the driver's own keys). */
  metadata: Record<string, string>;
}

export interface MutableParams {
  type?: string;
  migrationPolicy: 'never' | 'on-demand';
}

export interface SnapshotParams {
  kind: 'snapshot' | 'backup';
  force: boolean;
  metadata: Record<string, string>;
}

const VOLUME_KEYS = new Set<string>([
  'type',
  'availability',
  'imageRef',
  'schedulerHints',
  'metadata',
  ...VOLUME_EXTRA_METADATA,
]);
const MUTABLE_KEYS = new Set<string>(['type', 'migrationPolicy']);
const SNAPSHOT_KEYS = new Set<string>(['type', 'force', ...SNAPSHOT_EXTRA_METADATA]);

/** The provisioner's filesystem type key, in any case (`fsType`, `fstype`, `FSTYPE`). */
const isFsTypeKey = (k: string) => k.toLowerCase() === 'fstype';

function rejectUnknown(params: Record<string, string>, allowed: ReadonlySet<string>, what: string): void {
  const unknown = Object.keys(params).filter(
    (k) => !allowed.has(k) && !(allowed === VOLUME_KEYS && isFsTypeKey(k)),
  );
  if (unknown.length > 0) {
    throw invalidArgument(
      `unknown ${what} ${unknown
        .slice(0, 5)
        .map((k) => `"${k.slice(0, 40)}"`)
        .join(
          ', ',
        )}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}; supported: ${[...allowed].join(', ')}`,
    );
  }
}

/** `k=v,k2=v2` or a JSON object of strings. */
function parseMap(value: string, what: string): Record<string, string> {
  const text = value.trim();
  if (text === '') return {};
  if (text.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      throw invalidArgument(`parameter ${what}: not valid JSON`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw invalidArgument(`parameter ${what}: expected a JSON object`);
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj)) {
      if (typeof v !== 'string') throw invalidArgument(`parameter ${what}: value of "${k}" must be a string`);
      out[k] = v;
    }
    return out;
  }
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalidArgument(`parameter ${what}: "${part.trim()}" is not key=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

const UNSTORABLE = /[\u0000-\u001f\u007f]|[\u{10000}-\u{10ffff}]|[\ud800-\udfff]/u;

/** INVALID_ARGUMENT unless Cinder can store `value` (see the module comment). */
export function checkCinderText(value: string, what: string, max = 255): string {
  if (value.length > max) throw invalidArgument(`${what} is longer than ${max} characters`);
  if (UNSTORABLE.test(value)) {
    throw invalidArgument(
      `${what} contains a control character or a 4-byte UTF-8 character (e.g. an emoji), which Cinder cannot store`,
    );
  }
  return value;
}

export function parseVolumeParams(params: Record<string, string> | undefined): VolumeParams {
  const p = params ?? {};
  rejectUnknown(p, VOLUME_KEYS, 'StorageClass parameter(s)');
  for (const k of ['type', 'availability', 'imageRef'] as const) {
    if (p[k]) checkCinderText(p[k], `parameter ${k}`);
  }
  const out: VolumeParams = { metadata: {} };
  if (p['type']) out.type = p['type'];
  if (p['availability']) out.availability = p['availability'];
  if (p['imageRef']) out.imageRef = p['imageRef'];
  if (p['schedulerHints']) out.schedulerHints = parseMap(p['schedulerHints'], 'schedulerHints');
  if (p['metadata']) {
    out.metadata = parseMap(p['metadata'], 'metadata');
    const reserved = Object.keys(out.metadata).filter((k) => k.startsWith('cinder.csi.dev/'));
    if (reserved.length > 0)
      throw invalidArgument(`parameter metadata: keys ${reserved.join(', ')} are reserved`);
  }
  for (const k of VOLUME_EXTRA_METADATA) if (p[k]) out.metadata[k] = checkCinderText(p[k], `parameter ${k}`);
  for (const [k, v] of Object.entries(out.metadata)) {
    if (k.length > 255 || v.length > 255)
      throw invalidArgument(`metadata "${k.slice(0, 40)}": Cinder allows 255 characters`);
    checkCinderText(k, 'a metadata key');
    checkCinderText(v, `metadata "${k.slice(0, 40)}"`);
  }
  for (const [k, v] of Object.entries(out.schedulerHints ?? {})) {
    checkCinderText(k, 'a schedulerHints key');
    checkCinderText(v, `schedulerHints "${k.slice(0, 40)}"`);
  }
  return out;
}

export function parseMutableParams(params: Record<string, string> | undefined): MutableParams {
  const p = params ?? {};
  rejectUnknown(p, MUTABLE_KEYS, 'mutable parameter(s)');
  const policy = p['migrationPolicy'] ?? 'never';
  if (policy !== 'never' && policy !== 'on-demand') {
    throw invalidArgument(
      `mutable parameter migrationPolicy must be "never" or "on-demand", not "${policy}"`,
    );
  }
  if (p['migrationPolicy'] !== undefined && !p['type']) {
    throw invalidArgument('mutable parameter migrationPolicy only applies together with type');
  }
  const out: MutableParams = { migrationPolicy: policy };
  if (p['type']) out.type = checkCinderText(p['type'], 'mutable parameter type');
  return out;
}

export function parseSnapshotParams(params: Record<string, string> | undefined): SnapshotParams {
  const p = params ?? {};
  rejectUnknown(p, SNAPSHOT_KEYS, 'VolumeSnapshotClass parameter(s)');
  const kind = p['type'] ?? 'snapshot';
  if (kind !== 'snapshot' && kind !== 'backup') {
    throw invalidArgument(`VolumeSnapshotClass parameter type must be "snapshot" or "backup", not "${kind}"`);
  }
  const force = p['force'] ?? 'true';
  if (force !== 'true' && force !== 'false')
    throw invalidArgument('VolumeSnapshotClass parameter force must be true or false');
  const metadata: Record<string, string> = {};
  for (const k of SNAPSHOT_EXTRA_METADATA) if (p[k]) metadata[k] = checkCinderText(p[k], `parameter ${k}`);
  return { kind, force: force === 'true', metadata };
}

// ---------------------------------------------------------------- capabilities

const MULTI_NODE = new Set(['MULTI_NODE_READER_ONLY', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER']);
const KNOWN_MODES = new Set([
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
  ...MULTI_NODE,
]);

export function accessModeOf(cap: csi.VolumeCapability__Output): string {
  return String(cap.access_mode?.mode ?? 'UNKNOWN');
}

export function isMultiNode(cap: csi.VolumeCapability__Output): boolean {
  return MULTI_NODE.has(accessModeOf(cap));
}

export function isReadOnlyMode(cap: csi.VolumeCapability__Output): boolean {
  const m = accessModeOf(cap);
  return m === 'SINGLE_NODE_READER_ONLY' || m === 'MULTI_NODE_READER_ONLY';
}

/**
 * Why the driver cannot provide `cap` for a volume with the given multiattach flag, or undefined
 * when it can. Block and mount are both supported; multi-node modes need a multiattach volume, and
 * a writable multi-node mode needs block access (the Node service's reason, src/csi/access-modes.ts:
 * a filesystem written from several nodes is corrupted).
 */
export function capabilityProblem(
  cap: csi.VolumeCapability__Output,
  multiattach: boolean,
): string | undefined {
  const mode = accessModeOf(cap);
  if (!KNOWN_MODES.has(mode)) return `access mode ${mode} is not supported`;
  if (!cap.block && !cap.mount) return 'access type (block or mount) is missing';
  const shared = multiNodeWriterMountProblem(mode, cap);
  if (shared) return shared;
  if (MULTI_NODE.has(mode) && !multiattach) {
    return `access mode ${mode} needs a multiattach volume (a volume type with multiattach="<is> True")`;
  }
  return undefined;
}

/** INVALID_ARGUMENT when capabilities are missing or malformed (independent of any volume). */
export function requireCapabilities(
  caps: csi.VolumeCapability__Output[] | undefined,
  field = 'volume_capabilities',
) {
  if (!caps || caps.length === 0) throw invalidArgument(`${field} is required`);
  for (const cap of caps) {
    const mode = accessModeOf(cap);
    if (!KNOWN_MODES.has(mode)) throw invalidArgument(`${field}: access mode ${mode} is not supported`);
    if (!cap.block && !cap.mount) throw invalidArgument(`${field}: access type (block or mount) is missing`);
    const shared = multiNodeWriterMountProblem(mode, cap);
    if (shared) throw invalidArgument(`${field}: ${shared}`);
  }
}
