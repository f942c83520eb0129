/** Cinder backups: `/backups`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { Backup, CreateBackupRequest } from '../cinder-types.ts';
import type { CinderFeature } from '../microversion.ts';
import { waitForStatus } from '../waiter.ts';
import { type CinderCore, dropUndefined, type Page } from './core.ts';

export interface BackupListFilters {
  name?: string;
  volume_id?: string;
  limit?: number;
  marker?: string;
}

const path = (id: string) => `/backups/${encodeURIComponent(id)}`;

export async function createBackup(
  c: CinderCore,
  req: CreateBackupRequest,
  opts: CallOptions = {},
): Promise<Backup> {
  const feature: CinderFeature | undefined = req.availability_zone
    ? 'backupAvailabilityZone'
    : req.metadata
      ? 'backupMetadata'
      : undefined;
  const res = await c.call<{ backup: Backup }>('POST', '/backups', 'backup.create', {
    signal: opts.signal,
    body: { backup: dropUndefined(req) },
    feature,
  });
  return res.backup;
}

export async function getBackup(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Backup> {
  const res = await c.call<{ backup: Backup }>('GET', path(id), 'backup.get', opts);
  return res.backup;
}

export function listBackupsPage(
  c: CinderCore,
  filters: BackupListFilters,
  opts: CallOptions = {},
): Promise<Page<Backup>> {
  return c.page<Backup>('/backups/detail', 'backups', 'backup.list', { ...filters }, opts);
}

export function listBackups(
  c: CinderCore,
  filters: BackupListFilters = {},
  opts: CallOptions = {},
): AsyncIterable<Backup> {
  return c.iterate((marker) => listBackupsPage(c, { ...filters, marker }, opts), filters.marker);
}

export async function deleteBackup(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', path(id), 'backup.delete', opts);
}

export async function restoreBackup(
  c: CinderCore,
  id: string,
  target: { volume_id?: string; name?: string },
  opts: CallOptions = {},
): Promise<{ volume_id: string }> {
  const res = await c.call<{ restore: { volume_id: string; backup_id: string } }>(
    'POST',
    `${path(id)}/restore`,
    'backup.restore',
    { signal: opts.signal, body: { restore: dropUndefined(target) } },
  );
  return { volume_id: res.restore.volume_id };
}

export function waitForBackup(c: CinderCore, id: string, wait: WaitOptions): Promise<Backup | undefined> {
  return waitForStatus<Backup>({
    resource: 'backup',
    id,
    fetch: (signal) => getBackup(c, id, { signal }),
    status: (b) => b.status,
    target: wait.target,
    failOn: wait.failOn,
    gone: wait.gone,
    signal: wait.signal,
    explain: async (b) => b.fail_reason ?? undefined,
  });
}
