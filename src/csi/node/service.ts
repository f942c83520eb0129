/**
 * The CSI Node service: connect the storage Cinder attached to this node, put a filesystem on it
 * (never over existing data), mount it at the staging path, bind it into pods, report usage and
 * health, grow it, and undo all of it. Every RPC is idempotent and holds a per-volume in-flight
 * lock (a second call for the same volume answers ABORTED, as the spec asks). A per-volume state
 * file (no secrets) carries what unstage/publish/stats/expand need across plugin restarts.
 * The RPCs live in stage.ts, publish.ts and usage.ts; this module assembles them.
 */
import type { HostConnector } from '../../openstack/cinder-types.ts';
import { toInt64 } from '../rpc.ts';
import type { NodeService } from '../services.ts';
import { createNodeContext, type NodeServiceOptions } from './context.ts';
import { publishRpcs } from './publish.ts';
import { stageRpcs } from './stage.ts';
import type { StateStore } from './state.ts';
import { usageRpcs } from './usage.ts';

export type { NodeServiceOptions } from './context.ts';

/** Upstream cinder-csi-plugin's `node-volume-attach-limit` default. */
export const DEFAULT_MAX_VOLUMES_PER_NODE = 256;

export type NodeServiceImpl = Required<NodeService> & {
  readonly hostConnector: HostConnector | undefined;
  readonly stateStore: StateStore;
};

/**
 * VOLUME_MOUNT_GROUP is deliberately not advertised: ext4, xfs and btrfs have no gid= mount
 * option, so honouring it would mean a recursive chown/chmod of the volume at every publish
 * (what the kubelet's fsGroup already does when the driver does not advertise it).
 */
const CAPABILITIES = [
  'STAGE_UNSTAGE_VOLUME',
  'EXPAND_VOLUME',
  'GET_VOLUME_STATS',
  'VOLUME_CONDITION',
  'SINGLE_NODE_MULTI_WRITER',
] as const;

export function createNodeService(opts: NodeServiceOptions): NodeServiceImpl {
  const maxVolumes = opts.maxVolumesPerNode ?? DEFAULT_MAX_VOLUMES_PER_NODE;
  if (!Number.isInteger(maxVolumes) || maxVolumes <= 0) {
    throw new Error(`maxVolumesPerNode must be a positive integer, got ${maxVolumes}`);
  }
  if (!opts.cinder && !opts.nodeStageSecretsMode) {
    throw new Error('the node service needs a Cinder client unless node-stage-secrets mode is enabled');
  }
  const c = createNodeContext(opts);

  opts.logger.info(
    {
      nodeId: opts.nodeId,
      hostConnector: opts.hostConnector,
      secretsMode: opts.nodeStageSecretsMode ?? false,
    },
    'node service ready',
  );

  const NodeGetCapabilities: NodeServiceImpl['NodeGetCapabilities'] = async () => ({
    capabilities: CAPABILITIES.map((type) => ({ rpc: { type } })),
  });

  const NodeGetInfo: NodeServiceImpl['NodeGetInfo'] = async () => ({
    node_id: opts.nodeId,
    max_volumes_per_node: toInt64(maxVolumes),
    ...(opts.topology?.zone
      ? { accessible_topology: { segments: { [opts.topology.key]: opts.topology.zone } } }
      : {}),
  });

  return {
    ...stageRpcs(c),
    ...publishRpcs(c),
    ...usageRpcs(c),
    NodeGetCapabilities,
    NodeGetInfo,
    hostConnector: opts.hostConnector,
    stateStore: c.store,
  };
}
