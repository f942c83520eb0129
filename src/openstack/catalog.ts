/**
 * Keystone v3 service catalog lookup and endpoint URL templating.
 */

export interface CatalogEndpoint {
  id?: string;
  interface: string;
  region?: string | null;
  region_id?: string | null;
  url: string;
}

export interface CatalogEntry {
  id?: string;
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}

/** The service kinds a session serves, and the catalog types that provide each (in preference order). */
export const SERVICE_TYPES = {
  'block-storage': ['block-storage', 'volumev3', 'volume'],
  image: ['image'],
  identity: ['identity'],
} as const satisfies Record<string, readonly string[]>;

export type ServiceKind = keyof typeof SERVICE_TYPES;

export class CatalogError extends Error {
  override name = 'CatalogError';
}

/**
 * Finds the endpoint URL for the first catalog type (of `types`, in order) that has an endpoint
 * with this interface (and region, when given). The error lists what the catalog does offer.
 */
export function findEndpoint(
  catalog: readonly CatalogEntry[],
  types: readonly string[],
  iface: string,
  region?: string,
): string {
  for (const type of types) {
    for (const entry of catalog) {
      if (entry.type !== type) continue;
      const ep = entry.endpoints.find(
        (e) =>
          e.interface === iface &&
          (region === undefined || region === '' || e.region_id === region || e.region === region),
      );
      if (ep) return ep.url;
    }
  }
  const offered = catalog
    .filter((e) => types.includes(e.type))
    .flatMap((e) => e.endpoints.map((ep) => `${e.type}/${ep.interface}/${ep.region_id ?? ep.region ?? '-'}`));
  const where = `interface ${iface}${region ? `, region ${region}` : ''}`;
  throw new CatalogError(
    `no ${types.join(' | ')} endpoint for ${where} in the service catalog` +
      (offered.length ? ` (catalog has: ${offered.join(', ')})` : ' (no such service in the catalog)'),
  );
}

/** Replaces `%(project_id)s`, `$(project_id)s`, `%(tenant_id)s` and `$(tenant_id)s` in an endpoint URL. */
export function substituteProjectId(url: string, projectId: string | undefined): string {
  const re = /[%$]\((project_id|tenant_id)\)s/g;
  if (!re.test(url)) return url;
  if (!projectId)
    throw new CatalogError(`endpoint ${url} needs a project id but the token has no project scope`);
  return url.replace(re, projectId);
}

/**
 * A block-storage base URL ending in `/v3` (or `/v2`, `/v1`) gets `/<project_id>` appended, so
 * every endpoint has the same shape `.../v3/<project>`; URLs that already carry more path are kept.
 */
export function withProjectSegment(url: string, projectId: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return /\/v[1-3]$/.test(trimmed) ? `${trimmed}/${projectId}` : trimmed;
}

/** Joins an endpoint and a relative path (`/volumes/x` or `volumes/x`); absolute URLs pass through. */
export function joinUrl(endpoint: string, path: string): string {
  if (/^https?:\/\//i.test(path)) return path;
  return `${endpoint.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
