/**
 * The walk-through's attach and detach of a volume on the demo node (test/demo/walkthrough.ts), call
 * by call as the external-attacher and kubelet make them: ControllerPublishVolume, NodeStageVolume,
 * NodePublishVolume and back. The detach is owed (in the UndoList) from the moment the attach is
 * asked for.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CsiTestClient } from '../support/csi-client.ts';
import type { Steps } from './steps.ts';
import { allOf, type UndoList, whileBusy } from './undo.ts';

export const mountCap = {
  mount: { fs_type: 'xfs', mount_flags: [] },
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
};
export type Vol = {
  volume: {
    volume_id: string;
    capacity_bytes: string;
    accessible_topology: { segments: Record<string, string> }[];
  };
};

export type Attached = { staging: string; target: string; owed: ReturnType<UndoList['add']> };

/** The CHAP password Cinder's tgt helper configured for this volume's target (lab-side file). */
export function chapSecretOf(volumeId: string): string | undefined {
  try {
    const conf = readFileSync(`/var/lib/cinder/volumes/volume-${volumeId}`, 'utf8');
    return /incominguser\s+\S+\s+(\S+)/.exec(conf)?.[1];
  } catch {
    return undefined;
  }
}

export interface AttachOptions {
  client: CsiTestClient;
  nodeId: string;
  kubeletRoot: string;
  undo: UndoList;
  step: Steps['step'];
  /** Secrets seen during the run (the lab target's CHAP credentials), looked for in the driver's log. */
  plantedSecrets: Set<string>;
}

/** attachAndMount and detach on `nodeId` with `client`. */
export function attacher({ client, nodeId, kubeletRoot, undo, step, plantedSecrets }: AttachOptions) {
  async function attachAndMount(volumeId: string, tag: string): Promise<Attached> {
    const staging = join(kubeletRoot, 'plugins/kubernetes.io/csi/cinder.csi.dev', tag, 'globalmount');
    const target = join(kubeletRoot, 'pods', `pod-${tag}`, 'volumes/kubernetes.io~csi', `pv-${tag}`, 'mount');
    // Owed from the moment the attach is asked for: every step of a detach is idempotent.
    const owed = undo.add(`detach ${tag} (unpublish, unstage, ControllerUnpublish)`, () =>
      allOf([
        () => client.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target }),
        () =>
          client.call(
            'Node',
            'NodeUnstageVolume',
            { volume_id: volumeId, staging_target_path: staging },
            60_000,
          ),
        () =>
          whileBusy(() =>
            client.call(
              'Controller',
              'ControllerUnpublishVolume',
              { volume_id: volumeId, node_id: nodeId },
              60_000,
            ),
          ),
      ]),
    );
    const pub = await step(
      `ControllerPublishVolume ${tag} → ${nodeId}`,
      () =>
        client.call<{ publish_context: Record<string, string> }>('Controller', 'ControllerPublishVolume', {
          volume_id: volumeId,
          node_id: nodeId,
          volume_capability: mountCap,
          readonly: false,
        }),
      (r) =>
        `attachment ${r.publish_context['attachment_id']?.slice(0, 8)}…, ${r.publish_context['driver_volume_type']}`,
    );
    const chap = chapSecretOf(volumeId);
    if (chap) plantedSecrets.add(chap);
    mkdirSync(staging, { recursive: true });
    mkdirSync(join(target, '..'), { recursive: true });
    await step(`NodeStageVolume ${tag} (connect, mkfs if blank, mount)`, () =>
      client.call(
        'Node',
        'NodeStageVolume',
        {
          volume_id: volumeId,
          publish_context: pub.publish_context,
          staging_target_path: staging,
          volume_capability: mountCap,
        },
        120_000,
      ),
    );
    await step(`NodePublishVolume ${tag} (bind mount into the pod)`, () =>
      client.call('Node', 'NodePublishVolume', {
        volume_id: volumeId,
        publish_context: pub.publish_context,
        staging_target_path: staging,
        target_path: target,
        volume_capability: mountCap,
        readonly: false,
      }),
    );
    return { staging, target, owed };
  }

  /** The normal detach, step by step; only when all of it succeeded is nothing owed any more. */
  async function detach(volumeId: string, tag: string, paths: Attached) {
    const run = step;
    await run(`NodeUnpublishVolume ${tag}`, () =>
      client.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: paths.target }),
    );
    await run(`NodeUnstageVolume ${tag} (unmount, flush, log out)`, () =>
      client.call(
        'Node',
        'NodeUnstageVolume',
        { volume_id: volumeId, staging_target_path: paths.staging },
        60_000,
      ),
    );
    await run(`ControllerUnpublishVolume ${tag}`, () =>
      client.call(
        'Controller',
        'ControllerUnpublishVolume',
        { volume_id: volumeId, node_id: nodeId },
        60_000,
      ),
    );
    undo.settle(paths.owed);
  }

  return { attachAndMount, detach };
}
