/** The stale-attachment reconciler's options, results and the views it builds of Cinder and Kubernetes. */
import type { CinderApi } from '../../openstack/cinder-api.ts';
import type { Volume, VolumeListFilters } from '../../openstack/cinder-types.ts';
import type { Logger } from '../../util/logger.ts';
import type { KubeApi } from '../kube-api.ts';

export type StaleReason = 'volumeattachment-missing' | 'node-deleted';

export interface ReconcileAction {
  /** pending: stale but within the grace period; would-delete: dry run. */
  action: 'pending' | 'deleted' | 'would-delete' | 'delete-failed';
  volumeId: string;
  attachmentId: string;
  host: string | undefined;
  reason: StaleReason;
  pvName: string | undefined;
  /** How long it has been seen stale. */
  staleForMs: number;
  error?: string;
}

export interface ReconcileResult {
  /** Attachments of this cluster's volumes examined. */
  examined: number;
  live: number;
  actions: ReconcileAction[];
}

export interface ClusterVolumeSelector {
  /** Server-side filter for this cluster's volumes (e.g. `{ metadata: { <cluster key>: <id> } }`). */
  filters: VolumeListFilters;
  /** Final check on each listed volume (defaults to: every `filters.metadata` pair matches). */
  isClusterVolume?(volume: Volume): boolean;
}

export interface StaleAttachmentReconcilerOptions {
  cinder: Pick<CinderApi, 'listVolumes' | 'listAttachments' | 'deleteAttachment'> &
    Partial<Pick<CinderApi, 'deleteVolumeMetadataKey'>>;
  kube: Pick<KubeApi, 'listVolumeAttachments' | 'listPersistentVolumes' | 'createEvent' | 'nodes'> &
    Partial<Pick<KubeApi, 'volumeAttachments'>>;
  driverName: string;
  clusterVolumes: ClusterVolumeSelector;
  logger: Logger;
  /** How long an attachment must stay stale before it is deleted (default 5 min). */
  graceMs?: number;
  /** Period between passes (default 5 min). */
  intervalMs?: number;
  /** Log and report what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Metrics hook: called for every action (including pending and dry-run ones). */
  onAction?(action: ReconcileAction): void;
  /** Namespace for Events about (cluster-scoped) PVs (default "default", like kubelet's recorder). */
  eventNamespace?: string;
  /**
   * Prefix of the volume metadata keys `<prefix><attachment id>` = node name in which the
   * controller records the node of each attachment it creates (META.attachmentPrefix in
   * src/csi/controller/context.ts; Cinder does not return an attachment's host until it is
   * complete). The record of a deleted stale attachment is removed too. Default
   * `cinder.csi.dev.attachment.`.
   */
  attachmentHostMetadataPrefix?: string;
  /**
   * The volume metadata key `<key>` = node name that the controller writes *before*
   * `POST /attachments` (META.publishIntent). An attachment no record or host names, of a volume
   * with this key, is the one that POST created (its answer lost, or the controller died before
   * recording it): it is that node's, as for ControllerPublish/Unpublish (publish.ts). The
   * reconciler judges it by that node like any other attachment, and leaves the key itself to
   * the controller (a publish of the volume may be writing it right now; the next publish,
   * unpublish or delete drops an intent nothing unrecorded is left of). Default
   * `cinder.csi.dev.publishing`.
   */
  publishIntentMetadataKey?: string;
  /** Clock, for tests. */
  now?(): number;
}

export interface CinderAttachmentView {
  attachmentId: string;
  volumeId: string;
  host: string | undefined;
}

export interface LiveVa {
  nodeName: string;
  nodeExists: boolean;
  /** The Node's published connector host, when it has a valid one. */
  connectorHost: string | undefined;
}
