/**
 * How a CSI object's identity is written into Cinder so that every retry finds what the first try
 * made, and nothing else:
 *
 * - **Cinder name** (`cinderName`): the CSI name itself when it is plain printable ASCII (every
 *   Kubernetes name is; volumes made by earlier versions keep matching), else an ASCII-safe,
 *   bounded form with a hash of the exact name (`csi-<safe prefix>-<16 hex>`). Cinder's MySQL
 *   columns are 3-byte utf8: a 4-byte character (an emoji) makes Cinder answer 500, so such a name
 *   never reaches it. The name is also the one identity a backup restore leaves alone.
 * - **Marker** metadata `cinder.csi.dev/csi-name` (`markerValue`): the exact CSI name, or
 *   `b64:<base64url of its UTF-8>` when it is not plain ASCII (metadata columns are 3-byte utf8
 *   too), plus `cinder.csi.dev/cluster`.
 * - **Source** metadata `cinder.csi.dev/source`: `snapshot:<id>`, `backup:<id>`, `volume:<id>` or
 *   `image:<imageRef>`; Cinder's volume view shows no backup id, so this is how a volume restored
 *   from a backup reports its content source.
 * - **Shape** metadata `cinder.csi.dev/shape`: a digest of the request parameters that shape the
 *   volume but are not visible on it (imageRef, scheduler hints, ...), compared on the
 *   idempotent path.
 * - **Description tag** `[csi cluster=<cluster> source=<kind:id>]`: Cinder's backup restore
 *   replaces the target volume's metadata with the backed-up volume's (markers included) but keeps
 *   its name and description; the tag lets the retry recognise its own restored volume and repair
 *   its metadata (`repairMetadata` in create-volume.ts).
 */
import { createHash } from 'node:crypto';
import { invalidArgument } from '../errors.ts';
import { META } from './context.ts';

/** Longest CSI name accepted: the CSI spec's general limit for strings. */
export const MAX_NAME_BYTES = 128;

const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const DERIVED = /^csi-[A-Za-z0-9._-]*-[0-9a-f]{16}$/;
const ENCODED = 'b64:';

const hash16 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);

/** INVALID_ARGUMENT unless `name` is a usable CSI name (present, at most 128 bytes, no NUL). */
export function checkName(name: string | undefined, field = 'name'): string {
  if (!name) throw invalidArgument(`${field} is required`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_BYTES) {
    throw invalidArgument(`${field} is ${bytes} bytes; the CSI limit is ${MAX_NAME_BYTES}`);
  }
  if (name.includes('\0')) throw invalidArgument(`${field} must not contain NUL`);
  return name;
}

/** The name of the Cinder object for a CSI name (see the module comment). */
export function cinderName(name: string): string {
  if (PLAIN.test(name) && !DERIVED.test(name)) return name;
  const safe = name
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  return `csi-${safe}-${hash16(name)}`;
}

/** The value of the `cinder.csi.dev/csi-name` marker for a CSI name. */
export function markerValue(name: string): string {
  if (PLAIN.test(name) && !name.startsWith(ENCODED)) return name;
  return `${ENCODED}${Buffer.from(name, 'utf8').toString('base64url')}`;
}

/** Identity metadata the driver puts on every volume/snapshot/backup it creates. */
export function markerMetadata(name: string, clusterId: string): Record<string, string> {
  return { [META.csiName]: markerValue(name), [META.cluster]: clusterId };
}

/** True when the metadata carries this CSI name's marker for this cluster. */
export function hasMarker(
  metadata: Record<string, string> | null | undefined,
  name: string,
  clusterId: string,
): boolean {
  return metadata?.[META.csiName] === markerValue(name) && metadata?.[META.cluster] === clusterId;
}

/** The digest recorded in `cinder.csi.dev/shape`. */
export function shapeDigest(shape: Record<string, unknown>): string {
  const canonical = JSON.stringify(shape, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
  return hash16(canonical);
}

const clusterTag = (clusterId: string) => {
  const enc = encodeURIComponent(clusterId);
  return enc.length <= 64 ? enc : `sha-${hash16(clusterId)}`;
};

const TAG_RE = / \[csi cluster=(\S+)(?: source=(\S+))?\]$/;

/**
 * The Cinder description: a human part (`Created by <driver> for PVC ns/name`) and the tag that
 * survives a backup restore. At most 255 characters (Cinder's limit).
 */
export function describe(
  driverName: string,
  clusterId: string,
  metadata: Record<string, string>,
  source: string | undefined,
): string {
  const ns = metadata['csi.storage.k8s.io/pvc/namespace'];
  const pvc = metadata['csi.storage.k8s.io/pvc/name'];
  const human = ns && pvc ? `Created by ${driverName} for PVC ${ns}/${pvc}` : `Created by ${driverName}`;
  const src = source && source.length <= 80 && !/\s/.test(source) ? ` source=${source}` : '';
  const tag = ` [csi cluster=${clusterTag(clusterId)}${src}]`;
  return `${human.slice(0, 255 - tag.length)}${tag}`;
}

/** What a description's tag says, when it has one. */
export function parseDescription(
  description: string | null | undefined,
): { cluster: string; source: string | undefined } | undefined {
  const m = description ? TAG_RE.exec(description) : null;
  return m ? { cluster: m[1] as string, source: m[2] } : undefined;
}

/** True when the description's tag names this cluster. */
export function describedAsOurs(description: string | null | undefined, clusterId: string): boolean {
  return parseDescription(description)?.cluster === clusterTag(clusterId);
}
