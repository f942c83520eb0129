/**
 * CreateVolume's pure part: the whole request validated and turned into a plan before any Cinder
 * call (no lookup happens for an invalid request), and the comparison of an existing volume with
 * the plan on the idempotent path (every parameter that shapes the volume: size range, type, zone,
 * content source or image, multiattach, and the digest of the rest).
 */
import { createHash } from 'node:crypto';
import type { Volume } from '../../openstack/cinder-types.ts';
import { invalidArgument } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { BACKUP_ID_PREFIX, type Controller, META } from './context.ts';
import { requestedZone, sizeFits, sizeGiB } from './convert.ts';
import {
  checkName,
  cinderName,
  describe,
  hasMarker,
  markerMetadata,
  markerValue,
  parseDescription,
  shapeDigest,
} from './identity.ts';
import {
  checkCinderText,
  isMultiNode,
  parseMutableParams,
  parseVolumeParams,
  requireCapabilities,
  type VolumeParams,
} from './params.ts';

export type Wanted = { kind: 'snapshot' | 'backup' | 'volume'; id: string };

export interface Plan {
  name: string;
  cinderName: string;
  params: VolumeParams;
  /** Volume type to create with (mutable type, else parameter type, else the driver's default). */
  type: string | undefined;
  zone: string | undefined;
  /** Zones a volume may be in: the requested one and the requisite topology's. */
  allowedZones: Set<string | undefined>;
  wanted: Wanted | undefined;
  multi: boolean;
  /** `cinder.csi.dev/source` value, if the volume has a source. */
  source: string | undefined;
  shape: string;
  /** Everything the volume's metadata must hold: user + extra-create metadata, markers, source, shape. */
  metadata: Record<string, string>;
  description: string;
  /** Failure-memory key: the name and every parameter of the request that decides Cinder's answer. */
  memoryKey: string;
}

export function planCreate(c: Controller, req: csi.CreateVolumeRequest__Output): Plan {
  const name = checkName(req.name);
  requireCapabilities(req.volume_capabilities);
  const params = parseVolumeParams(req.parameters);
  const mutable = parseMutableParams(req.mutable_parameters);
  sizeGiB(req.capacity_range); // validates the range (negative, required > limit, limit < 1 GiB)
  const zone = requestedZone(c, params.availability, req.accessibility_requirements);
  if (zone) checkCinderText(zone, 'availability zone');
  const type = mutable.type ?? params.type ?? c.defaultVolumeType;
  const wanted = wantedSource(req.volume_content_source);
  if (wanted && params.imageRef)
    throw invalidArgument('imageRef cannot be combined with a volume content source');
  const multi = req.volume_capabilities.some(isMultiNode);
  const source = wanted
    ? `${wanted.kind}:${wanted.id}`
    : params.imageRef
      ? `image:${params.imageRef}`
      : undefined;
  const shape = shapeDigest({
    type: mutable.type ?? params.type ?? null,
    availability: params.availability ?? null,
    imageRef: params.imageRef ?? null,
    schedulerHints: params.schedulerHints ?? null,
    source: source ?? null,
    multi,
  });
  const metadata: Record<string, string> = {
    ...params.metadata,
    ...markerMetadata(name, c.clusterId),
    [META.shape]: shape,
  };
  if (source) metadata[META.source] = source;
  const allowedZones = new Set<string | undefined>([zone]);
  for (const t of req.accessibility_requirements?.requisite ?? [])
    allowedZones.add(t.segments?.[c.topologyKey]);
  const range = req.capacity_range;
  const memoryKey = createHash('sha256')
    .update(
      JSON.stringify([
        name,
        shape,
        type ?? null,
        zone ?? null,
        String(range?.required_bytes ?? ''),
        String(range?.limit_bytes ?? ''),
      ]),
    )
    .digest('hex');
  return {
    name,
    cinderName: cinderName(name),
    params,
    type,
    zone,
    allowedZones,
    wanted,
    multi,
    source,
    shape,
    metadata,
    description: describe(c.driverName, c.clusterId, params.metadata, wanted ? source : undefined),
    memoryKey,
  };
}

