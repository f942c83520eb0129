/**
 * NodeStageVolume / NodeUnstageVolume: connect the storage Cinder attached to this node, put a
 * filesystem on it (never over existing data), mount it at the staging path; and undo it all.
 * A read-only access mode writes nothing to the device: the device is set read-only in the kernel
 * and the filesystem is mounted without journal replay (another node may be writing it).
 */
import type { ConnectedDevice } from '../../host/connector.ts';
import type { FsType } from '../../host/filesystem.ts';
import { stagingMountOptions } from '../../host/filesystem.ts';
import { alreadyExists, failedPrecondition } from '../errors.ts';
import type { RpcContext } from '../rpc.ts';
import type { NodeService } from '../services.ts';
import { resolveConnection } from './connection.ts';
import { exists, mkdirAll, type NodeContext } from './context.ts';
import { quotePath } from './errors.ts';
import { removePlaceholders } from './placeholders.ts';
import type { VolumeState } from './state.ts';
import { type ParsedCapability, parseCapability, requirePathUnder, requireVolumeId } from './validate.ts';

type Stage = Required<NodeService>['NodeStageVolume'];
type Unstage = Required<NodeService>['NodeUnstageVolume'];

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Why an existing staging cannot serve `cap` (ALREADY_EXISTS in the spec), or undefined. */
function incompatibleStaging(prev: VolumeState, cap: ParsedCapability): string | undefined {
  const as = `${prev.accessType}${prev.fsType ? ` (${prev.fsType})` : ''}`;
  if (prev.accessType !== cap.accessType || (cap.fsType && prev.fsType !== cap.fsType)) {
    return `volume ${prev.volumeId} is already staged as ${as}`;
  }
  if (prev.readOnly !== cap.readOnly) {
    return `volume ${prev.volumeId} is already staged ${prev.readOnly ? 'read-only' : 'read-write'} (access mode ${prev.accessMode}), not for ${cap.accessMode}`;
  }
  if (cap.accessType === 'mount' && prev.mountFlags && !sameList(prev.mountFlags, cap.mountFlags)) {
    return `volume ${prev.volumeId} is already staged with other mount flags`;
  }
  return undefined;
}

