/**
 * CreateVolume: idempotent by name (metadata marker `cinder.csi.dev/csi-name` + cluster id), waits
 * for `available` within the call's deadline, cleans up volumes that go to `error`.
 *
 * Flow: validate → lock the name (a concurrent call with the same name gets ABORTED) → look the
 * name up (an existing volume is checked for compatibility and returned, waiting if it is still
 * `creating`) → resolve the content source → POST /volumes → wait. If the deadline passes while
 * Cinder is still creating, the call fails with DEADLINE_EXCEEDED and the retry finds the same
 * volume by name. If the volume goes to `error`, the reason (Cinder user message) is returned with a
 * code chosen from it, and the failed volume is deleted.
 */

import type { CreateVolumeRequest, Volume } from '../../openstack/cinder-types.ts';
import { WaitAbortedError, WaitFailedError } from '../../openstack/waiter.ts';
import { AbortedError } from '../../util/abort.ts';
import { classifyFailureReason, fromCloudError, latestUserMessage } from '../cloud-errors.ts';
import { alreadyExists, CsiError, invalidArgument, notFound, unavailable } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import type { RpcContext } from '../rpc.ts';
import { BACKUP_ID_PREFIX, type Controller, lockKey, META, withLocks } from './context.ts';
import { requestedZone, sizeFits, sizeGiB, toCsiVolume } from './convert.ts';
import {
  isMultiNode,
  markerMetadata,
  parseMutableParams,
  parseVolumeParams,
  requireCapabilities,
} from './params.ts';

interface Source {
  snapshot_id?: string;
  source_volid?: string;
  backup_id?: string;
  /** Smallest size the new volume may have. */
  sizeGiB: number;
  zone?: string | null;
}

