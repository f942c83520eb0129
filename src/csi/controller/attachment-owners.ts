/**
 * Which node each attachment of a volume is for, read from Cinder's own state (the design and why
 * it is built this way: publish.ts's header).
 *
 * Sources, all stored in Cinder:
 *   - the attachments themselves: `GET /attachments/detail?volume_id=<id>` (every state: reserved,
 *     attaching, attached, error_*), the truth of what exists;
 *   - the record `cinder.csi.dev.attachment.<attachment id>` = node in the volume's metadata,
 *     written after the attachment was created (a cache of the owner);
 *   - the volume's `attachments[].host_name` (Cinder shows it to admins only, and only for
 *     completed attachments);
 *   - the intent `cinder.csi.dev.publishing` = node in the volume's metadata, written *before*
 *     `POST /attachments` and removed once the new attachment is recorded. A live attachment that
 *     no record names is the one that POST created (its response was lost, or the controller died
 *     before recording it): it belongs to the intent's node.
 */
import type { Attachment, Volume } from '../../openstack/cinder-types.ts';
import type { RpcContext } from '../rpc.ts';
import { type Controller, META } from './context.ts';

/** Attachment states that hold (or are about to hold) a connection to a host. */
const GONE = new Set(['detached', 'deleted']);

export interface VolumeAttachments {
  /** Live attachments of the volume, as Cinder lists them. */
  live: Attachment[];
  /** attachment id → node, for every live attachment whose node is known (records, host_name, intent). */
  owner: Map<string, string>;
  /** Live attachments whose node only the intent tells (not yet recorded). */
  unrecorded: Attachment[];
  /** Live attachments no record, host name or intent accounts for (not made by this driver). */
  foreign: Attachment[];
  /** The intent's node, if an intent is stored. */
  intent: string | undefined;
  /** Record keys (metadata) whose attachment no longer exists. */
  staleRecords: string[];
}

const recordKey = (attachmentId: string) => `${META.attachmentPrefix}${attachmentId}`;

/** Reads the volume's live attachments and works out their owners (no writes). */
export async function readAttachments(
  c: Controller,
  v: Volume,
  signal: AbortSignal,
): Promise<VolumeAttachments> {
  const listed = await c.cinder.listAttachments({ volume_id: v.id }, { signal });
  const live = listed.filter((a) => a.volume_id === v.id && !GONE.has(String(a.status)));
  const liveIds = new Set(live.map((a) => a.id));
  const recorded = new Map<string, string>();
  const staleRecords: string[] = [];
  for (const [k, node] of Object.entries(v.metadata ?? {})) {
    if (!k.startsWith(META.attachmentPrefix)) continue;
    const id = k.slice(META.attachmentPrefix.length);
    if (liveIds.has(id) && node) recorded.set(id, node);
    else staleRecords.push(k);
  }
  for (const a of v.attachments ?? []) {
    if (a.host_name && liveIds.has(a.attachment_id) && !recorded.has(a.attachment_id)) {
      recorded.set(a.attachment_id, a.host_name);
    }
  }
  const intent = v.metadata?.[META.publishIntent] || undefined;
  const owner = new Map(recorded);
  const unrecorded: Attachment[] = [];
  const foreign: Attachment[] = [];
  for (const a of live) {
    if (recorded.has(a.id)) continue;
    if (intent) {
      owner.set(a.id, intent);
      unrecorded.push(a);
    } else {
      foreign.push(a);
    }
  }
  return { live, owner, unrecorded, foreign, intent, staleRecords };
}

/** Records `node` as the owner of the attachments (one metadata write; idempotent). */
export async function recordOwner(
  c: Controller,
  volumeId: string,
  attachmentIds: string[],
  node: string,
  signal: AbortSignal,
): Promise<void> {
  if (attachmentIds.length === 0) return;
  const md: Record<string, string> = {};
  for (const id of attachmentIds) md[recordKey(id)] = node;
  await c.cinder.setVolumeMetadata(volumeId, md, { signal });
}

/** Stores the intent to create an attachment for `node` (before `POST /attachments`). */
export async function writeIntent(c: Controller, volumeId: string, node: string, signal: AbortSignal) {
  await c.cinder.setVolumeMetadata(volumeId, { [META.publishIntent]: node }, { signal });
}

/** Removes metadata keys; a key (or volume) already gone is fine. */
export async function dropKeys(c: Controller, volumeId: string, keys: string[], signal: AbortSignal) {
  for (const k of keys) {
    await c.cinder.deleteVolumeMetadataKey(volumeId, k, { signal }).catch((err) => {
      if (!(err as { notFound?: boolean }).notFound) throw err;
    });
  }
}

/**
 * Makes the stored state say what the attachments say: attachments only the intent accounts for
 * are recorded for the intent's node, then the intent is removed. Safe to repeat at any point.
 */
export async function settleIntent(
  c: Controller,
  volumeId: string,
  s: VolumeAttachments,
  ctx: RpcContext,
): Promise<void> {
  if (!s.intent) return;
  if (s.unrecorded.length > 0) {
    await recordOwner(
      c,
      volumeId,
      s.unrecorded.map((a) => a.id),
      s.intent,
      ctx.signal,
    );
    ctx.log.info(
      { volumeId, nodeId: s.intent, attachmentIds: s.unrecorded.map((a) => a.id) },
      'adopted attachment(s) created for this node whose creation was never recorded',
    );
  }
  await dropKeys(c, volumeId, [META.publishIntent], ctx.signal);
}

/** Attachments of `node` first the most advanced (attached, attaching, reserved, errors last). */
export function ownedBy(s: VolumeAttachments, node: string): Attachment[] {
  const rank = (a: Attachment) =>
    a.status === 'attached' ? 0 : a.status === 'attaching' ? 1 : a.status === 'reserved' ? 2 : 3;
  return s.live.filter((a) => s.owner.get(a.id) === node).sort((x, y) => rank(x) - rank(y));
}
