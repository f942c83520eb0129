/**
 * CreateVolume: idempotent by name, waits for `available` within the call's deadline, cleans up
 * volumes that go to `error`. Identity (identity.ts): the Cinder name derived from the CSI name, the
 * marker metadata, and a description tag that survives a backup restore.
 *
 * Flow: validate the whole request (create-plan.ts) → a recent scheduling failure of the same
 * request is answered from memory (failure-memory.ts) → lock the name (a concurrent call with the
 * same name gets ABORTED) → look the name up (an existing volume is compared with every shaping
 * parameter and returned, waiting if it is still `creating`/`restoring-backup`, its metadata
 * repaired after a restore) → resolve the content source → POST /volumes → wait → repair. If the
 * deadline passes while Cinder is still working, the call fails with DEADLINE_EXCEEDED and the
 * retry finds the same volume by name. If the volume goes to `error`, the reason (Cinder user
 * message) is returned with a code chosen from it, and the failed volume is deleted.
 * What each step leaves behind when its response is lost or the process dies: docs/design.md.
 */

import type { CreateVolumeRequest, Volume } from '../../openstack/cinder-types.ts';
import { WaitAbortedError, WaitFailedError } from '../../openstack/waiter.ts';
import { AbortedError } from '../../util/abort.ts';
import { classifyFailureReason, fromCloudError, latestUserMessage } from '../cloud-errors.ts';
import {
  alreadyExists,
  Code,
  CsiError,
  invalidArgument,
  notFound,
  resourceExhausted,
  unavailable,
} from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { createSignal, type RpcContext } from '../rpc.ts';
import { type Controller, lockKey, META, withLocks } from './context.ts';
import { sizeGiB, toCsiVolume } from './convert.ts';
import {
  incompatibilities,
  type Plan,
  planCreate,
  plannedContentSource,
  type Wanted,
} from './create-plan.ts';
import { cinderName, describedAsOurs, hasMarker, markerValue } from './identity.ts';
import { poolsCouldFit } from './pool-fit.ts';

/** Metadata key Cinder sets on a volume restored from a backup. */
const SRC_BACKUP_ID = 'src_backup_id';

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
  const plan = planCreate(c, req);
  const what = `create volume ${plan.name.slice(0, 128)}`;
  const failedBefore = c.failures.check(plan.memoryKey);

  return withLocks(c, [lockKey.volumeName(plan.name)], `volume name ${plan.name}`, async () => {
    try {
      const existing = await findVolumeByName(c, plan.name, ctx.signal);
      if (existing) return { volume: await adopt(c, existing, plan, req, ctx) };

      const source = plan.wanted ? await resolveSource(c, plan.wanted, ctx.signal) : undefined;
      const size = sizeGiB(req.capacity_range, source?.sizeGiB ?? 1);
      if (failedBefore) await checkPools(c, plan, size, ctx);
      if (plan.multi) await requireMultiattachType(c, plan.type, ctx.signal);

      const body: CreateVolumeRequest = {
        size,
        name: plan.cinderName,
        description: plan.description,
        metadata: plan.metadata,
      };
      if (plan.type) body.volume_type = plan.type;
      if (plan.zone && !c.ignoreVolumeAZ) body.availability_zone = plan.zone;
      if (plan.params.imageRef) body.imageRef = plan.params.imageRef;
      if (plan.params.schedulerHints) body.scheduler_hints = plan.params.schedulerHints;
      if (source?.snapshot_id) body.snapshot_id = source.snapshot_id;
      if (source?.source_volid) body.source_volid = source.source_volid;
      if (source?.backup_id) body.backup_id = source.backup_id;

      const startedAt = Date.now();
      const created = await c.cinder.createVolume(body, { signal: createSignal() });
      ctx.log.info(
        { volumeId: created.id, size, type: plan.type, zone: plan.zone },
        'CreateVolume: Cinder volume created',
      );
      const kind = `volume|${plan.type ?? ''}|${plan.wanted?.kind ?? (plan.params.imageRef ? 'image' : 'none')}`;
      return { volume: await finish(c, created, plan, ctx, { kind, startedAt }) };
    } catch (err) {
      throw fromCloudError(err, what, { signal: ctx.signal });
    }
  });
}

