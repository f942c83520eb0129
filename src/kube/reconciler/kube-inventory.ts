/**
 * The Kubernetes side of a pass: a fresh (not cached) listing of VolumeAttachments, PVs and Nodes,
 * reduced to what the liveness rule needs.
 */
import type { V1Node, V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import type { Logger } from '../../util/logger.ts';
import { connectorAnnotationKey, parseConnectorAnnotation } from '../connector-annotation.ts';
import { toKubeApiError } from '../kube-api.ts';
import type { LiveVa, StaleAttachmentReconcilerOptions } from './types.ts';

export interface KubeView {
  /** This driver's PVs by volume id. */
  pvByVolume: Map<string, V1PersistentVolume>;
  /** This driver's VolumeAttachments by volume id. */
  liveByVolume: Map<string, LiveVa[]>;
  /** Attachment ids named in a VolumeAttachment's status.attachmentMetadata. */
  referencedIds: Set<string>;
}

/** Lists Kubernetes; a failed listing throws (and the pass deletes nothing). */
export async function kubeView(
  kube: StaleAttachmentReconcilerOptions['kube'],
  driverName: string,
  logger: Logger,
  signal: AbortSignal,
): Promise<KubeView> {
  let vas: V1VolumeAttachment[];
  let pvs: V1PersistentVolume[];
  let nodeList: V1Node[];
  try {
    [vas, pvs, nodeList] = await Promise.all([
      kube.listVolumeAttachments({ signal }),
      kube.listPersistentVolumes({ signal }),
      kube.nodes.list(signal).then((r) => r.items),
    ]);
  } catch (err) {
    throw toKubeApiError(err, 'stale-attachment reconciler: list Kubernetes objects');
  }
  const annotationKey = connectorAnnotationKey(driverName);
  const nodes = new Map<string, string | undefined>(); // name → connector host
  for (const n of nodeList) {
    const name = n.metadata?.name;
    if (!name) continue;
    const a = n.metadata?.annotations?.[annotationKey];
    const parsed = a === undefined ? undefined : parseConnectorAnnotation(a);
    nodes.set(name, parsed?.ok ? parsed.connector.host : undefined);
  }
  const pvByName = new Map<string, V1PersistentVolume>();
  const pvByVolume = new Map<string, V1PersistentVolume>();
  for (const pv of pvs) {
    if (pv.spec?.csi?.driver !== driverName) continue;
    if (pv.metadata?.name) pvByName.set(pv.metadata.name, pv);
    if (pv.spec.csi.volumeHandle) pvByVolume.set(pv.spec.csi.volumeHandle, pv);
  }
  const liveByVolume = new Map<string, LiveVa[]>();
  const referencedIds = new Set<string>();
  for (const va of vas) {
    if (va.spec?.attacher !== driverName) continue;
    for (const value of Object.values(va.status?.attachmentMetadata ?? {})) referencedIds.add(value);
    const pvName = va.spec.source?.persistentVolumeName;
    const volumeId = pvName
      ? pvByName.get(pvName)?.spec?.csi?.volumeHandle
      : va.spec.source?.inlineVolumeSpec?.csi?.volumeHandle;
    if (!volumeId) {
      logger.warn(
        { volumeAttachment: va.metadata?.name, pv: pvName },
        'stale-attachment reconciler: VolumeAttachment whose volume cannot be resolved; its attachment (if any) is kept only when named in its metadata',
      );
      continue;
    }
    const nodeName = va.spec.nodeName;
    const list = liveByVolume.get(volumeId) ?? [];
    list.push({ nodeName, nodeExists: nodes.has(nodeName), connectorHost: nodes.get(nodeName) });
    liveByVolume.set(volumeId, list);
  }
  return { pvByVolume, liveByVolume, referencedIds };
}
