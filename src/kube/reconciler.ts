/**
 * Stale-attachment reconciler (controller): the public face of ./reconciler/.
 * stale-attachment-reconciler.ts (the pass and its scheduling; the safety rules), types.ts,
 * cinder-inventory.ts and kube-inventory.ts (the two listings), liveness.ts (which
 * VolumeAttachments keep an attachment), events.ts (Events on the PV).
 */
export { staleReason } from './reconciler/liveness.ts';
export { StaleAttachmentReconciler } from './reconciler/stale-attachment-reconciler.ts';
export type {
  ClusterVolumeSelector,
  LiveVa,
  ReconcileAction,
  ReconcileResult,
  StaleAttachmentReconcilerOptions,
  StaleReason,
} from './reconciler/types.ts';
