/** Cinder volume types: `/types`. */
import type { CallOptions } from '../cinder-api.ts';
import type { VolumeType } from '../cinder-types.ts';
import { idPath, isCinderId, notFoundLocally, SHAPES } from './checks.ts';
import type { CinderCore } from './core.ts';
import { ignoreNotFound } from './core.ts';

export async function listVolumeTypes(c: CinderCore, opts: CallOptions = {}): Promise<VolumeType[]> {
  return c.list<VolumeType>('/types', 'type.list', 'volume_types', SHAPES.type, opts);
}

/**
 * By id (`GET /types/{id}`), or by name: Cinder's show only takes ids, so anything that is not of
 * the form of an id is looked up by name in the type list (names are unique; a name may also have
 * the form of an id). An unknown id or name gives the not-found OpenStackError of a 404.
 */
export async function getVolumeType(
  c: CinderCore,
  idOrName: string,
  opts: CallOptions = {},
): Promise<VolumeType> {
  if (isCinderId(idOrName)) {
    const byId = await ignoreNotFound(
      c.one<VolumeType>('GET', idPath('types', idOrName), 'type.get', 'volume_type', SHAPES.type, opts),
    );
    if (byId) return byId;
  }
  const found = (await listVolumeTypes(c, opts)).find((t) => t.name === idOrName);
  if (found) return found;
  throw notFoundLocally('types', idOrName, 'GET', true);
}

/** The project's default type (3.62+). */
export async function getDefaultVolumeType(c: CinderCore, opts: CallOptions = {}): Promise<VolumeType> {
  return c.one<VolumeType>('GET', '/types/default', 'type.default', 'volume_type', SHAPES.type, {
    signal: opts.signal,
    feature: 'defaultVolumeType',
  });
}

export async function getVolumeTypeExtraSpecs(
  c: CinderCore,
  idOrName: string,
  opts: CallOptions = {},
): Promise<Record<string, string>> {
  const id = isCinderId(idOrName) ? idOrName : (await getVolumeType(c, idOrName, opts)).id;
  const path = idPath('types', id, '/extra_specs');
  return c.one<Record<string, string>>('GET', path, 'type.extra_specs', 'extra_specs', SHAPES.any, opts);
}