/**
 * Before re-trying a request Cinder could not schedule: when the scheduler's pools are visible and
 * none could hold the volume, fail again from what they say (remembered), without a new volume.
 */
async function checkPools(c: Controller, plan: Plan, size: number, ctx: RpcContext): Promise<void> {
  const fit = await poolsCouldFit(c, size, plan.type, ctx.signal);
  if (!fit || fit.fits) return;
  const err = resourceExhausted(
    `create volume ${plan.name.slice(0, 128)}: no Cinder scheduler pool${plan.type ? ` of volume type ${plan.type}` : ''} ` +
      `can hold ${size} GiB (largest possible: ${Math.floor(fit.largestGiB)} GiB); the last attempt failed to schedule`,
  );
  c.failures.remember(plan.memoryKey, err);
  throw err;
}

/** The idempotent path: a volume with this name exists (made by an earlier try of this request?). */
async function adopt(
  c: Controller,
  existing: Volume,
  plan: Plan,
  req: csi.CreateVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.Volume> {
  ctx.log.info({ volumeId: existing.id, status: existing.status }, 'CreateVolume: volume exists');
  if (existing.status === 'error') return failCreate(c, existing.id, plan, undefined, ctx);
  if (String(existing.status).includes('deleting')) {
    throw unavailable(
      `volume ${plan.name.slice(0, 128)} (Cinder volume ${existing.id}) is being deleted; retry once it is gone`,
    );
  }
  const { problems, zoneOnly } = incompatibilities(c, existing, plan, req);
  if (zoneOnly && existing.metadata?.[META.shape] === plan.shape) {
    // This very request made it and died before checkPlacement could remove the misplaced volume.
    await checkPlacement(c, existing, plan, ctx);
  }
  if (problems.length > 0) {
    throw alreadyExists(
      `volume ${plan.name.slice(0, 128)} already exists as Cinder volume ${existing.id} with different parameters: ${problems.join('; ')}`,
    );
  }
  return finish(c, existing, plan, ctx);
}

/** Waits for `available`, repairs the metadata a restore replaced, checks the zone, answers. */
async function finish(
  c: Controller,
  v: Volume,
  plan: Plan,
  ctx: RpcContext,
  paced?: { kind: string; startedAt: number },
): Promise<csi.Volume> {
  let ready = await settle(c, v, plan, ctx, paced);
  ready = await repairMetadata(c, ready, plan, ctx);
  await checkPlacement(c, ready, plan, ctx);
  c.failures.forget(plan.memoryKey);
  return { ...toCsiVolume(c, ready, plan.zone), content_source: plannedContentSource(plan) };
}

/**
 * Cinder's backup restore replaces the target's metadata with the backed-up volume's (its CSI
 * marker, source and attachment records included): put back exactly the metadata this request
 * gives the volume. Idempotent (PUT); a lost response or a crash leaves it for the retry, which
 * recognises the volume by its name and description tag.
 */
async function repairMetadata(c: Controller, v: Volume, plan: Plan, ctx: RpcContext): Promise<Volume> {
  const intact =
    hasMarker(v.metadata, plan.name, c.clusterId) && v.metadata?.[META.source] === plan.metadata[META.source];
  if (intact) return v;
  const metadata = { ...plan.metadata };
  const cinderOwn = v.metadata?.[SRC_BACKUP_ID]; // Cinder's own record of the restore: kept
  if (cinderOwn) metadata[SRC_BACKUP_ID] = cinderOwn;
  await c.cinder.replaceVolumeMetadata(v.id, metadata, { signal: ctx.signal });
  ctx.log.info({ volumeId: v.id }, 'CreateVolume: restored the driver metadata a backup restore replaced');
  return { ...v, metadata };
}

/**
 * This cluster's volume for the CSI name, if any (the oldest when there are several). Looked up by
 * the Cinder name alone, so that a volume whose metadata a backup restore replaced is still found
 * (by its description tag) while it is `restoring-backup` and after; a volume with the name but
 * another cluster's or another name's identity is not ours and is ignored.
 */
export async function findVolumeByName(
  c: Controller,
  name: string,
  signal: AbortSignal,
): Promise<Volume | undefined> {
  const cn = cinderName(name);
  const page = await c.cinder.listVolumesPage({ name: cn }, { signal });
  const mine = page.items.filter(
    (v) =>
      v.name === cn &&
      (hasMarker(v.metadata, name, c.clusterId) ||
        (v.metadata?.[META.csiName] !== markerValue(name) && describedAsOurs(v.description, c.clusterId))),
  );
  mine.sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
  return mine.find((v) => !String(v.status).startsWith('delet')) ?? mine[0];
}

/**
 * Waits until the volume is usable; handles the error and deleting states. `paced`: a volume this
 * call just created, first polled at the times the pacer learned for its kind (pacing.ts).
 */
async function settle(
  c: Controller,
  v: Volume,
  plan: Plan,
  ctx: RpcContext,
  paced?: { kind: string; startedAt: number },
): Promise<Volume> {
  const name = plan.name.slice(0, 128);
  const status = String(v.status);
  if (status === 'deleting' || status === 'error_deleting') {
    throw unavailable(`volume ${name} (Cinder volume ${v.id}) is being deleted; retry once it is gone`);
  }
  if (status === 'error') return failCreate(c, v.id, plan, undefined, ctx);
  if (status !== 'creating' && status !== 'downloading' && status !== 'restoring-backup') return v;
  const wait = async (): Promise<Volume> => {
    const opts = {
      target: ['available'],
      failOn: ['error', 'error_restoring', 'deleting', 'error_deleting'],
      signal: ctx.signal,
    };
    // A volume this call created: concurrent creates share one listing per tick (volume-poller.ts).
    const ready =
      paced && c.cinder.waitForNewVolume
        ? await c.cinder.waitForNewVolume(v, opts)
        : await c.cinder.waitForVolume(v.id, opts);
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
    if (err instanceof WaitFailedError) return failCreate(c, v.id, plan, err.reason, ctx);
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
 * that cannot be deleted now is found (in `error`) and deleted by the retry. A failure Cinder would
 * only repeat (no capacity: RESOURCE_EXHAUSTED) is remembered for the same request once the
 * volume is deleted, so the provisioner's retries do not create and delete it again and again.
 */
async function failCreate(
  c: Controller,
  id: string,
  plan: Plan,
  reason: string | undefined,
  ctx: RpcContext,
): Promise<never> {
  const name = plan.name.slice(0, 128);
  const why =
    reason ??
    (await latestUserMessage(c.cinder, id, ctx.signal)) ??
    'Cinder gave no reason (no user message)';
  const failure = new CsiError(
    classifyFailureReason(why),
    `create volume ${name}: Cinder volume ${id} went to error: ${why.slice(0, 512)}`,
  );
  try {
    await c.cinder.deleteVolume(id, { signal: AbortSignal.timeout(30_000) });
    ctx.log.warn({ volumeId: id, reason: why }, 'CreateVolume: volume went to error; deleted it');
    if (failure.code === Code.RESOURCE_EXHAUSTED) c.failures.remember(plan.memoryKey, failure);
  } catch (err) {
    ctx.log.warn(
      { volumeId: id, err: (err as Error).message },
      'CreateVolume: could not delete failed volume',
    );
  }
  throw failure;
}

/**
 * Cinder with `allow_availability_zone_fallback` creates the volume in its default zone when the
 * requested one does not exist. Such a volume violates the CO's topology requirement: delete it
 * and refuse, naming both zones.
 */
async function checkPlacement(c: Controller, v: Volume, plan: Plan, ctx: RpcContext): Promise<void> {
  const zone = plan.zone;
  if (!zone || c.ignoreVolumeAZ) return;
  if (v.availability_zone && plan.allowedZones.has(v.availability_zone)) return;
  const err = invalidArgument(
    `availability zone ${zone} was requested but Cinder created the volume in ${v.availability_zone} ` +
      '(zone fallback: the requested zone does not exist in Cinder); the volume was deleted. ' +
      'Fix the StorageClass availability / node topology, or set ignore-volume-az',
  );
  try {
    await c.cinder.deleteVolume(v.id, { signal: AbortSignal.timeout(30_000) });
    c.failures.remember(plan.memoryKey, err); // Cinder would do the same again
  } catch (e) {
    // the retry finds the misplaced volume (same shape digest) and deletes it
    ctx.log.warn(
      { volumeId: v.id, err: (e as Error).message },
      'CreateVolume: could not delete misplaced volume',
    );
  }
  throw err;
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
