/**
 * What every Node RPC shares: the options, the state store, the mounter and filesystem tools, the
 * per-volume in-flight lock with error mapping, and small helpers about devices. Built once per
 * node service by createNodeService (src/csi/node/service.ts).
 */
import { access, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectedDevice, StorageConnector } from '../../host/connector.ts';
import type { Executor } from '../../host/exec.ts';
import { Filesystems } from '../../host/filesystem.ts';
import { deviceNumber, type MountEntry, Mounter } from '../../host/mount.ts';
import type { HostPaths } from '../../host/paths.ts';
import type { CinderApi } from '../../openstack/cinder-api.ts';
import type { ConnectionInfo, HostConnector } from '../../openstack/cinder-types.ts';
import { KeyedLocks } from '../../util/keyed-lock.ts';
import type { Logger } from '../../util/logger.ts';
import { aborted } from '../errors.ts';
import { errnoCode, toCsiError } from './errors.ts';
import { StateStore } from './state.ts';

export interface NodeServiceOptions {
  /** The Kubernetes node name (NodeGetInfo.node_id). */
  nodeId: string;
  /** NodeGetInfo.max_volumes_per_node (default 256). */
  maxVolumesPerNode?: number;
  /** Topology segment reported by NodeGetInfo, e.g. { key: 'topology.cinder.csi.openstack.org/zone', zone: 'nova' }. */
  topology?: { key: string; zone?: string };
  /** Reads attachments and marks them complete; required unless `nodeStageSecretsMode`. */
  cinder?: CinderApi;
  /** The connector for a connection_info (only `driver_volume_type` is read to choose one). */
  connectors: (info: Pick<ConnectionInfo, 'driver_volume_type'>) => StorageConnector;
  executor: Executor;
  paths: HostPaths;
  /** Directory of the per-volume state files (e.g. /var/lib/kubelet/plugins/<driver>/volumes). */
  stateDir: string;
  /** Staging and target paths must be inside this directory (e.g. /var/lib/kubelet). */
  kubeletRoot: string;
  /** This node's os-brick style connector (no secrets); exposed for the controller and logs. */
  hostConnector?: HostConnector;
  logger: Logger;
  /** Opt-in: take CHAP/keyring from node-stage secrets and target fields from publish_context. */
  nodeStageSecretsMode?: boolean;
  /** Mount table to read (default /proc/self/mountinfo). */
  mountInfoPath?: string;
  /** How long unmount waits while the mount is busy (default 10 s). */
  unmountBusyTimeoutMs?: number;
  /** `fsck -a` existing ext filesystems before mounting them (default true, like mount-utils). */
  fsckBeforeMount?: boolean;
}

export interface NodeContext {
  readonly opts: NodeServiceOptions;
  readonly store: StateStore;
  readonly mounter: Mounter;
  readonly filesystems: Filesystems;
  readonly kubeletRoot: string;
  readonly busyTimeoutMs: number;
  readonly fsck: boolean;
  /** A device path as this process sees it (under the host root). */
  local(hostDevicePath: string): string;
  connectorFor(dev: ConnectedDevice): StorageConnector;
  /** The mount belongs to `dev` (compared by device number, so /dev/mapper vs /dev/dm-N match). */
  mountedFrom(entry: MountEntry, dev: ConnectedDevice): Promise<boolean>;
  /** Runs `fn` holding the volume's in-flight lock and maps errors to CSI codes. */
  withVolume<T>(volumeId: string, what: string, fn: () => Promise<T>): Promise<T>;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `mkdir -p` that reports the real reason: Node's recursive mkdir answers ENOENT for any failing
 * component (EROFS, EACCES, ...), so on ENOENT it walks up and creates one level at a time.
 */
export async function mkdirAll(p: string, mode = 0o750): Promise<void> {
  try {
    await mkdir(p, { recursive: true, mode });
    return;
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  const parent = path.dirname(p);
  if (parent !== p) await mkdirAll(parent, mode);
  try {
    await mkdir(p, { mode });
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST' || !(await stat(p)).isDirectory()) throw e;
  }
}

export function createNodeContext(opts: NodeServiceOptions): NodeContext {
  const locks = new KeyedLocks();
  const local = (hostDevicePath: string) => opts.paths.dev(hostDevicePath);
  return {
    opts,
    store: new StateStore(opts.stateDir),
    mounter: new Mounter({ executor: opts.executor, logger: opts.logger, mountInfoPath: opts.mountInfoPath }),
    filesystems: new Filesystems({ executor: opts.executor, logger: opts.logger }),
    kubeletRoot: opts.kubeletRoot,
    busyTimeoutMs: opts.unmountBusyTimeoutMs ?? 10_000,
    fsck: opts.fsckBeforeMount ?? true,
    local,
    connectorFor: (dev) => opts.connectors({ driver_volume_type: dev.protocol }),
    async mountedFrom(entry, dev) {
      const num = await deviceNumber(local(dev.devicePath));
      if (num === undefined) return entry.source === dev.devicePath;
      if (entry.majorMinor === num) return true;
      // btrfs lists an anonymous device number (0:N) in mountinfo: compare its source device.
      return entry.source.startsWith('/') && (await deviceNumber(local(entry.source))) === num;
    },
    async withVolume(volumeId, what, fn) {
      const release = locks.tryAcquire(volumeId);
      if (!release) throw aborted(`an operation on volume ${volumeId} is already in progress; retry later`);
      try {
        return await fn();
      } catch (e) {
        throw toCsiError(e, what);
      } finally {
        release();
      }
    },
  };
}
