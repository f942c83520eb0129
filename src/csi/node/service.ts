/**
 * The CSI Node service: connect the storage Cinder attached to this node, put a filesystem on it
 * (never over existing data), mount it at the staging path, bind it into pods, report usage and
 * health, grow it, and undo all of it. Every RPC is idempotent and holds a per-volume in-flight
 * lock (a second call for the same volume answers ABORTED, as the spec asks). A per-volume state
 * file (no secrets) carries what unstage/publish/stats/expand need across plugin restarts.
 */
import { access, lstat, mkdir, open, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectedDevice, StorageConnector } from '../../host/connector.ts';
import type { Executor } from '../../host/exec.ts';
import { Filesystems, type FsType, stagingMountOptions } from '../../host/filesystem.ts';
import { deviceNumber, type MountEntry, Mounter } from '../../host/mount.ts';
import type { HostPaths } from '../../host/paths.ts';
import { blockDeviceSize, filesystemUsage, readOnlyProblem } from '../../host/stats.ts';
import type { CinderApi } from '../../openstack/cinder-api.ts';
import type { ConnectionInfo, HostConnector } from '../../openstack/cinder-types.ts';
import { sleep } from '../../util/abort.ts';
import { KeyedLocks } from '../../util/keyed-lock.ts';
import type { Logger } from '../../util/logger.ts';
import { aborted, alreadyExists, failedPrecondition, notFound, unavailable } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { int64, type RpcContext, toInt64 } from '../rpc.ts';
import type { NodeService } from '../services.ts';
import { resolveConnection } from './connection.ts';
import { toCsiError } from './errors.ts';
import { StateStore, type VolumeState } from './state.ts';
import { type ParsedCapability, parseCapability, requirePathUnder, requireVolumeId } from './validate.ts';

/** Upstream cinder-csi-plugin's `node-volume-attach-limit` default. */
export const DEFAULT_MAX_VOLUMES_PER_NODE = 256;

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

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

