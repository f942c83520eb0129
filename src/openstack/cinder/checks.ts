/**
 * The two guards every Cinder call goes through (item 1 of issue 11):
 *
 * - Ids before they enter a URL: Cinder gives every volume, snapshot, attachment, backup, group,
 *   group snapshot, type and message an id of the form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`
 *   (hex). Anything else cannot name an object of that kind, but could name another Cinder URL
 *   (`detail`, `summary`, `backup:detail`, `..`), so it is answered locally with the same
 *   not-found OpenStackError a 404 would give, without a request. A list filter that must be an
 *   id (`volume_id=...`) and is not one matches nothing.
 * - Responses before they are used: each answer must carry the object (or list) the caller needs,
 *   with the fields it relies on; otherwise `UnexpectedResponseError` says what was missing.
 */
import { OpenStackError } from '../errors.ts';

const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `id` has the form Cinder gives ids (a UUID with dashes; case-insensitive). */
export function isCinderId(id: unknown): id is string {
  return typeof id === 'string' && ID_RE.test(id);
}

/** What each URL collection holds, in Cinder's own words ("Volume x could not be found."). */
const KIND = {
  volumes: 'Volume',
  snapshots: 'Snapshot',
  attachments: 'Attachment',
  backups: 'Backup',
  groups: 'Group',
  group_snapshots: 'GroupSnapshot',
  types: 'Volume type',
  group_types: 'Group type',
} as const;

export type Collection = keyof typeof KIND;

const QUOTE_MAX = 40;

/** At most a short prefix of an untrusted string, for messages. */
export function quote(s: string): string {
  const head = s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}...` : s;
  return JSON.stringify(head);
}

/**
 * The not-found error a 404 for `/{collection}/{id}` gives, made locally (no request): for an id
 * that is not a Cinder id, or (`byName`) a type name that is not in the list.
 */
export function notFoundLocally(
  collection: Collection,
  id: string,
  method = 'GET',
  byName = false,
): OpenStackError {
  return new OpenStackError({
    status: 404,
    faultMessage: `${KIND[collection]} ${quote(id)} could not be found${byName ? '' : ' (not a Cinder id)'}.`,
    method,
    url: byName ? `/${collection}` : `/${collection}/${encodeURIComponent(id.slice(0, QUOTE_MAX))}`,
  });
}

/**
 * `/{collection}/{id}{suffix}` when `id` has the form of a Cinder id; otherwise throws the
 * not-found OpenStackError a 404 would give. The one place ids enter URLs.
 */
export function idPath(collection: Collection, id: string, suffix = '', method = 'GET'): string {
  if (!isCinderId(id)) throw notFoundLocally(collection, String(id), method);
  return `/${collection}/${id}${suffix}`;
}

/**
 * A metadata key as a URL path segment. `.`/`..` (also percent-encoded, which URL parsers
 * resolve the same way) would climb to the parent URL, and an empty key names the collection:
 * none of them can be a stored key's segment, so they are not found.
 */
export function metadataKeySegment(collection: Collection, id: string, key: string): string {
  if (key === '' || /^(\.|%2e){1,2}$/i.test(key)) {
    throw new OpenStackError({
      status: 404,
      faultMessage: `Metadata key ${quote(key)} could not be found.`,
      method: 'DELETE',
      url: `/${collection}/${id}/metadata`,
    });
  }
  return encodeURIComponent(key);
}

/** True when every present filter in `keys` is a Cinder id (so the list can match something). */
export function idFiltersValid(filters: object, keys: readonly string[]): boolean {
  const f = filters as Record<string, unknown>;
  return keys.every((k) => f[k] === undefined || isCinderId(f[k]));
}

// ---------------------------------------------------------------- response shapes

type FieldType = 'string' | 'number' | 'boolean' | 'object' | 'array';
/** Fields a caller relies on, with their JSON type. */
export type Shape = Readonly<Record<string, FieldType>>;

export const SHAPES = {
  /** What POST of a backup, group or group snapshot answers: only the id (and name, links). */
  created: { id: 'string' },
  volume: { id: 'string', status: 'string', size: 'number' },
  snapshot: { id: 'string', status: 'string', volume_id: 'string' },
  attachment: { id: 'string', status: 'string' },
  backup: { id: 'string', status: 'string' },
  group: { id: 'string', status: 'string' },
  groupSnapshot: { id: 'string', status: 'string' },
  type: { id: 'string', name: 'string' },
  any: {},
} as const satisfies Record<string, Shape>;

/** A Cinder answer without the shape the caller needs (a proxy's page, another API, a bug). */
export class UnexpectedResponseError extends OpenStackError {
  override name = 'UnexpectedResponseError';
  /** Treated like a gateway failure: callers report UNAVAILABLE, waiters retry a few times. */
  override get retryable(): boolean {
    return true;
  }
}

export interface Answer {
  status: number;
  url: string;
  method: string;
  requestId: string | undefined;
  body: unknown;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Why `v` does not have `shape`, or undefined when it does. */
function mismatch(v: unknown, shape: Shape): string | undefined {
  if (typeOf(v) !== 'object') return `got ${typeOf(v)}`;
  const o = v as Record<string, unknown>;
  for (const [field, type] of Object.entries(shape)) {
    if (typeOf(o[field]) !== type) return `field ${field} is ${typeOf(o[field])}, not ${type}`;
  }
  return undefined;
}

function describe(shape: Shape): string {
  const fields = Object.entries(shape).map(([f, t]) => `${t} ${f}`);
  return fields.length > 0 ? `an object with ${fields.join(', ')}` : 'an object';
}

function unexpected(res: Answer, what: string): UnexpectedResponseError {
  return new UnexpectedResponseError({
    status: res.status,
    faultMessage: `unexpected response: expected ${what}`,
    method: res.method,
    url: res.url,
    requestId: res.requestId,
  });
}

/** `body[key]`, checked to have `shape`. */
export function expectOne<T>(res: Answer, key: string, shape: Shape): T {
  const body = res.body;
  const v = typeOf(body) === 'object' ? (body as Record<string, unknown>)[key] : undefined;
  const why = mismatch(v, shape);
  if (why !== undefined) throw unexpected(res, `"${key}": ${describe(shape)} (${why})`);
  return v as T;
}

/** `body[key]`, checked to be a list whose every item has `shape`. */
export function expectList<T>(res: Answer, key: string, shape: Shape): T[] {
  const body = res.body;
  const v = typeOf(body) === 'object' ? (body as Record<string, unknown>)[key] : undefined;
  if (!Array.isArray(v)) throw unexpected(res, `"${key}": a list (got ${typeOf(v)})`);
  for (const [i, item] of v.entries()) {
    const why = mismatch(item, shape);
    if (why !== undefined) throw unexpected(res, `"${key}"[${i}]: ${describe(shape)} (${why})`);
  }
  return v as T[];
}
