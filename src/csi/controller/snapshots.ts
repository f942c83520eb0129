/**
 * CreateSnapshot, ListSnapshots, GetSnapshot (DeleteSnapshot: delete-snapshot.ts).
 *
 * CSI snapshot ids: a Cinder snapshot id, or `backup:<Cinder backup id>` for snapshots of
 * VolumeSnapshotClass parameter `type: backup`. A backup is taken from a temporary Cinder snapshot
 * (name `<csi name>-tmp`, metadata `cinder.csi.dev/backup-of`), deleted once the backup is
 * available (or when the backup is deleted).
 *
 * Idempotent by name + source: the same name on another source volume → ALREADY_EXISTS. A snapshot
 * that is not ready within `snapshotWaitMs` (or shortly before the call's deadline) is returned
 * with ready_to_use=false; the snapshotter calls again until it is true.
 *
 * ListSnapshots shows this cluster's snapshots (metadata `cinder.csi.dev/cluster`); backups are
 * only listed by id. Whether a snapshot with volumes created from it can be deleted is Cinder's
 * (the backend's) decision: refused on copy-on-write backends (RBD) → FAILED_PRECONDITION naming
 * the dependent volumes; allowed where restored volumes are independent copies.
 */

import type { Backup, Snapshot } from '../../openstack/cinder-types.ts';
import { WaitAbortedError, WaitFailedError } from '../../openstack/waiter.ts';
import { AbortedError } from '../../util/abort.ts';
import { classifyFailureReason, fromCloudError, latestUserMessage } from '../cloud-errors.ts';
import {
  alreadyExists,
  CsiError,
  failedPrecondition,
  invalidArgument,
  notFound,
  unavailable,
} from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { createSignal, type RpcContext } from '../rpc.ts';
import { BACKUP_ID_PREFIX, type Controller, lockKey, META, softDeadline, withLocks } from './context.ts';
import { backupToCsiSnapshot, toCsiSnapshot } from './convert.ts';
import { checkName, cinderName, hasMarker, markerMetadata, markerValue } from './identity.ts';
import { cinderPage } from './paging.ts';
import { parseSnapshotParams, type SnapshotParams } from './params.ts';

const _UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_SNAPSHOT_WAIT_MS = 60_000;

const isNotFound = (err: unknown) => (err as { notFound?: boolean } | null)?.notFound === true;

export async function createSnapshot(
  c: Controller,
  req: csi.CreateSnapshotRequest__Output,
  ctx: RpcContext,
): Promise<csi.CreateSnapshotResponse> {
  checkName(req.name);
  checkName(req.source_volume_id, 'source_volume_id');
  const params = parseSnapshotParams(req.parameters);
  const what = `create snapshot ${req.name.slice(0, 128)} of volume ${req.source_volume_id.slice(0, 128)}`;
  return withLocks(c, [lockKey.snapshotName(req.name)], `snapshot name ${req.name}`, async () => {
    try {
      const snapshot =
        params.kind === 'backup'
          ? await createBackupSnapshot(c, req, params, ctx)
          : await createPlainSnapshot(c, req, params, ctx);
      return { snapshot };
    } catch (err) {
      throw fromCloudError(err, what, {
        signal: ctx.signal,
        deadlineHint: 'Cinder is still working on it; a retry with the same name picks it up',
      });
    }
  });
}

async function sourceVolume(c: Controller, id: string, ctx: RpcContext, force: boolean) {
  const v = await c.cinder.getVolume(id, { signal: ctx.signal }).catch((e) => {
    throw fromCloudError(e, 'snapshot source', { notFound: notFound(`source volume ${id} does not exist`) });
  });
  if (v.status === 'in-use' && !force) {
    throw failedPrecondition(`source volume ${id} is in use and the VolumeSnapshotClass sets force=false`);
  }
  if (v.status !== 'available' && v.status !== 'in-use') {
    const transient = ['creating', 'attaching', 'detaching', 'reserved', 'extending', 'retyping'].includes(
      String(v.status),
    );
    const msg = `source volume ${id} is ${v.status}; Cinder snapshots only available or in-use volumes`;
    throw transient ? unavailable(`${msg}; retry`) : failedPrecondition(msg);
  }
  return v;
}

