/**
 * What the node plugin uses of the Kubernetes glue (its Node's zone label, its connector annotation),
 * imported by it instead of index.ts so that it loads neither the controller's watch caches and
 * connector source nor the stale-attachment reconciler (bench/README.md, startup.ts).
 */
export { ConnectorPublisher } from './connector-publisher.ts';
export { createKubeApi } from './kube-api.ts';
export { zoneFromNodeLabel } from './topology.ts';
