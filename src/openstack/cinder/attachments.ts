/** Cinder attachments (3.27+): `/attachments`. */
import type { CallOptions } from '../cinder-api.ts';
import type { AttachMode, Attachment, CreateAttachmentRequest } from '../cinder-types.ts';
import { requireFeature } from '../microversion.ts';
import { idFiltersValid, idPath, SHAPES } from './checks.ts';
import { type CinderCore, dropUndefined, type Query } from './core.ts';

/** `POST /attachments`; `mode` needs 3.54 (checked locally). The response holds connection_info (secrets). */
export async function createAttachment(
  c: CinderCore,
  req: CreateAttachmentRequest,
  opts: CallOptions = {},
): Promise<Attachment> {
  return c.one<Attachment>('POST', '/attachments', 'attachment.create', 'attachment', SHAPES.attachment, {
    signal: opts.signal,
    body: { attachment: dropUndefined({ ...req }) },
    feature: req.mode ? 'attachMode' : 'attachments',
  });
}

export async function getAttachment(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Attachment> {
  return c.one<Attachment>(
    'GET',
    idPath('attachments', id),
    'attachment.get',
    'attachment',
    SHAPES.attachment,
    {
      signal: opts.signal,
      feature: 'attachments',
    },
  );
}

/**
 * Every attachment (all pages of `/attachments/detail`) matching the filters. Server-side filters
 * need 3.31; below that the list is filtered here.
 */
export async function listAttachments(
  c: CinderCore,
  filters: { volume_id?: string; status?: string } = {},
  opts: CallOptions = {},
): Promise<Attachment[]> {
  if (!idFiltersValid(filters, ['volume_id'])) return [];
  const mv = await c.negotiate(opts);
  requireFeature(mv, 'attachments', 'attachment.list');
  const serverSide = await c.atLeast('3.31', opts);
  const query: Query = serverSide ? { ...filters } : {};
  const out: Attachment[] = [];
  const pages = c.iterate<Attachment>((marker) =>
    c.page<Attachment>(
      '/attachments/detail',
      'attachments',
      SHAPES.attachment,
      'attachment.list',
      { ...query, marker },
      opts,
    ),
  );
  for await (const a of pages) {
    if (filters.volume_id && a.volume_id !== filters.volume_id) continue;
    if (filters.status && a.status !== filters.status) continue;
    out.push(a);
  }
  return out;
}

/** `PUT /attachments/{id}` with the connector (mode travels inside the connector). */
export async function updateAttachment(
  c: CinderCore,
  id: string,
  connector: Record<string, unknown>,
  opts: CallOptions & { mode?: AttachMode } = {},
): Promise<Attachment> {
  const path = idPath('attachments', id, '', 'PUT');
  return c.one<Attachment>('PUT', path, 'attachment.update', 'attachment', SHAPES.attachment, {
    signal: opts.signal,
    body: { attachment: { connector: opts.mode ? { ...connector, mode: opts.mode } : connector } },
    feature: opts.mode ? 'attachMode' : 'attachments',
    idempotent: false,
  });
}

/** `os-complete` (3.44+): marks the attachment attached and the volume in-use. */
export async function completeAttachment(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.action(
    'attachments',
    id,
    'attachment.complete',
    { 'os-complete': {} },
    { signal: opts.signal, feature: 'attachmentComplete', idempotent: true },
  );
}

export async function deleteAttachment(c: CinderCore, id: string, opts: CallOptions = {}): Promise<void> {
  await c.call('DELETE', idPath('attachments', id, '', 'DELETE'), 'attachment.delete', {
    signal: opts.signal,
    feature: 'attachments',
  });
}
