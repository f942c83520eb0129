/**
 * DeleteSnapshot: Cinder snapshots and (`backup:<id>`) Cinder backups. Missing → success; every
 * step is idempotent (docs/design.md, "Failure recovery").
 */

import type { Backup, Snapshot } from '../../openstack/cinder-types.ts';
import { WaitFailedError } from '../../openstack/waiter.ts';
import { fromCloudError } from '../cloud-errors.ts';
import { deleteUnderWay } from '../delete-under-way.ts';
import { failedPrecondition, invalidArgument } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import type { RpcContext } from '../rpc.ts';
import { BACKUP_ID_PREFIX, type Controller, lockKey, withLocks } from './context.ts';
import { deleteTempSnapshot } from './snapshots.ts';

const isNotFound = (err: unknown) => (err as { notFound?: boolean } | null)?.notFound === true;

export async function deleteSnapshot(
  c: Controller,
  req: csi.DeleteSnapshotRequest__Output,
  ctx: RpcContext,
): Promise<csi.DeleteSnapshotResponse> {
  if (!req.snapshot_id) throw invalidArgument('snapshot_id is required');
  const id = req.snapshot_id;
  const what = `delete snapshot ${id}`;
  return withLocks(c, [lockKey.snapshot(id)], `snapshot ${id}`, async () => {
    try {
      if (id.startsWith(BACKUP_ID_PREFIX))
        await deleteBackupSnapshot(c, id.slice(BACKUP_ID_PREFIX.length), ctx);
      else await deletePlainSnapshot(c, id, ctx);
      return {};
    } catch (err) {
      if (err instanceof WaitFailedError) {
        throw failedPrecondition(
          `${what}: Cinder did not delete it (${err.reason ?? `status ${err.status}`})`,
        );
      }
      throw fromCloudError(err, what, { signal: ctx.signal, deadlineHint: 'Cinder is still deleting it' });
    }
  });
}

/**
 * Cinder decides whether a snapshot with volumes created from it can go (docs/operations.md, per
 * backend): independent copies (fake, LVM/tgt, file) → deleted; copy-on-write clones (RBD without
 * `rbd_flatten_volume_from_snapshot`) → Cinder's volume service refuses ("Snapshot is busy") and
 * puts the snapshot back to `available`. So the driver asks Cinder to delete it and, only when
 * Cinder refused, names the dependent volumes it can find with one narrow query.
 */
async function deletePlainSnapshot(c: Controller, id: string, ctx: RpcContext): Promise<void> {
  let s: Snapshot;
  try {
    s = await c.cinder.getSnapshot(id, { signal: ctx.signal });
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  if (s.status !== 'deleting') {
    await deleteUnderWay(
      () => c.cinder.deleteSnapshot(id, { signal: ctx.signal }),
      () => c.cinder.getSnapshot(id, { signal: ctx.signal }),
    );
  }
  try {
    // A backend that refuses (e.g. snapshot busy) puts the snapshot back to available.
    await c.cinder.waitForSnapshot(id, {
      target: [],
      gone: true,
      failOn: ['error_deleting', 'error', 'available'],
      signal: ctx.signal,
    });
  } catch (err) {
    if (err instanceof WaitFailedError && err.status === 'available') {
      const deps = await dependentVolumes(c, id, ctx);
      throw failedPrecondition(
        `snapshot ${id}: Cinder refused to delete it (${err.reason ?? 'the backend keeps it'}); ` +
          (deps.length > 0
            ? `volumes created from it depend on it on this backend: ${deps.join(', ')}; delete them first`
            : 'on copy-on-write backends (RBD) volumes created from it depend on it; delete them first'),
      );
    }
    throw err;
  }
  ctx.log.info({ snapshotId: id }, 'DeleteSnapshot: deleted');
}

const MAX_NAMED_DEPENDENTS = 5;

/**
 * Up to a few volumes created from the snapshot: one page of `GET /volumes/detail?snapshot_id=`.
 * Only admins may use that filter (Cinder's resource filters): for others Cinder answers 400, and
 * the message names none rather than listing the whole project.
 */
async function dependentVolumes(c: Controller, id: string, ctx: RpcContext): Promise<string[]> {
  try {
    const page = await c.cinder.listVolumesPage(
      { snapshot_id: id, limit: MAX_NAMED_DEPENDENTS + 1 },
      { signal: ctx.signal },
    );
    // An older Cinder may ignore the filter: keep only real dependents.
    const ids = page.items.filter((v) => v.snapshot_id === id).map((v) => v.id);
    return ids.length > MAX_NAMED_DEPENDENTS ? [...ids.slice(0, MAX_NAMED_DEPENDENTS), '...'] : ids;
  } catch (err) {
    ctx.log.debug({ snapshotId: id, err: (err as Error).message }, 'cannot look up dependent volumes');
    return [];
  }
}

async function deleteBackupSnapshot(c: Controller, backupId: string, ctx: RpcContext): Promise<void> {
  let b: Backup;
  try {
    b = await c.cinder.getBackup(backupId, { signal: ctx.signal });
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  if (b.status !== 'deleting') {
    await deleteUnderWay(
      () => c.cinder.deleteBackup(backupId, { signal: ctx.signal }),
      () => c.cinder.getBackup(backupId, { signal: ctx.signal }),
    );
  }
  await c.cinder.waitForBackup(backupId, {
    target: [],
    gone: true,
    failOn: ['error_deleting', 'error'],
    signal: ctx.signal,
  });
  if (b.name) await deleteTempSnapshot(c, b.name, ctx);
  ctx.log.info({ backupId }, 'DeleteSnapshot: backup deleted');
}
