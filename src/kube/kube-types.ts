import type { CoreV1Event, V1Node, V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import type { Logger } from '../util/logger.ts';
import type { ListWatcher } from './watch-cache.ts';

/**
 * The slice of the Kubernetes API the driver uses, behind an interface so the CSI and reconciler
 * logic can be unit-tested with doubles. `createKubeApi` implements it with the driver's own client
 * over `node:https` (light-api.ts: ~33 MiB less than @kubernetes/client-node in the controller,
 * bench/README.md); only a kubeconfig whose user needs an exec or auth-provider plugin loads
 * @kubernetes/client-node (client-node-api.ts), lazily.
 *
 * Only APIs Kubernetes 1.20 serves: core v1 (nodes, persistentvolumes, events) and
 * storage.k8s.io/v1 (volumeattachments). The types are the library's (type-only imports: nothing
 * of it is loaded at run time).
 */
export interface KubeApi {
  /** The Node, or undefined when it does not exist. */
  getNode(name: string, opts?: KubeCallOptions): Promise<V1Node | undefined>;
  /** JSON merge patch of metadata.annotations (a null value removes the key). */
  patchNodeAnnotations(
    name: string,
    annotations: Record<string, string | null>,
    opts?: KubeCallOptions,
  ): Promise<void>;
  nodes: ListWatcher<V1Node>;
  volumeAttachments: ListWatcher<V1VolumeAttachment>;
  listPersistentVolumes(opts?: KubeCallOptions): Promise<V1PersistentVolume[]>;
  listVolumeAttachments(opts?: KubeCallOptions): Promise<V1VolumeAttachment[]>;
  /** Creates a core v1 Event. */
  createEvent(namespace: string, event: CoreV1Event, opts?: KubeCallOptions): Promise<void>;
}

export interface KubeCallOptions {
  signal?: AbortSignal;
}

export interface KubeApiOptions {
  /** Path of a kubeconfig file (out of cluster). Without it: the in-cluster ServiceAccount. */
  kubeconfig?: string;
  /** Per-request timeout for non-watch calls (default 15 s). */
  requestTimeoutMs?: number;
  /** Server-side watch timeout; each watch is re-established after it (default 300 s). */
  watchTimeoutSeconds?: number;
  /** Logs which API server and credentials are used (debug). */
  logger?: Logger;
}
