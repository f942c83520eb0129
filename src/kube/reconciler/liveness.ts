/** The liveness rule: which VolumeAttachments account for a Cinder attachment. */
import type { LiveVa, StaleReason } from './types.ts';

/** Why an attachment is stale, or undefined when a live VolumeAttachment accounts for it. */
export function staleReason(
  att: { host: string | undefined },
  vas: readonly LiveVa[],
): StaleReason | undefined {
  if (att.host === undefined) {
    // host unknown (attachment not completed): any VolumeAttachment of the volume on an existing node keeps it
    if (vas.some((v) => v.nodeExists)) return undefined;
    return vas.length > 0 ? 'node-deleted' : 'volumeattachment-missing';
  }
  const matching = vas.filter((v) => v.nodeName === att.host || v.connectorHost === att.host);
  if (matching.some((v) => v.nodeExists)) return undefined;
  // a VolumeAttachment on an existing node whose connector host is unknown might be this one: keep it
  if (vas.some((v) => v.nodeExists && v.connectorHost === undefined)) return undefined;
  return matching.length > 0 ? 'node-deleted' : 'volumeattachment-missing';
}