async function findSnapshot(c: Controller, name: string, signal: AbortSignal): Promise<Snapshot | undefined> {
  const cn = cinderName(name);
  const page = await c.cinder.listSnapshotsPage({ name: cn }, { signal });
  return page.items.find((s) => s.name === cn && hasMarker(s.metadata, name, c.clusterId));
}

async function createPlainSnapshot(
  c: Controller,
  req: csi.CreateSnapshotRequest__Output,
  params: SnapshotParams,
  ctx: RpcContext,
): Promise<csi.Snapshot> {
  // The name lookup and the source check are independent: run them together (one round trip less).
  const [found, source] = await Promise.allSettled([
    findSnapshot(c, req.name, ctx.signal),
    sourceVolume(c, req.source_volume_id, ctx, params.force),
  ]);
  if (found.status === 'rejected') throw found.reason;
  let s = found.value;
  if (s && s.volume_id !== req.source_volume_id) {
    throw alreadyExists(
      `snapshot ${req.name} already exists (Cinder snapshot ${s.id}) for another volume ${s.volume_id}`,
    );
  }
  let paced: { kind: string; startedAt: number } | undefined;
  if (!s) {
    if (source.status === 'rejected') throw source.reason;
    const v = source.value;
    paced = { kind: `snapshot|${v.volume_type ?? ''}`, startedAt: Date.now() };
    s = await c.cinder.createSnapshot(
      {
        volume_id: v.id,
        name: cinderName(req.name),
        description: `Created by ${c.driverName}`,
        force: v.status === 'in-use' ? true : undefined,
        metadata: { ...params.metadata, ...markerMetadata(req.name, c.clusterId) },
      },
      { signal: createSignal() },
    );
    ctx.log.info({ snapshotId: s.id, volumeId: v.id }, 'CreateSnapshot: Cinder snapshot created');
  }
  const ready = await settleSnapshot(c, s, ctx, undefined, paced);
  return toCsiSnapshot(ready);
}

/** Waits for `available` for a while; `error` → delete it and fail with the reason. */
async function settleSnapshot(
  c: Controller,
  s: Snapshot,
  ctx: RpcContext,
  capMs?: number,
  paced?: { kind: string; startedAt: number },
): Promise<Snapshot> {
  if (s.status === 'available') return s;
  if (String(s.status).startsWith('error')) return failSnapshot(c, s.id, undefined, ctx);
  if (s.status === 'deleting')
    throw unavailable(`snapshot ${s.name} (${s.id}) is being deleted; retry once it is gone`);
  const signal = softDeadline(
    ctx.signal,
    ctx.deadline,
    capMs ?? c.snapshotWaitMs ?? DEFAULT_SNAPSHOT_WAIT_MS,
  );
  const wait = async () => (await c.cinder.waitForSnapshot(s.id, { target: ['available'], signal })) ?? s;
  const check = async () => {
    const now = await c.cinder.getSnapshot(s.id, { signal });
    return now.status === 'available' ? now : undefined;
  };
  try {
    return paced ? await c.pacer.wait(paced.kind, paced.startedAt, check, wait, signal) : await wait();
  } catch (err) {
    if (err instanceof WaitFailedError) return failSnapshot(c, s.id, err.reason, ctx);
    if (err instanceof AbortedError && !ctx.signal.aborted) {
      const last = err instanceof WaitAbortedError ? err.lastStatus : undefined;
      return { ...s, status: last ?? s.status }; // not ready yet: ready_to_use=false
    }
    throw err;
  }
}

async function failSnapshot(
  c: Controller,
  id: string,
  reason: string | undefined,
  ctx: RpcContext,
): Promise<never> {
  const why = reason ?? (await latestUserMessage(c.cinder, id, ctx.signal)) ?? 'Cinder gave no reason';
  await c.cinder.deleteSnapshot(id, { signal: AbortSignal.timeout(30_000) }).catch((err) => {
    ctx.log.warn({ snapshotId: id, err: (err as Error).message }, 'could not delete failed snapshot');
  });
  throw new CsiError(classifyFailureReason(why), `Cinder snapshot ${id} went to error: ${why}`);
}

