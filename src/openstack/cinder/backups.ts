/** Cinder backups: `/backups`. */
import type { CallOptions, WaitOptions } from '../cinder-api.ts';
import type { Backup, BackupListFilters, CreateBackupRequest } from '../cinder-types.ts';
import type { CinderFeature } from '../microversion.ts';
import { waitForObject } from '../waiter.ts';
import { idFiltersValid, idPath, SHAPES } from './checks.ts';
import { type CinderCore, dropUndefined, emptyPage, type Page } from './core.ts';

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
  // Cinder answers a create with the id, name and links only.
  return c.one<Backup>('POST', '/backups', 'backup.create', 'backup', SHAPES.created, {
    signal: opts.signal,
    body: { backup: dropUndefined(req) },
    feature,
  });
}

export async function getBackup(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Backup> {
  return c.one<Backup>('GET', idPath('backups', id), 'backup.get', 'backup', SHAPES.backup, opts);
}

export async function listBackupsPage(
  c: CinderCore,
  filters: BackupListFilters,
  opts: CallOptions = {},
): Promise<Page<Backup>> {
  if (!idFiltersValid(filters, ['volume_id'])) return emptyPage();
  return c.page<Backup>('/backups/detail', 'backups', SHAPES.backup, 'backup.list', { ...filters }, opts);
}

export function listBackups(
  c: CinderCore,
  filters: BackupListFilters = {},
  opts: CallOptions = {},
): AsyncIterable<Backup> {
  return c.iterate((marker) => listBackupsPage(c, { ...filters, marker }, opts), filters.marker);
}

export async function deleteBackup(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', idPath('backups', id, '', 'DELETE'), 'backup.delete', opts);
}

export async function restoreBackup(
  c: CinderCore,
  id: string,
  target: { volume_id?: string; name?: string },
  opts: CallOptions = {},
): Promise<{ volume_id: string }> {
  const restore = await c.one<{ volume_id: string }>(
    'POST',
    idPath('backups', id, '/restore', 'POST'),
    'backup.restore',
    'restore',
    { volume_id: 'string' },
    { signal: opts.signal, body: { restore: dropUndefined(target) } },
  );
  return { volume_id: restore.volume_id };
}

export function waitForBackup(c: CinderCore, id: string, wait: WaitOptions): Promise<Backup | undefined> {
  return waitForObject('backup', id, (signal) => getBackup(c, id, { signal }), wait, {
    explain: async (b) => b.fail_reason ?? undefined,
  });
}
