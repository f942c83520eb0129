/**
 * Kubernetes glue of the driver (see docs/kubernetes.md). Import this module lazily (dynamic
 * import) from the code paths that talk to Kubernetes: it pulls in @kubernetes/client-node when
 * `createKubeApi` is called.
 */
export {
  CONNECTOR_SCHEMA_VERSION,
  type ConnectorParseResult,
  connectorAnnotationKey,
  encodeConnectorAnnotation,
  parseConnectorAnnotation,
} from './connector-annotation.ts';
export {
  ConnectorPublisher,
  type ConnectorPublisherOptions,
  type PublisherState,
} from './connector-publisher.ts';
export {
  ConnectorNotRegisteredError,
  KubeConnectorSource,
  type KubeConnectorSourceOptions,
  MalformedConnectorError,
} from './connector-source.ts';
export {
  createKubeApi,
  type KubeApi,
  KubeApiError,
  type KubeApiOptions,
  loadKubeConfig,
  toKubeApiError,
} from './kube-api.ts';
export { type NodeKubeApi, nodeKubeApi } from './node-api.ts';
export {
  type ClusterVolumeSelector,
  type ReconcileAction,
  type ReconcileResult,
  StaleAttachmentReconciler,
  type StaleAttachmentReconcilerOptions,
} from './reconciler.ts';
export { DEFAULT_ZONE_LABEL, zoneFromNodeLabel } from './topology.ts';