// ---------------------------------------------------------------- backups

/** The temporary snapshot of the backup whose Cinder name is `backupName`. */
const tmpName = (backupName: string) => `${backupName}-tmp`;

async function findBackup(c: Controller, name: string, signal: AbortSignal): Promise<Backup | undefined> {
  const cn = cinderName(name);
  for await (const b of c.cinder.listBackups({ name: cn }, { signal })) {
    // Backups carry metadata only from microversion 3.43; older ones are matched by name alone.
    const marker = b.metadata?.[META.csiName];
    if (
      b.name === cn &&
      (b.metadata?.[META.cluster] ?? c.clusterId) === c.clusterId &&
      (marker === undefined || marker === markerValue(name))
    )
      return b;
  }
  return undefined;
}

/** `backupName`: the backup's Cinder name (cinderName of its CSI name). */
async function findTempSnapshot(
  c: Controller,
  backupName: string,
  signal: AbortSignal,
): Promise<Snapshot | undefined> {
  const page = await c.cinder.listSnapshotsPage({ name: tmpName(backupName) }, { signal });
  return page.items.find(
    (s) =>
      s.name === tmpName(backupName) &&
      s.metadata?.[META.backupOf] !== undefined &&
      s.metadata?.[META.cluster] === c.clusterId,
  );
}

export async function deleteTempSnapshot(c: Controller, backupName: string, ctx: RpcContext): Promise<void> {
  const tmp = await findTempSnapshot(c, backupName, ctx.signal);
  if (!tmp) return;
  // Cinder puts the source snapshot back to `available` only after the backup is marked done: a
  // delete in between is refused ("status must be available or error"), so wait for it first.
  if (tmp.status !== 'available' && tmp.status !== 'error') {
    await c.cinder.waitForSnapshot(tmp.id, {
      target: ['available', 'error'],
      failOn: [],
      gone: true,
      signal: ctx.signal,
    });
  }
  await c.cinder.deleteSnapshot(tmp.id, { signal: ctx.signal }).catch((err) => {
    if (!isNotFound(err)) throw err;
  });
  ctx.log.info({ snapshotId: tmp.id, backup: backupName }, 'deleted temporary snapshot of backup');
}

async function createBackupSnapshot(
  c: Controller,
  req: csi.CreateSnapshotRequest__Output,
  params: SnapshotParams,
  ctx: RpcContext,
): Promise<csi.Snapshot> {
  let b = await findBackup(c, req.name, ctx.signal);
  if (b && b.volume_id !== req.source_volume_id) {
    throw alreadyExists(
      `snapshot ${req.name} already exists (Cinder backup ${b.id}) for another volume ${b.volume_id}`,
    );
  }
  if (!b) {
    const v = await sourceVolume(c, req.source_volume_id, ctx, params.force);
    let tmp = await findTempSnapshot(c, cinderName(req.name), ctx.signal);
    tmp ??= await c.cinder.createSnapshot(
      {
        volume_id: v.id,
        name: tmpName(cinderName(req.name)),
        description: `Temporary snapshot for backup ${cinderName(req.name)}, created by ${c.driverName}`,
        force: v.status === 'in-use' ? true : undefined,
        metadata: { [META.backupOf]: markerValue(req.name), [META.cluster]: c.clusterId },
      },
      { signal: createSignal() },
    );
    // Without its temporary snapshot there is no backup id to return yet: wait for the whole call.
    tmp = await c.cinder
      .waitForSnapshot(tmp.id, { target: ['available'], signal: ctx.signal })
      .catch((err) => {
        if (err instanceof WaitFailedError) return failSnapshot(c, err.id, err.reason, ctx);
        throw err;
      });
    if (!tmp) throw unavailable(`temporary snapshot of backup ${req.name} disappeared; retry`);
    b = await c.cinder.createBackup(
      {
        volume_id: v.id,
        snapshot_id: tmp.id,
        name: cinderName(req.name),
        description: `Created by ${c.driverName}`,
        ...(c.cinder.supports('3.43')
          ? { metadata: { ...params.metadata, ...markerMetadata(req.name, c.clusterId) } }
          : {}),
      },
      { signal: createSignal() },
    );
    // Cinder answers POST /backups with the id, name and links only: fill in what is known.
    b = {
      ...b,
      volume_id: b.volume_id ?? v.id,
      size: b.size ?? v.size,
      status: b.status ?? 'creating',
      created_at: b.created_at ?? new Date().toISOString(),
    };
    ctx.log.info({ backupId: b.id, volumeId: v.id }, 'CreateSnapshot: Cinder backup created');
  }
  if (b.status !== 'available') {
    if (String(b.status).startsWith('error')) return failBackup(c, b, cinderName(req.name), ctx);
    const signal = softDeadline(ctx.signal, ctx.deadline, c.snapshotWaitMs ?? DEFAULT_SNAPSHOT_WAIT_MS);
    try {
      b = (await c.cinder.waitForBackup(b.id, { target: ['available'], signal })) ?? b;
    } catch (err) {
      if (err instanceof WaitFailedError) return failBackup(c, b, cinderName(req.name), ctx);
      if (!(err instanceof WaitAbortedError) || ctx.signal.aborted) throw err;
      return backupToCsiSnapshot(b); // still creating: ready_to_use=false, the snapshotter calls again
    }
  }
  await deleteTempSnapshot(c, cinderName(req.name), ctx);
  return backupToCsiSnapshot(b);
}

