/**
 * Kubernetes glue of the driver (see docs/kubernetes.md). Import this module lazily (dynamic
 * import) from the code paths that talk to Kubernetes. `createKubeApi` is the driver's own client
 * over `node:https` (light-api.ts); @kubernetes/client-node is loaded only for kubeconfigs with
 * exec/auth-provider plugins.
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
  toKubeApiError,
} from './kube-api.ts';
export {
  type ClusterVolumeSelector,
  type ReconcileAction,
  type ReconcileResult,
  StaleAttachmentReconciler,
  type StaleAttachmentReconcilerOptions,
} from './reconciler.ts';
export { DEFAULT_ZONE_LABEL, zoneFromNodeLabel } from './topology.ts';