export async function createVolume(
  c: Controller,
  req: csi.CreateVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.CreateVolumeResponse> {
  if (!req.name) throw invalidArgument('name is required');
  requireCapabilities(req.volume_capabilities);
  const params = parseVolumeParams(req.parameters);
  const mutable = parseMutableParams(req.mutable_parameters);
  const zone = requestedZone(c, params.availability, req.accessibility_requirements);
  const type = mutable.type ?? params.type ?? c.defaultVolumeType;
  const wanted = wantedSource(req.volume_content_source);
  if (wanted && params.imageRef)
    throw invalidArgument('imageRef cannot be combined with a volume content source');
  const what = `create volume ${req.name}`;

  return withLocks(c, [lockKey.volumeName(req.name)], `volume name ${req.name}`, async () => {
    try {
      const existing = await findVolumeByName(c, req.name, ctx.signal);
      if (existing) {
        const problems = incompatibilities(c, existing, { req, type, zone, wanted });
        if (problems.length > 0) {
          throw alreadyExists(
            `volume ${req.name} already exists as Cinder volume ${existing.id} with different parameters: ${problems.join('; ')}`,
          );
        }
        ctx.log.info({ volumeId: existing.id, status: existing.status }, 'CreateVolume: volume exists');
        const ready = await settle(c, existing, req.name, ctx);
        return { volume: toCsiVolume(c, ready, zone) };
      }

      const source = wanted ? await resolveSource(c, wanted, ctx.signal) : undefined;
      const size = sizeGiB(req.capacity_range, source?.sizeGiB ?? 1);
      if (req.volume_capabilities.some(isMultiNode)) await requireMultiattachType(c, type, ctx.signal);

      const body: CreateVolumeRequest = {
        size,
        name: req.name,
        description: describe(c, params.metadata),
        metadata: { ...params.metadata, ...markerMetadata(req.name, c.clusterId) },
      };
      if (type) body.volume_type = type;
      if (zone && !c.ignoreVolumeAZ) body.availability_zone = zone;
      if (params.imageRef) body.imageRef = params.imageRef;
      if (params.schedulerHints) body.scheduler_hints = params.schedulerHints;
      if (source?.snapshot_id) body.snapshot_id = source.snapshot_id;
      if (source?.source_volid) body.source_volid = source.source_volid;
      if (source?.backup_id) body.backup_id = source.backup_id;

      const startedAt = Date.now();
      const created = await c.cinder.createVolume(body, { signal: ctx.signal });
      ctx.log.info({ volumeId: created.id, size, type, zone }, 'CreateVolume: Cinder volume created');
      const kind = `volume|${type ?? ''}|${wanted?.kind ?? (params.imageRef ? 'image' : 'none')}`;
      const ready = await settle(c, created, req.name, ctx, { kind, startedAt });
      await checkPlacement(c, ready, zone, req.accessibility_requirements, ctx);
      return { volume: toCsiVolume(c, ready, zone) };
    } catch (err) {
      throw fromCloudError(err, what, { signal: ctx.signal });
    }
  });
}

/** This cluster's volume carrying the CSI name, if any (the oldest when there are several). */
export async function findVolumeByName(
  c: Controller,
  name: string,
  signal: AbortSignal,
): Promise<Volume | undefined> {
  const page = await c.cinder.listVolumesPage(
    { name, metadata: { [META.csiName]: name, [META.cluster]: c.clusterId } },
    { signal },
  );
  const mine = page.items.filter(
    (v) => v.metadata?.[META.csiName] === name && v.metadata?.[META.cluster] === c.clusterId,
  );
  mine.sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
  return mine.find((v) => !String(v.status).startsWith('delet')) ?? mine[0];
}

/** Waits until the volume is usable; handles the error and deleting states. */
/**
 * Waits until the volume is usable; handles the error and deleting states. `paced`: a volume this
 * call just created, first polled at the times the pacer learned for its kind (pacing.ts).
 */
async function settle(
  c: Controller,
  v: Volume,
  name: string,
  ctx: RpcContext,
  paced?: { kind: string; startedAt: number },
): Promise<Volume> {
  const status = String(v.status);
  if (status === 'deleting' || status === 'error_deleting') {
    throw unavailable(`volume ${name} (Cinder volume ${v.id}) is being deleted; retry once it is gone`);
  }
  if (status === 'error') return failCreate(c, v.id, name, undefined, ctx);
  if (status !== 'creating' && status !== 'downloading' && status !== 'restoring-backup') return v;
  const wait = async (): Promise<Volume> => {
    const ready = await c.cinder.waitForVolume(v.id, {
      target: ['available'],
      failOn: ['error', 'error_restoring', 'deleting', 'error_deleting'],
      signal: ctx.signal,
    });
    if (!ready)
      throw unavailable(`volume ${name} (Cinder volume ${v.id}) disappeared while being created; retry`);
    return ready;
  };
  // An early check only reports success; failure states are left to the waiter's reporting.
  const check = async (): Promise<Volume | undefined> => {
    const now = await c.cinder.getVolume(v.id, { signal: ctx.signal });
    return now.status === 'available' ? now : undefined;
  };
  try {
    return paced ? await c.pacer.wait(paced.kind, paced.startedAt, check, wait, ctx.signal) : await wait();
  } catch (err) {
    if (err instanceof WaitFailedError) return failCreate(c, v.id, name, err.reason, ctx);
    if (err instanceof AbortedError) {
      const last = err instanceof WaitAbortedError ? err.lastStatus : undefined;
      throw fromCloudError(err, `create volume ${name}`, {
        signal: ctx.signal,
        deadlineHint: `Cinder volume ${v.id} is still ${last ?? status}; a retry with the same name picks it up`,
      });
    }
    throw err;
  }
}

/**
 * The volume went to `error`: find out why (Cinder user messages), delete it, and fail with a code
 * matching the cause. The delete is best effort and not bound to the call's deadline; a volume
 * that cannot be deleted now is found (in `error`) and deleted by the retry.
 */
async function failCreate(
  c: Controller,
  id: string,
  name: string,
  reason: string | undefined,
  ctx: RpcContext,
): Promise<never> {
  const why =
    reason ??
    (await latestUserMessage(c.cinder, id, ctx.signal)) ??
    'Cinder gave no reason (no user message)';
  try {
    await c.cinder.deleteVolume(id, { signal: AbortSignal.timeout(30_000) });
    ctx.log.warn({ volumeId: id, reason: why }, 'CreateVolume: volume went to error; deleted it');
  } catch (err) {
    ctx.log.warn(
      { volumeId: id, err: (err as Error).message },
      'CreateVolume: could not delete failed volume',
    );
  }
  throw new CsiError(
    classifyFailureReason(why),
    `create volume ${name}: Cinder volume ${id} went to error: ${why}`,
  );
}

/**
 * Cinder with `allow_availability_zone_fallback` creates the volume in its default zone when the
 * requested one does not exist. Such a volume violates the CO's topology requirement: delete it
 * and refuse, naming both zones.
 */
async function checkPlacement(
  c: Controller,
  v: Volume,
  zone: string | undefined,
  req: csi.TopologyRequirement__Output | null | undefined,
  ctx: RpcContext,
): Promise<void> {
  if (!zone || c.ignoreVolumeAZ) return;
  const allowed = new Set([zone, ...(req?.requisite ?? []).map((t) => t.segments?.[c.topologyKey])]);
  if (v.availability_zone && allowed.has(v.availability_zone)) return;
  await c.cinder.deleteVolume(v.id, { signal: AbortSignal.timeout(30_000) }).catch((err) => {
    ctx.log.warn(
      { volumeId: v.id, err: (err as Error).message },
      'CreateVolume: could not delete misplaced volume',
    );
  });
  throw invalidArgument(
    `availability zone ${zone} was requested but Cinder created the volume in ${v.availability_zone} ` +
      '(zone fallback: the requested zone does not exist in Cinder); the volume was deleted. ' +
      'Fix the StorageClass availability / node topology, or set ignore-volume-az',
  );
}

type Wanted = { kind: 'snapshot' | 'backup' | 'volume'; id: string };

function wantedSource(src: csi.VolumeContentSource__Output | null | undefined): Wanted | undefined {
  if (!src) return undefined;
  if (src.snapshot) {
    const id = src.snapshot.snapshot_id;
    if (!id) throw invalidArgument('volume_content_source.snapshot.snapshot_id is required');
    return id.startsWith(BACKUP_ID_PREFIX)
      ? { kind: 'backup', id: id.slice(BACKUP_ID_PREFIX.length) }
      : { kind: 'snapshot', id };
  }
  if (src.volume) {
    if (!src.volume.volume_id) throw invalidArgument('volume_content_source.volume.volume_id is required');
    return { kind: 'volume', id: src.volume.volume_id };
  }
  return undefined;
}

async function resolveSource(c: Controller, w: Wanted, signal: AbortSignal): Promise<Source> {
  const missing = (what: string) => ({ notFound: notFound(`content source ${what} ${w.id} does not exist`) });
  if (w.kind === 'snapshot') {
    const s = await c.cinder.getSnapshot(w.id, { signal }).catch((e) => {
      throw fromCloudError(e, 'content source', missing('snapshot'));
    });
    if (s.status !== 'available') {
      throw unavailable(`content source snapshot ${s.id} is ${s.status}, not available yet; retry`);
    }
    return { snapshot_id: s.id, sizeGiB: s.size };
  }
  if (w.kind === 'backup') {
    const b = await c.cinder.getBackup(w.id, { signal }).catch((e) => {
      throw fromCloudError(e, 'content source', missing('backup'));
    });
    if (b.status !== 'available')
      throw unavailable(`content source backup ${b.id} is ${b.status}, not available yet; retry`);
    return { backup_id: b.id, sizeGiB: b.size };
  }
  const v = await c.cinder.getVolume(w.id, { signal }).catch((e) => {
    throw fromCloudError(e, 'content source', missing('volume'));
  });
  if (v.status !== 'available' && v.status !== 'in-use') {
    throw unavailable(
      `content source volume ${v.id} is ${v.status}; it must be available or in-use to be cloned`,
    );
  }
  return { source_volid: v.id, sizeGiB: v.size, zone: v.availability_zone };
}

function incompatibilities(
  c: Controller,
  v: Volume,
  want: {
    req: csi.CreateVolumeRequest__Output;
    type: string | undefined;
    zone: string | undefined;
    wanted: Wanted | undefined;
  },
): string[] {
  const out: string[] = [];
  if (!sizeFits(v.size, want.req.capacity_range))
    out.push(`size ${v.size} GiB is outside the requested capacity range`);
  if (want.type && v.volume_type !== want.type && v.volume_type_id !== want.type) {
    out.push(`volume type is ${v.volume_type}, not ${want.type}`);
  }
  if (want.zone && !c.ignoreVolumeAZ && v.availability_zone !== want.zone) {
    out.push(`availability zone is ${v.availability_zone}, not ${want.zone}`);
  }
  const has = {
    snapshot: v.snapshot_id ?? undefined,
    backup: v.backup_id ?? undefined,
    volume: v.source_volid ?? undefined,
  };
  const src = has.snapshot
    ? `snapshot ${has.snapshot}`
    : has.backup
      ? `backup ${has.backup}`
      : has.volume
        ? `volume ${has.volume}`
        : 'none';
  const wantSrc = want.wanted ? `${want.wanted.kind} ${want.wanted.id}` : 'none';
  if (src !== wantSrc) out.push(`content source is ${src}, not ${wantSrc}`);
  if (want.req.volume_capabilities.some(isMultiNode) && !v.multiattach) out.push('it is not multiattach');
  return out;
}

async function requireMultiattachType(
  c: Controller,
  type: string | undefined,
  signal: AbortSignal,
): Promise<void> {
  const t = type
    ? await c.cinder.getVolumeType(type, { signal }).catch((e) => {
        throw fromCloudError(e, 'multi-node access mode', {
          notFound: invalidArgument(`volume type ${type} does not exist`),
        });
      })
    : await c.cinder.getDefaultVolumeType({ signal });
  const spec = t.extra_specs?.['multiattach'] ?? '';
  if (!/^<is>\s*true$/i.test(spec.trim())) {
    throw invalidArgument(
      `a multi-node access mode needs a multiattach volume type; type ${t.name} lacks multiattach="<is> True"`,
    );
  }
}

function describe(c: Controller, metadata: Record<string, string>): string {
  const ns = metadata['csi.storage.k8s.io/pvc/namespace'];
  const pvc = metadata['csi.storage.k8s.io/pvc/name'];
  return ns && pvc ? `Created by ${c.driverName} for PVC ${ns}/${pvc}` : `Created by ${c.driverName}`;
}