export function stageRpcs(c: NodeContext): { NodeStageVolume: Stage; NodeUnstageVolume: Unstage } {
  const { opts, store, mounter, filesystems } = c;

  async function completeAttachment(st: VolumeState, ctx: RpcContext): Promise<void> {
    if (st.attachmentCompleted || !st.attachmentId || !opts.cinder) return;
    // A failure leaves the volume staged with attachmentCompleted=false; the CO's retry of the
    // stage finds it staged and only completes the attachment.
    await opts.cinder.completeAttachment(st.attachmentId, { signal: ctx.signal });
    st.attachmentCompleted = true;
  }

  /**
   * Formats (only if blank and writable) and mounts the device at the staging path (which the
   * caller created).
   */
  async function mountStaging(dev: ConnectedDevice, staging: string, cap: ParsedCapability, ctx: RpcContext) {
    const fsType = cap.fsType as FsType;
    const existing = await mounter.find(staging);
    if (existing) {
      if (await c.mountedFrom(existing, dev)) return;
      throw failedPrecondition(
        `staging path ${quotePath(staging)} already has another mount (${quotePath(existing.source)})`,
      );
    }
    if (cap.readOnly) {
      // Nothing may write to the device: not mkfs, not fsck, not the journal replay of a mount.
      await mounter.setReadOnly(dev.devicePath, ctx.signal);
      const content = await filesystems.probe(dev.devicePath, ctx.signal);
      if (!content.type) {
        throw failedPrecondition(
          `volume has no filesystem and the access mode ${cap.accessMode} is read-only`,
        );
      }
      if (content.type !== fsType) {
        throw failedPrecondition(`volume holds ${content.type.slice(0, 40)}, not the requested ${fsType}`);
      }
    } else {
      const { formatted } = await filesystems.ensureFilesystem(dev.devicePath, fsType, {
        signal: ctx.signal,
      });
      if (!formatted && c.fsck) await filesystems.check(dev.devicePath, fsType, ctx.signal);
    }
    await mounter.mount(dev.devicePath, staging, {
      fsType,
      options: stagingMountOptions(fsType, cap.mountFlags, cap.readOnly),
      signal: ctx.signal,
    });
  }

  /** Best effort: clears the read-only mark a read-only staging set (see Mounter.setReadWrite). */
  async function releaseReadOnly(dev: ConnectedDevice, ctx: RpcContext): Promise<void> {
    if (!(await exists(c.local(dev.devicePath)))) return;
    await mounter
      .setReadWrite(dev.devicePath, AbortSignal.timeout(30_000))
      .catch((e: unknown) =>
        ctx.log.warn(
          { device: dev.devicePath, err: (e as Error).message },
          'clearing the read-only mark failed',
        ),
      );
  }

  const NodeStageVolume: Stage = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const staging = await requirePathUnder('staging_target_path', req.staging_target_path, c.kubeletRoot);
    const cap = parseCapability(req.volume_capability);
    return c.withVolume(volumeId, `staging volume ${volumeId}`, async () => {
      const prev = await store.get(volumeId);
      if (prev?.staged) {
        if (prev.stagingPath !== staging) {
          throw failedPrecondition(`volume ${volumeId} is already staged at ${quotePath(prev.stagingPath)}`);
        }
        const incompatible = incompatibleStaging(prev, cap);
        if (incompatible) throw alreadyExists(incompatible);
        const entry = prev.accessType === 'mount' ? await mounter.find(staging) : undefined;
        const stillThere =
          prev.accessType === 'block'
            ? await c.connectorFor(prev.device).isConnected(prev.device)
            : entry !== undefined && (await c.mountedFrom(entry, prev.device));
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
      // A staging path that cannot be created fails here, before anything is connected.
      await mkdirAll(staging);
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
        placeholders: prev?.placeholders ?? [],
        staged: false,
        updatedAt: '',
        ...(conn.attachmentId ? { attachmentId: conn.attachmentId } : {}),
        ...(cap.fsType ? { fsType: cap.fsType, mountFlags: cap.mountFlags } : {}),
      };
      // Recorded before formatting/mounting, so a crash in between can still be unstaged.
      await store.put(st);
      try {
        if (cap.accessType === 'mount') await mountStaging(dev, staging, cap, ctx);
        else if (cap.readOnly) await mounter.setReadOnly(dev.devicePath, ctx.signal);
      } catch (e) {
        // Do not leave a session/map behind for a stage that failed before mounting. Own time
        // budget: the call's signal may be what failed.
        if (!prev && !(await mounter.isMountPoint(staging))) {
          if (cap.readOnly) await releaseReadOnly(dev, ctx);
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

  const NodeUnstageVolume: Unstage = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const staging = await requirePathUnder('staging_target_path', req.staging_target_path, c.kubeletRoot);
    return c.withVolume(volumeId, `unstaging volume ${volumeId}`, async () => {
      const st = await store.get(volumeId);
      if (st && st.stagingPath !== staging) {
        throw failedPrecondition(
          `volume ${volumeId} is staged at ${quotePath(st.stagingPath)}, not ${quotePath(staging)}`,
        );
      }
      // One read of the mount table serves every check of this call.
      const table = await mounter.list();
      for (const t of st?.targets ?? []) {
        if (await mounter.isMountPoint(t.path, table)) {
          throw failedPrecondition(
            `volume ${volumeId} is still published at ${quotePath(t.path)}; unpublish it first`,
          );
        }
      }
      await mounter.unmount(staging, { signal: ctx.signal, busyTimeoutMs: c.busyTimeoutMs, table });
      if (!st) {
        ctx.log.info({ volumeId, staging }, 'no state for volume: nothing to disconnect');
        return {};
      }
      // Placeholders of publishes that never completed or were unmounted behind our back.
      await removePlaceholders(c, st, st.placeholders ?? [], ctx, table);
      const dev = st.device;
      // Unmounting synced the filesystem; raw block access may have left dirty buffers of the
      // device itself (os-brick flushes before disconnecting).
      if (st.accessType === 'block' && !st.readOnly && (await exists(c.local(dev.devicePath)))) {
        await mounter
          .sync(dev.devicePath, ctx.signal)
          .catch((e: unknown) =>
            ctx.log.warn({ volumeId, err: (e as Error).message }, 'flushing device buffers failed'),
          );
      }
      if (st.readOnly) await releaseReadOnly(dev, ctx);
      await c.connectorFor(dev).disconnect(dev, { signal: ctx.signal });
      await store.delete(volumeId);
      ctx.log.info({ volumeId, protocol: dev.protocol, device: dev.devicePath }, 'volume unstaged');
      return {};
    });
  };

  return { NodeStageVolume, NodeUnstageVolume };
}
