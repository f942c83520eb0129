/**
 * NodePublishVolume / NodeUnpublishVolume: bind the staged filesystem (mount access) or the
 * device node (block access) onto the pod's target path, and undo it. The driver creates the
 * target (an empty directory or file) only when nothing is there, records that it did, and on
 * unpublish removes only what it created (src/csi/node/placeholders.ts).
 */
import { lstat, open } from 'node:fs/promises';
import path from 'node:path';
import { deviceNumber } from '../../host/mount.ts';
import { alreadyExists, failedPrecondition, invalidArgument } from '../errors.ts';
import type { NodeService } from '../services.ts';
import { exists, mkdirAll, type NodeContext } from './context.ts';
import { isMissingPath, quotePath } from './errors.ts';
import { removePlaceholder } from './placeholders.ts';
import type { VolumeState } from './state.ts';
import { type ParsedCapability, parseCapability, requirePathUnder, requireVolumeId } from './validate.ts';

type Publish = Required<NodeService>['NodePublishVolume'];
type Unpublish = Required<NodeService>['NodeUnpublishVolume'];

const within = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

export function publishRpcs(c: NodeContext): { NodePublishVolume: Publish; NodeUnpublishVolume: Unpublish } {
  const { store, mounter } = c;

  /**
   * Makes sure `target` exists as what the bind needs (a directory for mount access, a file for
   * block access), creating it when absent and recording it as the driver's before it does.
   * Something else already there is refused rather than mounted over. Writes the state (with
   * `target` already in `st.targets`) before anything is created.
   */
  async function prepareTarget(st: VolumeState, target: string, cap: ParsedCapability): Promise<void> {
    let found: Awaited<ReturnType<typeof lstat>> | undefined;
    try {
      found = await lstat(target);
    } catch (e) {
      if (!isMissingPath(e)) throw e;
    }
    const want = cap.accessType === 'mount' ? 'a directory' : 'an empty regular file';
    if (found) {
      const fits = cap.accessType === 'mount' ? found.isDirectory() : found.isFile() && found.size === 0;
      if (!fits) {
        throw failedPrecondition(
          `target_path ${quotePath(target)} exists and is not ${want}; the driver does not mount over it`,
        );
      }
      await store.put(st);
      return;
    }
    if (!(st.placeholders ?? []).includes(target)) {
      st.placeholders = [...(st.placeholders ?? []), target];
    }
    // Recorded before it is created (and before the bind): one write for the placeholder and the
    // target. A kill after it leaves a record of a target that may not be mounted, which is safe:
    // every reader of `targets` checks the mount table, and unpublish or a retried publish finish.
    await store.put(st);
    if (cap.accessType === 'mount') {
      await mkdirAll(target);
    } else {
      await mkdirAll(path.dirname(target));
      await (await open(target, 'wx', 0o640)).close();
    }
  }

  const NodePublishVolume: Publish = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const target = await requirePathUnder('target_path', req.target_path, c.kubeletRoot);
    const cap = parseCapability(req.volume_capability);
    if (!req.staging_target_path) {
      // The spec's "Staging target path not set" row: the node advertises STAGE_UNSTAGE_VOLUME.
      throw failedPrecondition(
        'staging_target_path is required: this driver stages volumes (STAGE_UNSTAGE_VOLUME) before publishing them',
      );
    }
    const staging = await requirePathUnder('staging_target_path', req.staging_target_path, c.kubeletRoot);
    if (within(target, staging) || within(staging, target)) {
      throw invalidArgument('target_path must not be the staging path, inside it, or contain it');
    }
    return c.withVolume(volumeId, `publishing volume ${volumeId}`, async () => {
      const st = await store.get(volumeId);
      if (!st?.staged) throw failedPrecondition(`volume ${volumeId} is not staged on this node`);
      if (st.stagingPath !== staging) {
        throw failedPrecondition(
          `volume ${volumeId} is staged at ${quotePath(st.stagingPath)}, not ${quotePath(staging)}`,
        );
      }
      if (st.accessType !== cap.accessType) {
        throw failedPrecondition(
          `volume ${volumeId} was staged for ${st.accessType} access, not ${cap.accessType}`,
        );
      }
      const readOnly = req.readonly || cap.readOnly || st.readOnly;
      // One read of the mount table serves every check of this call.
      const table = await mounter.list();
      if (cap.accessMode === 'SINGLE_NODE_SINGLE_WRITER' && !readOnly) {
        for (const t of st.targets) {
          if (t.path !== target && !t.readOnly && (await mounter.isMountPoint(t.path, table))) {
            throw failedPrecondition(
              `volume ${volumeId} is SINGLE_NODE_SINGLE_WRITER and already published at ${quotePath(t.path)}`,
            );
          }
        }
      }

      // What the target must be a mount of: the staging filesystem, or the device node.
      const source = cap.accessType === 'mount' ? staging : st.device.devicePath;
      const existing = await mounter.find(target, table);
      const entry = { path: target, readOnly };
      if (existing) {
        let same: boolean;
        if (cap.accessType === 'mount') {
          const stagingEntry = await mounter.find(staging, table);
          same =
            stagingEntry !== undefined &&
            existing.majorMinor === stagingEntry.majorMinor &&
            existing.root === stagingEntry.root;
        } else {
          same = (await deviceNumber(target)) === (await deviceNumber(c.local(st.device.devicePath)));
        }
        if (!same) {
          throw failedPrecondition(
            `target path ${quotePath(target)} already has another mount (${quotePath(existing.source)})`,
          );
        }
        if (existing.mountOptions.includes('ro') !== readOnly) {
          throw alreadyExists(
            `volume ${volumeId} is already published at ${quotePath(target)} ${readOnly ? 'read-write' : 'read-only'}`,
          );
        }
        const known = st.targets.find((t) => t.path === target);
        if (known?.readOnly !== readOnly) {
          st.targets = [...st.targets.filter((t) => t.path !== target), entry];
          await store.put(st);
        }
      } else {
        if (cap.accessType === 'mount') {
          if (!(await mounter.isMountPoint(staging, table))) {
            throw failedPrecondition(
              `staging path ${quotePath(staging)} of volume ${volumeId} is not mounted; stage it again`,
            );
          }
        } else if (!(await exists(c.local(st.device.devicePath)))) {
          throw failedPrecondition(
            `device ${quotePath(st.device.devicePath)} of volume ${volumeId} is gone; stage it again`,
          );
        }
        st.targets = [...st.targets.filter((t) => t.path !== target), entry];
        await prepareTarget(st, target, cap);
        try {
          await mounter.bindMount(source, target, { readOnly, signal: ctx.signal });
        } catch (e) {
          // Not published after all (the placeholder stays recorded: unpublish removes it).
          st.targets = st.targets.filter((t) => t.path !== target);
          await store.put(st).catch(() => undefined);
          throw e;
        }
      }
      ctx.log.info({ volumeId, target, readOnly }, 'volume published');
      return {};
    });
  };

  const NodeUnpublishVolume: Unpublish = async (req, ctx) => {
    const volumeId = requireVolumeId(req.volume_id);
    const target = await requirePathUnder('target_path', req.target_path, c.kubeletRoot);
    return c.withVolume(volumeId, `unpublishing volume ${volumeId}`, async () => {
      await mounter.unmount(target, { signal: ctx.signal, busyTimeoutMs: c.busyTimeoutMs });
      const st = await store.get(volumeId);
      // Only what this driver created there goes away. State written before placeholders were
      // recorded counts the targets it published as its own.
      const ours = st?.placeholders
        ? st.placeholders.includes(target)
        : (st?.targets.some((t) => t.path === target) ?? false);
      if (ours) await removePlaceholder(target, ctx);
      if (st && (ours || st.targets.some((t) => t.path === target))) {
        st.targets = st.targets.filter((t) => t.path !== target);
        if (st.placeholders) st.placeholders = st.placeholders.filter((p) => p !== target);
        await store.put(st);
      }
      ctx.log.info({ volumeId, target }, 'volume unpublished');
      return {};
    });
  };

  return { NodePublishVolume, NodeUnpublishVolume };
}
