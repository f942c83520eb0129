/**
 * The source volumes of a CreateVolumeGroupSnapshot request: bounded and looked up with bounded
 * concurrency, failing fast (issue 11 item 6).
 *
 *   - at most MAX_GROUP_SNAPSHOT_VOLUMES ids (documented in docs/install.md) → else
 *     INVALID_ARGUMENT before any Cinder call;
 *   - at most LOOKUP_CONCURRENCY `GET /volumes/{id}` in flight; the first missing volume stops
 *     new lookups, and NOT_FOUND names the missing ones found so far (a few at most);
 *   - every message quotes at most a few ids.
 */
import { ignoreNotFound } from '../../openstack/cinder.ts';
import type { Volume } from '../../openstack/cinder-types.ts';
import { eachLimited, fewOf } from '../../util/bounded.ts';
import { failedPrecondition, invalidArgument, notFound, unavailable } from '../errors.ts';
import { type GroupController, marker } from './context.ts';

/** Most volumes one group snapshot may span (a Cinder group of this many is already unusual). */
export const MAX_GROUP_SNAPSHOT_VOLUMES = 128;
/** Cinder lookups in flight at once for one request. */
export const LOOKUP_CONCURRENCY = 8;
const MAX_ID_BYTES = 128;

const TRANSIENT_VOLUME = new Set(['creating', 'attaching', 'detaching', 'reserved', 'extending', 'retyping']);

/** INVALID_ARGUMENT for a malformed list of source volume ids (no Cinder call). */
export function checkSourceIds(ids: readonly string[]): void {
  if (ids.length === 0) throw invalidArgument('source_volume_ids is required');
  if (ids.length > MAX_GROUP_SNAPSHOT_VOLUMES) {
    throw invalidArgument(
      `source_volume_ids has ${ids.length} ids; a group snapshot spans at most ${MAX_GROUP_SNAPSHOT_VOLUMES} volumes`,
    );
  }
  if (ids.some((id) => !id)) throw invalidArgument('source_volume_ids must not contain empty ids');
  const long = ids.filter((id) => Buffer.byteLength(id) > MAX_ID_BYTES);
  if (long.length > 0) {
    throw invalidArgument(`source_volume_ids: ids longer than ${MAX_ID_BYTES} bytes: ${fewOf(long, 3, 40)}`);
  }
  if (new Set(ids).size !== ids.length) {
    const seen = new Set<string>();
    const dups: string[] = [];
    for (const id of ids) {
      if (seen.has(id)) dups.push(id);
      seen.add(id);
    }
    throw invalidArgument(`source_volume_ids contains duplicates: ${fewOf([...new Set(dups)])}`);
  }
}

/** All source volumes; NOT_FOUND naming missing ones; one zone; not in another group. */
export async function sourceVolumes(
  c: GroupController,
  ids: readonly string[],
  ownGroupId: string | undefined,
  signal: AbortSignal,
): Promise<Volume[]> {
  const found: (Volume | undefined)[] = new Array(ids.length);
  const missing: string[] = [];
  await eachLimited(ids, LOOKUP_CONCURRENCY, async (id, i) => {
    const v = await ignoreNotFound(c.cinder.getVolume(id, { signal }));
    if (!v) missing.push(id);
    found[i] = v;
    return missing.length > 0; // fail fast: start no further lookups
  });
  if (missing.length > 0) throw notFound(`source volumes do not exist: ${fewOf(missing)}`);
  const volumes = found as Volume[];
  const zones = new Set(volumes.map((v) => v.availability_zone ?? ''));
  if (zones.size > 1) {
    throw invalidArgument(
      `source volumes are in different availability zones (${fewOf([...zones])}); a Cinder group spans one zone`,
    );
  }
  for (const v of volumes) {
    if (v.group_id && v.group_id !== ownGroupId) {
      // This driver's own group of another group snapshot still being taken: transient.
      const other = await ignoreNotFound(c.cinder.getGroup(v.group_id, { signal }));
      if (other?.description === marker.group(c.clusterId)) {
        throw unavailable(
          `volume ${v.id} is in the group of group snapshot ${other.name} that is still being taken; retry`,
        );
      }
      throw failedPrecondition(
        `volume ${v.id} is a member of Cinder group ${v.group_id}; a volume can be in one group only`,
      );
    }
    if (v.status !== 'available' && v.status !== 'in-use') {
      const msg = `volume ${v.id} is ${v.status}; Cinder snapshots only available or in-use volumes`;
      throw TRANSIENT_VOLUME.has(String(v.status)) ? unavailable(`${msg}; retry`) : failedPrecondition(msg);
    }
  }
  return volumes;
}