export function createNodeService(opts: NodeServiceOptions): NodeServiceImpl {
  const locks = new KeyedLocks();
  const store = new StateStore(opts.stateDir);
  const mounter = new Mounter({
    executor: opts.executor,
    logger: opts.logger,
    mountInfoPath: opts.mountInfoPath,
  });
  const filesystems = new Filesystems({ executor: opts.executor, logger: opts.logger });
  const kubeletRoot = opts.kubeletRoot;
  const busyTimeoutMs = opts.unmountBusyTimeoutMs ?? 10_000;
  const fsck = opts.fsckBeforeMount ?? true;
  const maxVolumes = opts.maxVolumesPerNode ?? DEFAULT_MAX_VOLUMES_PER_NODE;
  if (!Number.isInteger(maxVolumes) || maxVolumes <= 0) {
    throw new Error(`maxVolumesPerNode must be a positive integer, got ${maxVolumes}`);
  }
  if (!opts.cinder && !opts.nodeStageSecretsMode) {
    throw new Error('the node service needs a Cinder client unless node-stage-secrets mode is enabled');
  }

  opts.logger.info(
    {
      nodeId: opts.nodeId,
      hostConnector: opts.hostConnector,
      secretsMode: opts.nodeStageSecretsMode ?? false,
    },
    'node service ready',
  );

  /** A device path as this process sees it (under the host root). */
  const local = (hostDevicePath: string) => opts.paths.dev(hostDevicePath);
  const connectorFor = (dev: ConnectedDevice) => opts.connectors({ driver_volume_type: dev.protocol });

  /** Runs `fn` holding the volume's in-flight lock and maps errors to CSI codes. */
  async function withVolume<T>(volumeId: string, what: string, fn: () => Promise<T>): Promise<T> {
    const release = locks.tryAcquire(volumeId);
    if (!release) throw aborted(`an operation on volume ${volumeId} is already in progress; retry later`);
    try {
      return await fn();
    } catch (e) {
      throw toCsiError(e, what);
    } finally {
      release();
    }
  }

  /** The staging mount belongs to `dev` (compared by device number, so /dev/mapper vs /dev/dm-N match). */
  async function mountedFrom(entry: MountEntry, dev: ConnectedDevice): Promise<boolean> {
    const num = await deviceNumber(local(dev.devicePath));
    return num !== undefined ? entry.majorMinor === num : entry.source === dev.devicePath;
  }

  async function completeAttachment(st: VolumeState, ctx: RpcContext): Promise<void> {
    if (st.attachmentCompleted || !st.attachmentId || !opts.cinder) return;
    // A failure leaves the volume staged with attachmentCompleted=false; the CO's retry of the
    // stage finds it staged and only completes the attachment.
    await opts.cinder.completeAttachment(st.attachmentId, { signal: ctx.signal });
    st.attachmentCompleted = true;
  }

  /** Formats (only if blank) and mounts the device at the staging path. */
  async function mountStaging(dev: ConnectedDevice, staging: string, cap: ParsedCapability, ctx: RpcContext) {
    const fsType = cap.fsType as FsType;
    await mkdir(staging, { recursive: true, mode: 0o750 });
    const existing = await mounter.find(staging);
    if (existing) {
      if (await mountedFrom(existing, dev)) return;
      throw failedPrecondition(`staging path ${staging} already has another mount (${existing.source})`);
    }
    if (cap.readOnly) {
      // Never create a filesystem for a read-only access mode; mount what is there.
      const content = await filesystems.probe(dev.devicePath, ctx.signal);
      if (!content.type) {
        throw failedPrecondition(
          `volume has no filesystem and the access mode ${cap.accessMode} is read-only`,
        );
      }
      if (content.type !== fsType) {
        throw failedPrecondition(`volume holds ${content.type}, not the requested ${fsType}`);
      }
    } else {
      const { formatted } = await filesystems.ensureFilesystem(dev.devicePath, fsType, {
        signal: ctx.signal,
      });
      if (!formatted && fsck) await filesystems.check(dev.devicePath, fsType, ctx.signal);
    }
    await mounter.mount(dev.devicePath, staging, {
      fsType,
      options: stagingMountOptions(fsType, cap.mountFlags, cap.readOnly),
      signal: ctx.signal,
    });
  }

  const NodeStageVolume: NodeServiceImpl['NodeStageVolume'] = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const staging = await requirePathUnder('staging_target_path', req.staging_target_path, kubeletRoot);
    const cap = parseCapability(req.volume_capability);
    return withVolume(volumeId, `staging volume ${volumeId}`, async () => {
      const prev = await store.get(volumeId);
      if (prev?.staged) {
        if (prev.stagingPath !== staging) {
          throw failedPrecondition(`volume ${volumeId} is already staged at ${prev.stagingPath}`);
        }
        if (prev.accessType !== cap.accessType || (cap.fsType && prev.fsType !== cap.fsType)) {
          throw alreadyExists(
            `volume ${volumeId} is already staged as ${prev.accessType}${prev.fsType ? ` (${prev.fsType})` : ''}`,
          );
        }
        const entry = prev.accessType === 'mount' ? await mounter.find(staging) : undefined;
        const stillThere =
          prev.accessType === 'block'
            ? await connectorFor(prev.device).isConnected(prev.device)
            : entry !== undefined && (await mountedFrom(entry, prev.device));
        if (stillThere) {
          if (!prev.attachmentCompleted) {
            await completeAttachment(prev, ctx);
            await store.put(prev);
          }
          ctx.log.info({ volumeId, staging }, 'volume already staged');
          return {};
        }
        ctx.log.info(
          { volumeId, staging },
          'volume staged before but no longer present (node reboot?); staging again',
        );
      }

      const conn = await resolveConnection({
        volumeId,
        publishContext: req.publish_context,
        secrets: req.secrets ?? {},
        cinder: opts.cinder,
        nodeStageSecretsMode: opts.nodeStageSecretsMode ?? false,
        signal: ctx.signal,
      });
      const connector = opts.connectors(conn.info);
      const dev = await connector.connect(conn.info, {
        signal: ctx.signal,
        volumeId,
        ...(conn.secrets ? { secrets: conn.secrets } : {}),
      });
      ctx.log.info({ volumeId, protocol: dev.protocol, device: dev.devicePath }, 'storage connected');

      const st: VolumeState = {
        version: 1,
        volumeId,
        attachmentCompleted: false,
        device: dev,
        accessType: cap.accessType,
        stagingPath: staging,
        readOnly: cap.readOnly,
        accessMode: cap.accessMode,
        targets: prev?.targets ?? [],
        staged: false,
        updatedAt: '',
        ...(conn.attachmentId ? { attachmentId: conn.attachmentId } : {}),
        ...(cap.fsType ? { fsType: cap.fsType } : {}),
      };
      // Recorded before formatting/mounting, so a crash in between can still be unstaged.
      await store.put(st);
      try {
        if (cap.accessType === 'mount') await mountStaging(dev, staging, cap, ctx);
        else await mkdir(staging, { recursive: true, mode: 0o750 });
      } catch (e) {
        // Do not leave a session/map behind for a stage that failed before mounting. Own time
        // budget: the call's signal may be what failed.
        if (!prev && !(await mounter.isMountPoint(staging))) {
          await connector
            .disconnect(dev, { signal: AbortSignal.timeout(60_000) })
            .then(() => store.delete(volumeId))
            .catch((de: unknown) =>
              ctx.log.warn(
                { volumeId, err: (de as Error).message },
                'rollback: disconnect failed; unstage will retry',
              ),
            );
        }
        throw e;
      }
      st.staged = true;
      ctx.log.info({ volumeId, staging, accessType: cap.accessType, fsType: cap.fsType }, 'volume staged');
      try {
        await completeAttachment(st, ctx);
      } finally {
        await store.put(st); // staged, and whether the attachment is complete
      }
      return {};
    });
  };

  const NodeUnstageVolume: NodeServiceImpl['NodeUnstageVolume'] = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const staging = await requirePathUnder('staging_target_path', req.staging_target_path, kubeletRoot);
    return withVolume(volumeId, `unstaging volume ${volumeId}`, async () => {
      const st = await store.get(volumeId);
      if (st && st.stagingPath !== staging) {
        throw failedPrecondition(`volume ${volumeId} is staged at ${st.stagingPath}, not ${staging}`);
      }
      for (const t of st?.targets ?? []) {
        if (await mounter.isMountPoint(t.path)) {
          throw failedPrecondition(`volume ${volumeId} is still published at ${t.path}; unpublish it first`);
        }
      }
      await mounter.unmount(staging, { signal: ctx.signal, busyTimeoutMs });
      if (!st) {
        ctx.log.info({ volumeId, staging }, 'no state for volume: nothing to disconnect');
        return {};
      }
      const dev = st.device;
      // Unmounting synced the filesystem; raw block access may have left dirty buffers of the
      // device itself (os-brick flushes before disconnecting).
      if (st.accessType === 'block' && (await exists(local(dev.devicePath)))) {
        await mounter
          .sync(dev.devicePath, ctx.signal)
          .catch((e: unknown) =>
            ctx.log.warn({ volumeId, err: (e as Error).message }, 'flushing device buffers failed'),
          );
      }
      await connectorFor(dev).disconnect(dev, { signal: ctx.signal });
      await store.delete(volumeId);
      ctx.log.info({ volumeId, protocol: dev.protocol, device: dev.devicePath }, 'volume unstaged');
      return {};
    });
  };

  const NodePublishVolume: NodeServiceImpl['NodePublishVolume'] = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const staging = await requirePathUnder('staging_target_path', req.staging_target_path, kubeletRoot);
    const target = await requirePathUnder('target_path', req.target_path, kubeletRoot);
    const cap = parseCapability(req.volume_capability);
    return withVolume(volumeId, `publishing volume ${volumeId}`, async () => {
      const st = await store.get(volumeId);
      if (!st?.staged) throw failedPrecondition(`volume ${volumeId} is not staged on this node`);
      if (st.stagingPath !== staging) {
        throw failedPrecondition(`volume ${volumeId} is staged at ${st.stagingPath}, not ${staging}`);
      }
      if (st.accessType !== cap.accessType) {
        throw failedPrecondition(
          `volume ${volumeId} was staged for ${st.accessType} access, not ${cap.accessType}`,
        );
      }
      const readOnly = req.readonly || cap.readOnly || st.readOnly;
      if (cap.accessMode === 'SINGLE_NODE_SINGLE_WRITER' && !readOnly) {
        for (const t of st.targets) {
          if (t.path !== target && !t.readOnly && (await mounter.isMountPoint(t.path))) {
            throw failedPrecondition(
              `volume ${volumeId} is SINGLE_NODE_SINGLE_WRITER and already published at ${t.path}`,
            );
          }
        }
      }

      // What the target must be a mount of: the staging filesystem, or the device node.
      const source = cap.accessType === 'mount' ? staging : st.device.devicePath;
      const existing = await mounter.find(target);
      if (existing) {
        let same: boolean;
        if (cap.accessType === 'mount') {
          const stagingEntry = await mounter.find(staging);
          same =
            stagingEntry !== undefined &&
            existing.majorMinor === stagingEntry.majorMinor &&
            existing.root === stagingEntry.root;
        } else {
          same = (await deviceNumber(target)) === (await deviceNumber(local(st.device.devicePath)));
        }
        if (!same)
          throw failedPrecondition(`target path ${target} already has another mount (${existing.source})`);
        if (existing.mountOptions.includes('ro') !== readOnly) {
          throw alreadyExists(
            `volume ${volumeId} is already published at ${target} ${readOnly ? 'read-write' : 'read-only'}`,
          );
        }
      } else {
        if (cap.accessType === 'mount') {
          if (!(await mounter.isMountPoint(staging))) {
            throw failedPrecondition(
              `staging path ${staging} of volume ${volumeId} is not mounted; stage it again`,
            );
          }
          await mkdir(target, { recursive: true, mode: 0o750 });
        } else {
          if (!(await exists(local(st.device.devicePath)))) {
            throw failedPrecondition(
              `device ${st.device.devicePath} of volume ${volumeId} is gone; stage it again`,
            );
          }
          await mkdir(path.dirname(target), { recursive: true, mode: 0o750 });
          await (await open(target, 'a', 0o640)).close();
        }
        await mounter.bindMount(source, target, { readOnly, signal: ctx.signal });
      }
      st.targets = [...st.targets.filter((t) => t.path !== target), { path: target, readOnly }];
      await store.put(st);
      ctx.log.info({ volumeId, target, readOnly }, 'volume published');
      return {};
    });
  };

  const NodeUnpublishVolume: NodeServiceImpl['NodeUnpublishVolume'] = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const target = await requirePathUnder('target_path', req.target_path, kubeletRoot);
    return withVolume(volumeId, `unpublishing volume ${volumeId}`, async () => {
      await mounter.unmount(target, { signal: ctx.signal, busyTimeoutMs });
      try {
        const s = await lstat(target);
        if (s.isDirectory()) await rmdir(target);
        else await rm(target);
      } catch (e) {
        if (errnoCode(e) === 'ENOTEMPTY') {
          throw failedPrecondition(`target path ${target} is not empty after unmounting; not removing it`);
        }
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
      const st = await store.get(volumeId);
      if (st?.targets.some((t) => t.path === target)) {
        st.targets = st.targets.filter((t) => t.path !== target);
        await store.put(st);
      }
      ctx.log.info({ volumeId, target }, 'volume unpublished');
      return {};
    });
  };

  const NodeGetVolumeStats: NodeServiceImpl['NodeGetVolumeStats'] = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const volumePath = await requirePathUnder('volume_path', req.volume_path, kubeletRoot);
    try {
      let s: Awaited<ReturnType<typeof stat>>;
      try {
        s = await stat(volumePath);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') throw notFound(`volume path ${volumePath} does not exist`);
        throw e;
      }
      const st = await store.get(volumeId);
      const problems: string[] = [];
      if (st && !(await exists(local(st.device.devicePath)))) {
        problems.push(`device ${st.device.devicePath} has vanished`);
      } else if (st) {
        const connected = await connectorFor(st.device)
          .isConnected(st.device)
          .catch(() => true);
        if (!connected)
          problems.push(`the ${st.device.protocol} connection of ${st.device.devicePath} is down`);
      }
      const condition = () => ({
        abnormal: problems.length > 0,
        message: problems.length > 0 ? problems.join('; ') : 'volume is healthy',
      });

      if (s.isBlockDevice() || st?.accessType === 'block') {
        const usage: csi.VolumeUsage[] = [];
        try {
          const size = await blockDeviceSize(opts.executor, volumePath, ctx.signal);
          usage.push({ unit: 'BYTES', total: toInt64(size) });
        } catch {
          problems.push(`cannot read the size of ${volumePath}`);
        }
        return { usage, volume_condition: condition() };
      }

      const entry = await mounter.find(volumePath);
      if (!entry) {
        problems.push(`${volumePath} is not mounted`);
        return { usage: [], volume_condition: condition() };
      }
      if (st && !(await mountedFrom(entry, st.device)) && problems.length === 0) {
        problems.push(`${volumePath} is mounted from ${entry.source}, not from ${st.device.devicePath}`);
      }
      const published = st?.targets.find((t) => t.path === volumePath);
      const ro = readOnlyProblem(entry, {
        superReadOnly: st?.readOnly ?? false,
        mountReadOnly: (st?.readOnly ?? false) || (published?.readOnly ?? false),
      });
      if (ro) problems.push(ro);
      const u = await filesystemUsage(volumePath);
      return {
        usage: [
          {
            unit: 'BYTES',
            total: toInt64(u.totalBytes),
            available: toInt64(u.availableBytes),
            used: toInt64(u.usedBytes),
          },
          {
            unit: 'INODES',
            total: toInt64(u.totalInodes),
            available: toInt64(u.freeInodes),
            used: toInt64(u.usedInodes),
          },
        ],
        volume_condition: condition(),
      };
    } catch (e) {
      throw toCsiError(e, `reading stats of volume ${volumeId}`);
    }
  };

  const NodeExpandVolume: NodeServiceImpl['NodeExpandVolume'] = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const volumePath = await requirePathUnder('volume_path', req.volume_path, kubeletRoot);
    const cap = req.volume_capability ? parseCapability(req.volume_capability) : undefined;
    return withVolume(volumeId, `expanding volume ${volumeId}`, async () => {
      if (!(await exists(volumePath))) throw notFound(`volume path ${volumePath} does not exist`);
      const st = await store.get(volumeId);
      if (!st?.staged) throw notFound(`volume ${volumeId} is not staged on this node`);
      const dev = st.device;
      const required = int64(req.capacity_range?.required_bytes);
      const connector = connectorFor(dev);
      let size = 0n;
      for (let attempt = 0; attempt < 3; attempt++) {
        await connector.rescan(dev, { signal: ctx.signal });
        size = await blockDeviceSize(opts.executor, dev.devicePath, ctx.signal);
        if (size >= required) break;
        await sleep(1000, ctx.signal);
      }
      if (size < required) {
        throw unavailable(
          `device ${dev.devicePath} is still ${size} bytes after rescans, below the requested ${required}; the storage may not have grown yet`,
        );
      }
      if ((cap?.accessType ?? st.accessType) === 'block') {
        ctx.log.info({ volumeId, capacityBytes: size.toString() }, 'block volume rescanned');
        return { capacity_bytes: toInt64(size) };
      }
      const mountPoint = (await mounter.isMountPoint(st.stagingPath)) ? st.stagingPath : volumePath;
      if (!(await mounter.isMountPoint(mountPoint))) {
        throw failedPrecondition(`volume ${volumeId} is not mounted; cannot grow its filesystem`);
      }
      if (st.readOnly)
        throw failedPrecondition(`volume ${volumeId} is staged read-only; cannot grow its filesystem`);
      await filesystems.grow(dev.devicePath, mountPoint, st.fsType ?? 'ext4', ctx.signal);
      ctx.log.info({ volumeId, capacityBytes: size.toString(), fsType: st.fsType }, 'filesystem grown');
      return { capacity_bytes: toInt64(size) };
    });
  };

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
    NodeStageVolume,
    NodeUnstageVolume,
    NodePublishVolume,
    NodeUnpublishVolume,
    NodeGetVolumeStats,
    NodeExpandVolume,
    NodeGetCapabilities,
    NodeGetInfo,
    hostConnector: opts.hostConnector,
    stateStore: store,
  };
}
