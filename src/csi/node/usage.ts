/**
 * NodeGetVolumeStats (usage and health of a staged or published volume) and NodeExpandVolume
 * (rescan the device, grow the filesystem). Both take a `volume_path`; one that is not a path
 * under the kubelet root, or does not exist, is NOT_FOUND as the spec asks.
 */
import { stat } from 'node:fs/promises';
import { blockDeviceSize, filesystemUsage, readOnlyProblem } from '../../host/stats.ts';
import { sleep } from '../../util/abort.ts';
import { failedPrecondition, invalidArgument, notFound, outOfRange, unavailable } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { int64, toInt64 } from '../rpc.ts';
import type { NodeService } from '../services.ts';
import { exists, type NodeContext } from './context.ts';
import { errnoCode, isErrnoError, isMissingPath, quotePath, toCsiError } from './errors.ts';
import { parseCapability, requireVolumeId, requireVolumePath } from './validate.ts';

type Stats = Required<NodeService>['NodeGetVolumeStats'];
type Expand = Required<NodeService>['NodeExpandVolume'];

/** The path names nothing: missing, through a non-directory, a symlink loop, too long once resolved. */
const absentPath = (e: unknown) =>
  isMissingPath(e) || errnoCode(e) === 'ELOOP' || errnoCode(e) === 'ENAMETOOLONG';

/** `stat` of a volume_path; NOT_FOUND when it names nothing. */
async function statVolumePath(volumePath: string, volumeId: string) {
  try {
    return await stat(volumePath);
  } catch (e) {
    if (absentPath(e)) {
      throw notFound(
        `volume ${volumeId} does not exist at volume_path ${quotePath(volumePath)} (${errnoCode(e)})`,
      );
    }
    throw e;
  }
}

function parseRange(range: csi.CapacityRange__Output | null | undefined): {
  required: bigint;
  limit: bigint;
} {
  const required = int64(range?.required_bytes);
  const limit = int64(range?.limit_bytes);
  if (required < 0n || limit < 0n) throw invalidArgument('capacity_range bytes must not be negative');
  if (limit > 0n && required > limit) {
    throw outOfRange(`capacity_range.required_bytes ${required} is above limit_bytes ${limit}`);
  }
  return { required, limit };
}

export function usageRpcs(c: NodeContext): { NodeGetVolumeStats: Stats; NodeExpandVolume: Expand } {
  const { opts, store, mounter, filesystems } = c;

  const NodeGetVolumeStats: Stats = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const volumePath = await requireVolumePath('volume_path', req.volume_path, c.kubeletRoot);
    try {
      const s = await statVolumePath(volumePath, volumeId);
      const st = await store.get(volumeId);
      if (!st?.staged) throw notFound(`volume ${volumeId} is not staged on this node`);
      if (volumePath !== st.stagingPath && !st.targets.some((t) => t.path === volumePath)) {
        throw notFound(`volume ${volumeId} is neither staged nor published at ${quotePath(volumePath)}`);
      }
      const problems: string[] = [];
      if (!(await exists(c.local(st.device.devicePath)))) {
        problems.push(`device ${quotePath(st.device.devicePath)} has vanished`);
      } else {
        const connected = await c
          .connectorFor(st.device)
          .isConnected(st.device)
          .catch(() => true);
        if (!connected) {
          problems.push(`the ${st.device.protocol} connection of ${quotePath(st.device.devicePath)} is down`);
        }
      }
      const condition = () => ({
        abnormal: problems.length > 0,
        message: problems.length > 0 ? problems.join('; ') : 'volume is healthy',
      });

      if (s.isBlockDevice() || st.accessType === 'block') {
        const usage: csi.VolumeUsage[] = [];
        try {
          const size = await blockDeviceSize(opts.executor, volumePath, ctx.signal);
          usage.push({ unit: 'BYTES', total: toInt64(size) });
        } catch {
          problems.push(`cannot read the size of ${quotePath(volumePath)}`);
        }
        return { usage, volume_condition: condition() };
      }

      const entry = await mounter.find(volumePath);
      if (!entry) {
        problems.push(`${quotePath(volumePath)} is not mounted`);
        return { usage: [], volume_condition: condition() };
      }
      if (!(await c.mountedFrom(entry, st.device)) && problems.length === 0) {
        problems.push(
          `${quotePath(volumePath)} is mounted from ${quotePath(entry.source)}, not from ${quotePath(st.device.devicePath)}`,
        );
      }
      const published = st.targets.find((t) => t.path === volumePath);
      const ro = readOnlyProblem(entry, {
        superReadOnly: st.readOnly,
        mountReadOnly: st.readOnly || (published?.readOnly ?? false),
      });
      if (ro) problems.push(ro);
      let u: Awaited<ReturnType<typeof filesystemUsage>>;
      try {
        u = await filesystemUsage(volumePath);
      } catch (e) {
        // A filesystem that cannot answer statfs (I/O errors, a dead transport) is an abnormal
        // volume, which is what volume_condition is for.
        if (!isErrnoError(e)) throw e;
        problems.push(`statfs of ${quotePath(volumePath)} failed (${e.code})`);
        return { usage: [], volume_condition: condition() };
      }
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

  const NodeExpandVolume: Expand = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const volumePath = await requireVolumePath('volume_path', req.volume_path, c.kubeletRoot);
    const cap = req.volume_capability ? parseCapability(req.volume_capability) : undefined;
    const { required } = parseRange(req.capacity_range);
    return c.withVolume(volumeId, `expanding volume ${volumeId}`, async () => {
      await statVolumePath(volumePath, volumeId);
      const st = await store.get(volumeId);
      if (!st?.staged) throw notFound(`volume ${volumeId} is not staged on this node`);
      if (cap && cap.accessType !== st.accessType) {
        // The spec's "Exceeds capabilities" row.
        throw invalidArgument(
          `volume ${volumeId} is staged for ${st.accessType} access, not ${cap.accessType}`,
        );
      }
      const dev = st.device;
      const connector = c.connectorFor(dev);
      let size = 0n;
      for (let attempt = 0; attempt < 3; attempt++) {
        await connector.rescan(dev, { signal: ctx.signal });
        size = await blockDeviceSize(opts.executor, dev.devicePath, ctx.signal);
        if (size >= required) break;
        await sleep(1000, ctx.signal);
      }
      if (size < required) {
        throw unavailable(
          `device ${quotePath(dev.devicePath)} is still ${size} bytes after rescans, below the requested ${required}; the storage may not have grown yet`,
        );
      }
      if (st.accessType === 'block') {
        ctx.log.info({ volumeId, capacityBytes: size.toString() }, 'block volume rescanned');
        return { capacity_bytes: toInt64(size) };
      }
      // Grow through the staging mount; else through a publish of this very volume.
      const published = st.targets.some((t) => t.path === volumePath);
      const mountPoint = (await mounter.isMountPoint(st.stagingPath))
        ? st.stagingPath
        : published && (await mounter.isMountPoint(volumePath))
          ? volumePath
          : undefined;
      if (!mountPoint) {
        throw failedPrecondition(`volume ${volumeId} is not mounted; cannot grow its filesystem`);
      }
      if (st.readOnly) {
        throw failedPrecondition(`volume ${volumeId} is staged read-only; cannot grow its filesystem`);
      }
      await filesystems.grow(dev.devicePath, mountPoint, st.fsType ?? 'ext4', ctx.signal);
      ctx.log.info({ volumeId, capacityBytes: size.toString(), fsType: st.fsType }, 'filesystem grown');
      return { capacity_bytes: toInt64(size) };
    });
  };

  return { NodeGetVolumeStats, NodeExpandVolume };
}