async function failBackup(c: Controller, b: Backup, name: string, ctx: RpcContext): Promise<never> {
  const fresh = await c.cinder.getBackup(b.id, { signal: ctx.signal }).catch(() => b);
  const why = fresh.fail_reason ?? 'Cinder gave no reason';
  await c.cinder.deleteBackup(b.id, { signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
  await deleteTempSnapshot(c, name, ctx).catch(() => undefined);
  if (/service not found|cinder-backup/i.test(why)) {
    throw failedPrecondition(
      `Cinder backup ${b.id} failed: ${why} (this cloud runs no cinder-backup service; use a VolumeSnapshotClass with type: snapshot)`,
    );
  }
  throw new CsiError(classifyFailureReason(why), `Cinder backup ${b.id} failed: ${why}`);
}

// ---------------------------------------------------------------- ListSnapshots / GetSnapshot

async function lookup(c: Controller, id: string, ctx: RpcContext): Promise<csi.Snapshot | undefined> {
  try {
    if (id.startsWith(BACKUP_ID_PREFIX)) {
      return backupToCsiSnapshot(
        await c.cinder.getBackup(id.slice(BACKUP_ID_PREFIX.length), { signal: ctx.signal }),
      );
    }
    return toCsiSnapshot(await c.cinder.getSnapshot(id, { signal: ctx.signal }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw fromCloudError(err, `get snapshot ${id}`, { signal: ctx.signal });
  }
}

export async function getSnapshot(
  c: Controller,
  req: csi.GetSnapshotRequest__Output,
  ctx: RpcContext,
): Promise<csi.GetSnapshotResponse> {
  if (!req.snapshot_id) throw invalidArgument('snapshot_id is required');
  const s = await lookup(c, req.snapshot_id, ctx);
  if (!s) throw notFound(`snapshot ${req.snapshot_id} does not exist`);
  return { snapshot: s };
}

export async function listSnapshots(
  c: Controller,
  req: csi.ListSnapshotsRequest__Output,
  ctx: RpcContext,
): Promise<csi.ListSnapshotsResponse> {
  if (req.snapshot_id) {
    if (req.max_entries < 0) throw invalidArgument('max_entries must not be negative');
    const s = await lookup(c, req.snapshot_id, ctx);
    const match = s && (!req.source_volume_id || s.source_volume_id === req.source_volume_id);
    return { entries: match ? [{ snapshot: s }] : [], next_token: '' };
  }
  const page = await cinderPage('snapshot', req, ctx, (q) =>
    c.cinder.listSnapshotsPage(
      { volume_id: req.source_volume_id || undefined, ...q },
      { signal: ctx.signal },
    ),
  );
  const mine = page.items.filter(
    (s) => s.metadata?.[META.cluster] === c.clusterId && !s.metadata?.[META.backupOf],
  );
  return { entries: mine.map((s) => ({ snapshot: toCsiSnapshot(s) })), next_token: page.next ?? '' };
}
