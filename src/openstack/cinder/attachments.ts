/** Cinder attachments (3.27+): `/attachments`. */
import type { CallOptions } from '../cinder-api.ts';
import type { AttachMode, Attachment, CreateAttachmentRequest } from '../cinder-types.ts';
import { requireFeature } from '../microversion.ts';
import { type CinderCore, dropUndefined, type Query } from './core.ts';

const path = (id: string) => `/attachments/${encodeURIComponent(id)}`;

/** `POST /attachments`; `mode` needs 3.54 (checked locally). The response holds connection_info (secrets). */
export async function createAttachment(
  c: CinderCore,
  req: CreateAttachmentRequest,
  opts: CallOptions = {},
): Promise<Attachment> {
  const res = await c.call<{ attachment: Attachment }>('POST', '/attachments', 'attachment.create', {
    signal: opts.signal,
    body: { attachment: dropUndefined({ ...req }) },
    feature: req.mode ? 'attachMode' : 'attachments',
  });
  return res.attachment;
}

export async function getAttachment(c: CinderCore, id: string, opts: CallOptions = {}): Promise<Attachment> {
  const res = await c.call<{ attachment: Attachment }>('GET', path(id), 'attachment.get', {
    signal: opts.signal,
    feature: 'attachments',
  });
  return res.attachment;
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
  const mv = await c.negotiate(opts);
  requireFeature(mv, 'attachments', 'attachment.list');
  const serverSide = await c.atLeast('3.31', opts);
  const query: Query = serverSide ? { ...filters } : {};
  const out: Attachment[] = [];
  const pages = c.iterate<Attachment>((marker) =>
    c.page<Attachment>('/attachments/detail', 'attachments', 'attachment.list', { ...query, marker }, opts),
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
  const res = await c.call<{ attachment: Attachment }>('PUT', path(id), 'attachment.update', {
    signal: opts.signal,
    body: { attachment: { connector: opts.mode ? { ...connector, mode: opts.mode } : connector } },
    feature: opts.mode ? 'attachMode' : 'attachments',
    idempotent: false,
  });
  return res.attachment;
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
  await c.call('DELETE', path(id), 'attachment.delete', { signal: opts.signal, feature: 'attachments' });
}