function wantedSource(src: csi.VolumeContentSource__Output | null | undefined): Wanted | undefined {
  if (!src) return undefined;
  const checkId = (id: string, field: string) => {
    checkName(id, field);
    checkCinderText(id, field, 128);
    return id;
  };
  if (src.snapshot) {
    const id = checkId(src.snapshot.snapshot_id, 'volume_content_source.snapshot.snapshot_id');
    return id.startsWith(BACKUP_ID_PREFIX)
      ? { kind: 'backup', id: checkId(id.slice(BACKUP_ID_PREFIX.length), 'the backup id') }
      : { kind: 'snapshot', id };
  }
  if (src.volume) {
    return { kind: 'volume', id: checkId(src.volume.volume_id, 'volume_content_source.volume.volume_id') };
  }
  return undefined;
}

/** The content source to report for a volume created as planned (the requested one, verbatim). */
export function plannedContentSource(plan: Plan): csi.VolumeContentSource | null {
  const w = plan.wanted;
  if (!w) return null;
  if (w.kind === 'volume') return { volume: { volume_id: w.id } };
  return { snapshot: { snapshot_id: w.kind === 'backup' ? `${BACKUP_ID_PREFIX}${w.id}` : w.id } };
}

/** What the volume says it was created from: its source record, else Cinder's view. */
function recordedSource(v: Volume, plan: Plan): string | undefined {
  if (v.metadata?.[META.csiName] === markerValue(plan.name)) {
    const rec = v.metadata?.[META.source];
    if (rec) return rec;
  } else {
    // metadata replaced by a backup restore: the description's tag still says it
    const tagged = parseDescription(v.description)?.source;
    if (tagged) return tagged;
  }
  if (v.snapshot_id) return `snapshot:${v.snapshot_id}`;
  if (v.source_volid) return `volume:${v.source_volid}`;
  if (v.backup_id) return `backup:${v.backup_id}`;
  if (v.metadata?.['src_backup_id']) return `backup:${v.metadata['src_backup_id']}`;
  return undefined;
}

/** Why an existing volume with the plan's name does not match the request (empty: it does). */
export function incompatibilities(
  c: Controller,
  v: Volume,
  plan: Plan,
  req: csi.CreateVolumeRequest__Output,
) {
  const out: string[] = [];
  let zoneOnly = false;
  if (!sizeFits(v.size, req.capacity_range))
    out.push(`size ${v.size} GiB is outside the requested capacity range`);
  if (plan.type && v.volume_type !== plan.type && v.volume_type_id !== plan.type) {
    out.push(`volume type is ${v.volume_type}, not ${plan.type}`);
  }
  const src = recordedSource(v, plan);
  if (plan.params.imageRef) {
    const img = v.volume_image_metadata;
    const sameImage =
      src === plan.source ||
      (src === undefined &&
        (img?.['image_id'] === plan.params.imageRef || img?.['image_name'] === plan.params.imageRef));
    if (!sameImage) out.push(`it was not created from image ${plan.params.imageRef.slice(0, 64)}`);
  } else if ((src ?? 'none') !== (plan.source ?? 'none')) {
    out.push(`content source is ${(src ?? 'none').slice(0, 80)}, not ${plan.source ?? 'none'}`);
  }
  if (plan.multi && !v.multiattach) out.push('it is not multiattach');
  const shape = v.metadata?.[META.shape];
  if (shape && hasMarker(v.metadata, plan.name, c.clusterId) && shape !== plan.shape && out.length === 0) {
    out.push('parameters that shape it (type, availability, imageRef, schedulerHints, source) differ');
  }
  if (plan.zone && !c.ignoreVolumeAZ && !plan.allowedZones.has(v.availability_zone ?? undefined)) {
    zoneOnly = out.length === 0;
    out.push(`availability zone is ${v.availability_zone}, not ${plan.zone}`);
  }
  return { problems: out, zoneOnly };
}
