/**
 * Cinder version discovery: `GET /` (300 Multiple Choices with every API version) and, when the
 * root is not reachable (e.g. a proxy only forwards /v3), `GET /v3/` (200 with the v3 document).
 * Both carry `version` (max microversion) and `min_version` for v3.
 */
import { parseMicroversion, type ServerVersionRange } from './microversion.ts';
import type { ServiceSession } from './session.ts';

interface VersionDoc {
  id?: string;
  status?: string;
  version?: string;
  min_version?: string;
}

/** The URL of the version document root for an endpoint like http://h:8776/v3/<project> → http://h:8776/. */
export function versionRootUrl(endpoint: string): string {
  const url = new URL(endpoint);
  const idx = url.pathname.search(/\/v3(\/|$)/);
  url.pathname = idx >= 0 ? `${url.pathname.slice(0, idx)}/` : '/';
  url.search = '';
  url.hash = '';
  return url.toString();
}

/** Picks the v3 entry of a version list; undefined when the server advertises no microversions. */
export function v3RangeFromVersions(body: unknown): ServerVersionRange | undefined {
  const docs = extractVersionDocs(body);
  const v3 = docs.find((d) => typeof d.id === 'string' && /^v3(\.|$)/.test(d.id));
  if (!v3) throw new Error('Cinder version document has no v3 entry');
  if (!v3.version) return undefined;
  return { min: parseMicroversion(v3.min_version || '3.0'), max: parseMicroversion(v3.version) };
}

function extractVersionDocs(body: unknown): VersionDoc[] {
  if (body && typeof body === 'object') {
    const b = body as { versions?: unknown; version?: unknown };
    if (Array.isArray(b.versions)) return b.versions as VersionDoc[];
    if (b.version && typeof b.version === 'object') return [b.version as VersionDoc];
  }
  throw new Error('unexpected Cinder version document (no "versions")');
}

/** Asks the server for its v3 microversion range. */
export async function discoverVolumeApi(
  session: ServiceSession,
  signal?: AbortSignal,
): Promise<ServerVersionRange | undefined> {
  const root = versionRootUrl(await session.endpoint(signal));
  const get = async (url: string) =>
    (
      await session.request<unknown>({
        method: 'GET',
        path: url,
        headers: { Accept: 'application/json' },
        idempotent: true,
        signal,
        operation: 'cinder.versions',
      })
    ).body;
  let rootError: unknown;
  try {
    return v3RangeFromVersions(await get(root));
  } catch (err) {
    if (signal?.aborted) throw err;
    rootError = err;
  }
  try {
    return v3RangeFromVersions(await get(`${root}v3/`));
  } catch {
    throw rootError;
  }
}
