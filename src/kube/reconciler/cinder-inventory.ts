/**
 * The Cinder side of a pass: this cluster's volumes, their attachments (with the host of each),
 * and removal of the controller's host record of a deleted attachment.
 */
import type { Volume, VolumeListFilters } from '../../openstack/cinder-types.ts';
import type { Logger } from '../../util/logger.ts';
import type {
  CinderAttachmentView,
  ClusterVolumeSelector,
  StaleAttachmentReconcilerOptions,
} from './types.ts';

type Cinder = StaleAttachmentReconcilerOptions['cinder'];

export const DEFAULT_ATTACHMENT_HOST_PREFIX = 'cinder.csi.dev.attachment.';
export const DEFAULT_PUBLISH_INTENT_KEY = 'cinder.csi.dev.publishing';

/** This cluster's volumes by id: the selector's server-side filter, then its final check. */
export async function listClusterVolumes(
  cinder: Cinder,
  selector: ClusterVolumeSelector,
  signal: AbortSignal,
): Promise<Map<string, Volume>> {
  const volumes = new Map<string, Volume>();
  const isOurs = selector.isClusterVolume ?? ((v: Volume) => matchesMetadata(v, selector.filters));
  for await (const v of cinder.listVolumes(selector.filters, { signal })) {
    if (isOurs(v)) volumes.set(v.id, v);
  }
  return volumes;
}

/**
 * Attachments of the given volumes: the attachments API (every state) joined with their host:
 * the volume's `attachments` (completed ones), the controller's metadata record, or, for one no
 * record names, the controller's publish intent on the volume (the node its POST was for).
 */
export async function cinderAttachments(
  cinder: Cinder,
  volumes: Map<string, Volume>,
  prefix: string,
  signal: AbortSignal,
  intentKey = DEFAULT_PUBLISH_INTENT_KEY,
): Promise<CinderAttachmentView[]> {
  if (volumes.size === 0) return [];
  const hostOf = new Map<string, string>();
  const out = new Map<string, CinderAttachmentView>();
  for (const v of volumes.values()) {
    for (const [k, node] of Object.entries(v.metadata ?? {})) {
      if (k.startsWith(prefix) && node) hostOf.set(k.slice(prefix.length), node);
    }
    for (const a of v.attachments ?? []) {
      if (a.host_name) hostOf.set(a.attachment_id, a.host_name);
      out.set(a.attachment_id, {
        attachmentId: a.attachment_id,
        volumeId: v.id,
        host: hostOf.get(a.attachment_id),
      });
    }
  }
  // a volume only lists completed attachments; the attachments API also has reserved/attaching ones
  const needList = [...volumes.values()].some(
    (v) => v.status !== 'available' || (v.attachments?.length ?? 0) > 0,
  );
  if (needList) {
    for (const a of await cinder.listAttachments({}, { signal })) {
      if (!volumes.has(a.volume_id) || a.status === 'deleted' || a.status === 'detached') continue;
      out.set(a.id, {
        attachmentId: a.id,
        volumeId: a.volume_id,
        host: hostOf.get(a.id) ?? a.host ?? (volumes.get(a.volume_id)?.metadata?.[intentKey] || undefined),
      });
    }
  }
  return [...out.values()];
}

/**
 * Removes the controller's host record of a deleted attachment (best effort, per key: a
 * read-modify-write of all metadata could race with a concurrent publish; a record of a missing
 * attachment is harmless). Cinder cannot delete a key containing "/" per key (404).
 */
export async function dropHostRecord(
  cinder: Cinder,
  logger: Logger,
  prefix: string,
  volumeId: string,
  attachmentId: string,
  signal: AbortSignal,
): Promise<void> {
  const del = cinder.deleteVolumeMetadataKey;
  if (!del) return;
  try {
    await del.call(cinder, volumeId, `${prefix}${attachmentId}`, { signal });
  } catch (err) {
    if ((err as { status?: number }).status !== 404) {
      logger.warn(
        { volumeId, attachmentId, err: (err as Error).message },
        'could not remove the attachment host record',
      );
    }
  }
}

function matchesMetadata(v: Volume, filters: VolumeListFilters): boolean {
  const want = Object.entries(filters.metadata ?? {});
  if (want.length === 0) return false; // without a cluster marker nothing is ours: refuse to guess
  return want.every(([k, val]) => v.metadata?.[k] === val);
}
