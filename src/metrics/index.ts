export {
  createMetrics,
  type Metrics,
  type MetricsOptions,
  type NodeOp,
  type OpenStackCallInfo,
} from './metrics.ts';
export {
  type HealthResult,
  type MetricsServer,
  type MetricsServerOptions,
  parseListenAddress,
  startMetricsServer,
} from './server.ts';
