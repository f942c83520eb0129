/** Cinder volume types: `/types`. */
import type { CallOptions } from '../cinder-api.ts';
import type { VolumeType } from '../cinder-types.ts';
import { OpenStackError } from '../errors.ts';
import type { CinderCore } from './core.ts';

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export async function listVolumeTypes(c: CinderCore, opts: CallOptions = {}): Promise<VolumeType[]> {
  const res = await c.call<{ volume_types: VolumeType[] }>('GET', '/types', 'type.list', opts);
  return res.volume_types;
}

/**
 * By id (`GET /types/{id}`), or by name: Cinder's show only takes ids, so a name is looked up in
 * the type list (names are unique). An unknown name gives an OpenStackError with status 404.
 */
export async function getVolumeType(
  c: CinderCore,
  idOrName: string,
  opts: CallOptions = {},
): Promise<VolumeType> {
  if (UUID_RE.test(idOrName)) {
    const res = await c.call<{ volume_type: VolumeType }>(
      'GET',
      `/types/${encodeURIComponent(idOrName)}`,
      'type.get',
      opts,
    );
    return res.volume_type;
  }
  const found = (await listVolumeTypes(c, opts)).find((t) => t.name === idOrName);
  if (found) return found;
  throw new OpenStackError({
    status: 404,
    faultMessage: `Volume type ${idOrName} could not be found.`,
    method: 'GET',
    url: `${await c.session.endpoint(opts.signal)}/types`,
  });
}

/** The project's default type (3.62+). */
export async function getDefaultVolumeType(c: CinderCore, opts: CallOptions = {}): Promise<VolumeType> {
  const res = await c.call<{ volume_type: VolumeType }>('GET', '/types/default', 'type.default', {
    signal: opts.signal,
    feature: 'defaultVolumeType',
  });
  return res.volume_type;
}

export async function getVolumeTypeExtraSpecs(
  c: CinderCore,
  idOrName: string,
  opts: CallOptions = {},
): Promise<Record<string, string>> {
  const id = UUID_RE.test(idOrName) ? idOrName : (await getVolumeType(c, idOrName, opts)).id;
  const res = await c.call<{ extra_specs: Record<string, string> }>(
    'GET',
    `/types/${encodeURIComponent(id)}/extra_specs`,
    'type.extra_specs',
    opts,
  );
  return res.extra_specs;
}
