import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Node-side operations timed by `cinder_csi_node_operation_duration_seconds`. */
export type NodeOp = 'stage' | 'unstage' | 'attach' | 'detach' | 'publish' | 'unpublish' | 'expand';

/** One OpenStack HTTP call; the same shape as the HTTP core's `HttpObserver.onResponse` argument. */
export interface OpenStackCallInfo {
  service?: string;
  operation: string;
  method: string;
  /** HTTP status, or 'error' when no response arrived (timeout, connection refused, TLS). */
  status: number | 'error';
  durationMs: number;
}

/**
 * The driver's Prometheus instruments. Structurally compatible with the gRPC server's `RpcObserver`
 * (observeRpc, rpcInFlight) and, through `observeOpenStack`, with the HTTP core's `HttpObserver`:
 * `{ onResponse: (info) => metrics.observeOpenStack(info) }`.
 */
export interface Metrics {
  /** This instance's own registry (never prom-client's global one). */
  registry: Registry;
  /** A finished CSI RPC: method as the gRPC layer names it ('Controller/CreateVolume'), gRPC code name ('OK'), seconds. */
  observeRpc(method: string, code: string, seconds: number): void;
  rpcInFlight: { inc(method: string): void; dec(method: string): void };
  observeOpenStack(info: OpenStackCallInfo): void;
  observeNodeOp(op: NodeOp, seconds: number, ok: boolean): void;
  /** A Keystone token fetch (initial or refresh). */
  tokenRefresh(ok: boolean): void;
  /** One action of the stale-attachment reconciler (e.g. 'detached', 'event', 'skipped'). */
  reconciler(action: string): void;
}

export interface MetricsOptions {
  /** Metric name prefix; default 'cinder_csi_'. */
  prefix?: string;
  /** Also collect prom-client's process/Node.js metrics (CPU, memory, event loop); default true. */
  defaultMetrics?: boolean;
  /** When given, exports `<prefix>build_info{version}` = 1. */
  version?: string;
}

// CSI calls range from a millisecond (probes, capabilities) to minutes (create from a large
// snapshot, attach on a slow backend); the sidecars' default timeouts are 60-300 s.
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const OPENSTACK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
// iSCSI logins, multipath settling and mkfs of large volumes take seconds to minutes.
const NODE_OP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Label value for an optional string: Prometheus has no null, and empty values read badly. */
function labelOf(value: string | undefined): string {
  return value === undefined || value === '' ? 'unknown' : value;
}

/** Creates a fresh set of instruments in a registry of its own (so tests and instances never share). */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const prefix = opts.prefix ?? 'cinder_csi_';
  const registry = new Registry();
  const registers = [registry];

  const rpcRequests = new Counter({
    name: `${prefix}rpc_requests_total`,
    help: 'CSI RPCs handled, by method and gRPC status code.',
    labelNames: ['method', 'code'] as const,
    registers,
  });
  const rpcDuration = new Histogram({
    name: `${prefix}rpc_duration_seconds`,
    help: 'Time to handle a CSI RPC, by method and gRPC status code.',
    labelNames: ['method', 'code'] as const,
    buckets: RPC_BUCKETS,
    registers,
  });
  const inFlight = new Gauge({
    name: `${prefix}inflight_operations`,
    help: 'CSI RPCs currently being handled, by method.',
    labelNames: ['method'] as const,
    registers,
  });
  const osRequests = new Counter({
    name: `${prefix}openstack_requests_total`,
    help: 'OpenStack API calls, by service type, operation and HTTP status ("error" = no response).',
    labelNames: ['service', 'operation', 'status'] as const,
    registers,
  });
  const osDuration = new Histogram({
    name: `${prefix}openstack_request_duration_seconds`,
    help: 'OpenStack API call latency (including retries), by service type and operation.',
    labelNames: ['service', 'operation'] as const,
    buckets: OPENSTACK_BUCKETS,
    registers,
  });
  const nodeOps = new Histogram({
    name: `${prefix}node_operation_duration_seconds`,
    help: 'Node-side operation time (attach/detach, stage/unstage, publish/unpublish, expand), by result.',
    labelNames: ['op', 'result'] as const,
    buckets: NODE_OP_BUCKETS,
    registers,
  });
  const tokens = new Counter({
    name: `${prefix}token_refreshes_total`,
    help: 'Keystone token requests, by result.',
    labelNames: ['result'] as const,
    registers,
  });
  const reconcilerActions = new Counter({
    name: `${prefix}reconciler_actions_total`,
    help: 'Actions taken by the stale-attachment reconciler, by action.',
    labelNames: ['action'] as const,
    registers,
  });
  if (opts.version !== undefined) {
    new Gauge({
      name: `${prefix}build_info`,
      help: 'Always 1; the version label says which driver build is running.',
      labelNames: ['version'] as const,
      registers,
    }).set({ version: opts.version }, 1);
  }
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix });

  const result = (ok: boolean) => (ok ? 'success' : 'failure');
  return {
    registry,
    observeRpc(method, code, seconds) {
      const labels = { method: labelOf(method), code: labelOf(code) };
      rpcRequests.inc(labels);
      rpcDuration.observe(labels, Math.max(0, seconds));
    },
    rpcInFlight: {
      inc: (method) => inFlight.inc({ method: labelOf(method) }),
      dec: (method) => inFlight.dec({ method: labelOf(method) }),
    },
    observeOpenStack(info) {
      const service = labelOf(info.service);
      const operation = labelOf(info.operation);
      osRequests.inc({ service, operation, status: String(info.status) });
      osDuration.observe({ service, operation }, Math.max(0, info.durationMs) / 1000);
    },
    observeNodeOp(op, seconds, ok) {
      nodeOps.observe({ op, result: result(ok) }, Math.max(0, seconds));
    },
    tokenRefresh(ok) {
      tokens.inc({ result: result(ok) });
    },
    reconciler(action) {
      reconcilerActions.inc({ action: labelOf(action) });
    },
  };
}
