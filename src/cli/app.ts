import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudConfig } from '../config/types.ts';
import type { CsiError } from '../csi/errors.ts';
import type { Readiness } from '../csi/identity.ts';
import type { ControllerService, GroupControllerService, NodeService } from '../csi/services.ts';
import type { RpcObserver } from '../grpc/server.ts';
import type { CinderApi } from '../openstack/cinder-api.ts';
import type { HostConnector } from '../openstack/cinder-types.ts';
import { buildInfo } from '../util/build-info.ts';
import { createLogger, type Logger } from '../util/logger.ts';
import type { Flags } from './flags.ts';

/** A built driver: the gRPC server plus everything it owns, stopped in reverse order. */
export interface Driver {
  start(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
  /** The bound TCP port (tcp endpoints). */
  readonly port: number | undefined;
  readonly hostConnector: HostConnector | undefined;
}

/** How long a successful cloud check keeps the controller "ready". */
const CLOUD_READY_WINDOW_MS = 5 * 60_000;
const CLOUD_CHECK_INTERVAL_MS = 30_000;

/**
 * Wires the driver for a mode. Mode-specific modules (the node's host tools, the controller, the
 * Kubernetes client, metrics) are imported only when the mode needs them, so `--mode node` never
 * loads the Kubernetes client unless it publishes its connector through it.
 */
export async function buildDriver(flags: Flags, logger: Logger): Promise<Driver> {
  const info = buildInfo();
  const closers: (() => Promise<void> | void)[] = [];
  const withController = flags.mode !== 'node';
  const withNode = flags.mode !== 'controller';
  const useKube = flags.kubeconfig !== undefined || process.env['KUBERNETES_SERVICE_HOST'] !== undefined;

  // Configuration: validated now; a bad file stops the driver with the file, section and key.
  const { CloudConfigSource, describeConfig, preloadYaml } = await import('../config/index.ts');
  // A clouds.yaml will be read (OS_CLOUD, or a cloud.conf with use-clouds): load the parser now.
  if (process.env['OS_CLOUD'] || flags.cloudConfig.some((f) => mentionsClouds(f))) await preloadYaml();
  const configSource = new CloudConfigSource({ files: flags.cloudConfig, log: logger });
  const config: CloudConfig = configSource.load();
  logger.info({ config: describeConfig(config), files: configSource.files }, 'cloud configuration loaded');

  // Metrics only when asked for.
  let metrics: import('../metrics/index.ts').Metrics | undefined;
  if (flags.metricsAddress) {
    const { createMetrics } = await import('../metrics/index.ts');
    metrics = createMetrics();
  }

  // OpenStack session and Cinder client (both modes: the node reads attachments from Cinder).
  const { OpenStackSession } = await import('../openstack/session.ts');
  const { CinderClient } = await import('../openstack/cinder.ts');
  const session = new OpenStackSession({
    config: () => configSource.current ?? config,
    logger,
    ...(metrics
      ? {
          observer: { onResponse: (i) => metrics.observeOpenStack(i) },
          onTokenRequest: (ok: boolean) => metrics.tokenRefresh(ok),
        }
      : {}),
  });
  closers.push(() => session.close());
  const stopWatch = configSource.watch(() => {
    logger.info('cloud configuration changed on disk: credentials will be re-read');
    session.reloadCredentials();
  }, logger);
  closers.push(stopWatch);
  const cinder: CinderApi = new CinderClient({
    session: session.service('block-storage'),
    logger,
    ignoreMicroversion: config.blockStorage.ignoreVolumeMicroversion,
  });

  // Node service.
  let node: NodeService | undefined;
  let hostConnector: HostConnector | undefined;
  let nodeReady = !withNode;
  if (withNode) {
    const built = await buildNode(flags, logger, cinder, config, useKube, closers);
    node = built.node;
    hostConnector = built.hostConnector;
    nodeReady = true;
  }

  // Controller and group controller (volume group snapshots) services.
  let controller: ControllerService | undefined;
  let groupController: GroupControllerService | undefined;
  let lastCloudOk = 0;
  let lastCloudError: string | undefined;
  if (withController) {
    controller = await buildController(
      flags,
      logger,
      cinder,
      config,
      hostConnector,
      useKube,
      closers,
      metrics,
    );
    const { createGroupControllerService } = await import('../csi/group-controller/index.ts');
    groupController = createGroupControllerService({
      cinder,
      clusterId: flags.clusterId,
      driverName: flags.driverName,
      logger,
    });
    const check = async () => {
      try {
        await cinder.negotiate();
        await cinder.projectId();
        lastCloudOk = Date.now();
        lastCloudError = undefined;
      } catch (err) {
        lastCloudError = (err as Error).message;
        logger.warn({ err: lastCloudError }, 'cloud check failed: Cinder not reachable');
      }
    };
    void check();
    const timer = setInterval(check, CLOUD_CHECK_INTERVAL_MS);
    timer.unref();
    closers.push(() => clearInterval(timer));
  }

  const readiness = async (): Promise<Readiness> => {
    if (!nodeReady) return { ready: false, reason: 'node service starting' };
    if (withController && Date.now() - lastCloudOk > CLOUD_READY_WINDOW_MS) {
      return {
        ready: false,
        reason: lastCloudError ? `Cinder not reachable: ${lastCloudError}` : 'checking Cinder',
      };
    }
    return { ready: true };
  };

  const { createIdentityService } = await import('../csi/identity.ts');
  const { CsiServer } = await import('../grpc/server.ts');
  const { CsiRedactor } = await import('../grpc/redact.ts');
  const { sharedCsiRoot, loadCsiServices } = await import('../grpc/proto.ts');
  const { RequestLimits } = await import('../grpc/limits.ts');
  // One reflection root of csi.proto for the service definitions, size limits and redaction.
  const csiRoot = sharedCsiRoot();
  const { fromCloudError } = await import('../csi/cloud-errors.ts');
  const identity = createIdentityService({
    driverName: flags.driverName,
    version: info.version,
    ...(info.commit ? { commit: info.commit } : {}),
    ...(controller ? { controller } : {}),
    ...(groupController ? { groupController } : {}),
    readiness,
  });
  const observer: RpcObserver | undefined = metrics
    ? {
        observeRpc: (method, code, seconds) => {
          metrics.observeRpc(method, code, seconds);
          const op = NODE_OPS[method];
          if (op) metrics.observeNodeOp(op, seconds, code === 'OK');
        },
        rpcInFlight: metrics.rpcInFlight,
      }
    : undefined;
  const server = new CsiServer({
    endpoint: flags.endpoint,
    logger,
    identity,
    ...(controller ? { controller } : {}),
    ...(groupController ? { groupController } : {}),
    ...(node ? { node } : {}),
    definitions: loadCsiServices(csiRoot),
    redactor: new CsiRedactor(csiRoot),
    limits: new RequestLimits(csiRoot),
    mapError: (err): CsiError | undefined => fromCloudError(err),
    ...(observer ? { observer } : {}),
    shutdownGraceMs: flags.shutdownGraceSeconds * 1000,
  });

  return {
    get port() {
      return server.port;
    },
    hostConnector,
    async start() {
      await server.start();
      if (metrics && flags.metricsAddress) {
        const { startMetricsServer } = await import('../metrics/index.ts');
        const ms = await startMetricsServer({
          address: flags.metricsAddress,
          metrics,
          logger,
          health: async () => {
            const r = await readiness();
            return { ok: r.ready, ...(r.reason ? { detail: r.reason } : {}) };
          },
        });
        closers.push(() => ms.close());
      }
    },
    async stop(graceMs) {
      await server.stop(graceMs);
      for (const close of closers.reverse()) {
        try {
          await close();
        } catch (err) {
          logger.warn({ err }, 'error while shutting down');
        }
      }
    },
  };
}

async function buildNode(
  flags: Flags,
  logger: Logger,
  cinder: CinderApi,
  config: CloudConfig,
  useKube: boolean,
  closers: (() => Promise<void> | void)[],
): Promise<{ node: NodeService; hostConnector: HostConnector }> {
  const { HostExecutor } = await import('../host/exec.ts');
  const { hostPaths } = await import('../host/paths.ts');
  const { HostLock } = await import('../host/lock.ts');
  const { connectorFor } = await import('../host/connector-factory.ts');
  const { buildHostConnector } = await import('../host/host-connector.ts');
  const { createNodeService } = await import('../csi/node/index.ts');
  const paths = hostPaths(flags.hostRoot);
  const executor = new HostExecutor({ logger });
  const lock = new HostLock({ dir: join(flags.stateDir, 'locks') });
  const hostConnector = await buildHostConnector({
    paths,
    logger,
    hostname: flags.nodeId,
    ...(flags.hostIp ? { ip: flags.hostIp } : {}),
  });
  logger.info({ hostConnector }, 'host connector');

  let zone = flags.nodeZone;
  if (useKube) {
    const kube = await import('../kube/node-side.ts');
    // Two calls (the Node's zone label, the connector annotation), over the driver's own client
    // (src/kube/light-api.ts; @kubernetes/client-node only for exec-plugin kubeconfigs).
    const api = await kube.createKubeApi({ kubeconfig: flags.kubeconfig, logger });
    if (zone === undefined)
      zone = await kube.zoneFromNodeLabel(api, flags.nodeId, flags.topologyLabel, logger);
    const publisher = new kube.ConnectorPublisher({
      api,
      nodeName: flags.nodeId,
      driverName: flags.driverName,
      logger,
    });
    publisher.publish(hostConnector);
    closers.push(() => publisher.stop());
  }

  const deps = {
    executor,
    paths,
    logger,
    lock,
    ...(flags.rbdKeyring ? { rbd: { keyringPath: flags.rbdKeyring } } : {}),
  };
  const node = createNodeService({
    nodeId: flags.nodeId,
    maxVolumesPerNode: config.blockStorage.nodeVolumeAttachLimit,
    topology: { key: topologyKey(flags.driverName), ...(zone ? { zone } : {}) },
    cinder,
    connectors: (info) => connectorFor(info, deps),
    executor,
    paths,
    stateDir: flags.stateDir,
    kubeletRoot: flags.kubeletRoot,
    hostConnector,
    logger,
    nodeStageSecretsMode: flags.nodeStageSecrets,
  });
  return { node, hostConnector };
}

async function buildController(
  flags: Flags,
  logger: Logger,
  cinder: CinderApi,
  config: CloudConfig,
  localConnector: HostConnector | undefined,
  useKube: boolean,
  closers: (() => Promise<void> | void)[],
  metrics: import('../metrics/index.ts').Metrics | undefined,
): Promise<ControllerService> {
  const { createControllerService } = await import('../csi/controller/index.ts');
  const sources = await import('../csi/connector-source.ts');
  const chain: import('../csi/connector-source.ts').ConnectorSource[] = [];
  if (localConnector && flags.mode === 'all') {
    chain.push(new sources.LocalConnectorSource(flags.nodeId, () => localConnector));
  }
  if (flags.connectorsFile) chain.push(sources.StaticConnectorSource.fromFile(flags.connectorsFile));
  if (useKube) {
    const kube = await import('../kube/index.ts');
    const api = await kube.createKubeApi({ kubeconfig: flags.kubeconfig, logger });
    const kubeSource = new kube.KubeConnectorSource({ api, driverName: flags.driverName, logger });
    kubeSource.start();
    closers.push(() => kubeSource.stop());
    chain.push(kubeSource);
    // Attachments left on deleted/dead nodes: only this cluster's volumes, never a live one.
    const { META } = await import('../csi/controller/index.ts');
    const reconciler = new kube.StaleAttachmentReconciler({
      cinder,
      kube: api,
      driverName: flags.driverName,
      clusterVolumes: { filters: { metadata: { [META.cluster]: flags.clusterId } } },
      attachmentHostMetadataPrefix: META.attachmentPrefix,
      publishIntentMetadataKey: META.publishIntent,
      graceMs: flags.reconcileGraceSeconds * 1000,
      dryRun: flags.reconcileDryRun,
      logger,
      ...(metrics ? { onAction: (a: { action: string }) => metrics.reconciler(a.action) } : {}),
    });
    kubeSource.onNodeChange((type) => {
      if (type === 'DELETED') reconciler.nodeDeleted();
    });
    reconciler.start();
    closers.push(() => reconciler.stop());
  }
  return createControllerService({
    cinder,
    connectors: sources.chainConnectorSources(chain),
    clusterId: flags.clusterId,
    driverName: flags.driverName,
    topologyKey: topologyKey(flags.driverName),
    logger,
    ignoreVolumeAZ: config.blockStorage.ignoreVolumeAZ,
  });
}

/** RPCs whose durations are also reported as attach/detach and stage/unstage operations. */
const NODE_OPS: Record<string, import('../metrics/index.ts').NodeOp> = {
  'Controller/ControllerPublishVolume': 'attach',
  'Controller/ControllerUnpublishVolume': 'detach',
  'Node/NodeStageVolume': 'stage',
  'Node/NodeUnstageVolume': 'unstage',
  'Node/NodePublishVolume': 'publish',
  'Node/NodeUnpublishVolume': 'unpublish',
  'Node/NodeExpandVolume': 'expand',
};

/** True when a cloud.conf file (unreadable: false; the load reports it) mentions use-clouds. */
function mentionsClouds(file: string): boolean {
  try {
    return /use-clouds/i.test(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

export function topologyKey(driverName: string): string {
  return `topology.${driverName}/zone`;
}

/** Runs the driver until SIGTERM/SIGINT; returns the process exit code. */
export async function runDriver(flags: Flags): Promise<number> {
  const logger = createLogger({ level: flags.logLevel, pretty: flags.logFormat === 'pretty' });
  let driver: Driver;
  try {
    driver = await buildDriver(flags, logger);
    await driver.start();
  } catch (err) {
    const e = err as Error;
    logger.fatal({ err: { name: e.name, message: e.message } }, 'cannot start');
    logger.flush();
    process.stderr.write(`cinder-csi: ${e.message}\n`);
    return 1;
  }
  logger.info({ mode: flags.mode, driver: flags.driverName, version: buildInfo().version }, 'driver started');
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      logger.info({ signal: sig }, 'signal received: stopping');
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  await driver.stop();
  logger.flush();
  return 0;
}
