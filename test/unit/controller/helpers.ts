import { StaticConnectorSource } from '../../../src/csi/connector-source.ts';
import { createControllerService } from '../../../src/csi/controller/index.ts';
import type * as csi from '../../../src/csi/generated/csi/v1/index.ts';
import type { RpcContext } from '../../../src/csi/rpc.ts';
import type { CinderApi } from '../../../src/openstack/cinder-api.ts';
import { createLogger } from '../../../src/util/logger.ts';

export const GiB = 1024 ** 3;
export const TOPOLOGY_KEY = 'topology.cinder.csi.dev/zone';
export const logger = createLogger({ level: 'silent' });

/** An RpcContext whose signal fires after `timeoutMs` (a gRPC deadline) or never. */
export function ctx(timeoutMs?: number): RpcContext {
  const signal = timeoutMs === undefined ? new AbortController().signal : AbortSignal.timeout(timeoutMs);
  return {
    signal,
    deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
    requestId: 'test',
    log: logger,
  };
}

export type AccessMode = csi._csi_v1_VolumeCapability_AccessMode_Mode__Output;

export function cap(
  mode: AccessMode = 'SINGLE_NODE_WRITER',
  kind: 'mount' | 'block' = 'mount',
): csi.VolumeCapability__Output {
  return kind === 'mount'
    ? {
        mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' },
        access_mode: { mode },
        access_type: 'mount',
      }
    : { block: {}, access_mode: { mode }, access_type: 'block' };
}

export function createReq(
  name: string,
  extra: Partial<csi.CreateVolumeRequest__Output> = {},
): csi.CreateVolumeRequest__Output {
  return {
    name,
    capacity_range: null,
    volume_capabilities: [cap()],
    parameters: {},
    secrets: {},
    volume_content_source: null,
    accessibility_requirements: null,
    mutable_parameters: {},
    ...extra,
  };
}

export function service(
  cinder: CinderApi,
  extra: { clusterId?: string; connectors?: Record<string, unknown>; failureBackoffMs?: number } = {},
) {
  const connectors = new StaticConnectorSource(
    (extra.connectors ?? {
      'node-1': {
        initiator: 'iqn.2004-10.com.ubuntu:01:node1',
        ip: '10.0.0.1',
        host: 'node-1',
        multipath: false,
      },
      'node-2': {
        initiator: 'iqn.2004-10.com.ubuntu:01:node2',
        ip: '10.0.0.2',
        host: 'node-2',
        multipath: false,
      },
      'node-bare': null,
    }) as never,
  );
  return createControllerService({
    cinder,
    connectors,
    clusterId: extra.clusterId ?? 'test-cluster',
    driverName: 'cinder.csi.dev',
    topologyKey: TOPOLOGY_KEY,
    logger,
    snapshotWaitMs: 2000,
    ...(extra.failureBackoffMs === undefined ? {} : { failureBackoffMs: extra.failureBackoffMs }),
  });
}

/** A ControllerPublishVolumeRequest of `volumeId` to `nodeId` (SINGLE_NODE_WRITER mount, read-write). */
export function pubReq(
  volumeId: string,
  nodeId: string,
  extra: Partial<csi.ControllerPublishVolumeRequest__Output> = {},
) {
  return {
    volume_id: volumeId,
    node_id: nodeId,
    volume_capability: cap(),
    readonly: false,
    secrets: {},
    volume_context: {},
    ...extra,
  };
}

/** Asserts the promise rejects with a CsiError of `code`; returns it. */
export { rejectsWith } from '../../support/csi-errors.ts';
