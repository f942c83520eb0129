/**
 * End to end on a real node (issue 14): the lab's kubelet 1.20 + containerd (test/k8s/kube-node.sh)
 * runs busybox pods whose volumes come from the driver, with the lab's control plane (binder,
 * attach-detach, expand, pvc-protection controllers; scheduler) and the lab Cinder (tgt backend).
 * Run once per way of running the node plugin (process.test.ts, pod.test.ts; e2e-run.ts).
 *
 * Real: the kubelet (registration, NodeGetInfo, CSINode, stage/publish/expand/unpublish/unstage,
 * block mapping, reconstruction after a restart), containerd/runc, the API server and controllers,
 * the driver's controller (a process) and node plugin (a process, or the chart's DaemonSet pod of
 * the project's image), Cinder, tgtd, mkfs/mount/xfs_growfs. Stand-ins (test/support/kube-node/,
 * each says so in its header): node-driver-registrar, external-attacher, external-resizer;
 * provisioning is static (run-objects.ts calls CreateVolume/CreateSnapshot on the controller like
 * external-provisioner and the snapshot controller would; the lab has no snapshot CRDs) and creates
 * the PVs itself. No kernel iSCSI initiator here: the node plugin runs the tool doubles of
 * test/doubles (README "what is real").
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ownedLoops } from '../../doubles/lib/common.ts';
import {
  DEVICE,
  deletePod,
  fsBytes,
  gone,
  loopsUnder,
  MOUNT,
  mountsUnder,
  podManifest,
  podReady,
  podSucceeded,
  startKubelet,
  stopKubelet,
  until,
} from '../../support/kube-node/node-lab.ts';
import { TestWork } from '../../support/test-work.ts';
import { NODE_SA } from '../kube/kube-lab.ts';
import { podContainers, runContainers } from '../kube/kube-node.ts';
import { imageTestSkipReason } from '../kube/project-image.ts';
import { E2eRun, type NodePluginVariant } from './e2e-run.ts';
import { loopsOfVolumes, type Provisioned, RunObjects } from './run-objects.ts';

export type { NodePluginVariant } from './e2e-run.ts';

const GiB = 1024 ** 3;

/**
 * The suite, once per way of running the node plugin: 'process' (`cinder-csi --mode node` on the
 * host, the doubles on PATH) or 'pod' (deploy/node.yaml's DaemonSet of the project's image).
 */
export function kubeNodeSuite(variant: NodePluginVariant): void {
  const skip =
    process.getuid?.() !== 0
      ? 'needs root (a kubelet, mounts, loop devices)'
      : variant === 'pod'
        ? imageTestSkipReason()
        : undefined;
  const TOKEN = `data-${randomBytes(8).toString('hex')}`;
  const BLOCK_TOKEN = `block-${randomBytes(8).toString('hex')}`;

  describe(`end to end on the lab kubelet: node plugin as a ${variant}`, {
    skip,
    // the pod variant may build the project image first (test/image/build.sh: minutes, more on a busy machine)
    timeout: 60 * 60_000,
  }, () => {
    const r = new E2eRun(variant);
    const objs = new RunObjects(r);
    // a test that timed out goes on running: the clean-up waits for it (test-work.ts)
    const work = new TestWork();
    const it = (name: string, fn: () => Promise<void>) =>
      test(name, (t) =>
        work.run(t, async () => {
          try {
            await fn();
          } catch (err) {
            r.failed = true;
            throw err;
          }
        }),
      );

    before(
      async () => {
        try {
          await r.setUp();
        } catch (err) {
          r.failed = true;
          throw err;
        }
      },
      { timeout: 45 * 60_000 },
    );

    after(async () => {
      await work.settled();
      const errors: string[] = [];
      try {
        if (r.lab?.core) await objs.teardown(errors);
        if (r.failed || errors.length) r.dumpLogs();
        await r.stop(errors);
      } finally {
        await r.close();
      }
      if (errors.length) throw new Error(`clean-up: ${errors.join('; ')}`);
    });

    let fsVol: Provisioned;
    let readerUid = '';

    it('a pod writes to a claim; a second pod on the same claim reads it back; expand while mounted', async () => {
      fsVol = await objs.provision('fs', { sizeGiB: 1 });
      const t0 = Date.now();
      await r.core().createNamespacedPod({
        namespace: r.ns,
        body: podManifest(r.env, {
          name: 'writer',
          claim: 'fs',
          script: `echo ${TOKEN} > ${MOUNT}/token && sync`,
        }),
      });
      await podSucceeded(r.core(), r.ns, 'writer');
      r.say(`writer pod succeeded after ${Date.now() - t0} ms`);
      const va = await objs.vaOf(fsVol.pv);
      assert.equal(
        va?.spec.nodeName,
        r.env.name,
        'the attach-detach controller created the VolumeAttachment',
      );
      assert.ok(
        r.attacher.calls.includes(`publish ${fsVol.pv} ${r.env.name}`),
        'ControllerPublishVolume with the CSINode id',
      );
      await deletePod(r.core(), r.ns, 'writer');
      await objs.detached(fsVol);

      await r.core().createNamespacedPod({
        namespace: r.ns,
        body: podManifest(r.env, {
          name: 'reader',
          claim: 'fs',
          script: 'sleep 3600',
          ready: `grep -qx ${TOKEN} ${MOUNT}/token`,
          restartPolicy: 'Always',
        }),
      });
      const reader = await podReady(r.core(), r.ns, 'reader');
      const uid = reader.metadata!.uid!;
      readerUid = uid;
      const target = join(r.env.kubeletRoot, 'pods', uid, 'volumes/kubernetes.io~csi', fsVol.pv, 'mount');
      const staging = join(r.env.kubeletRoot, 'plugins/kubernetes.io/csi/pv', fsVol.pv, 'globalmount');
      const mounts = mountsUnder(r.env.kubeletRoot, fsVol.pv);
      assert.ok(mounts.includes(target), `published at the kubelet's target path (${mounts.join(', ')})`);
      assert.ok(mounts.includes(staging), `staged at the kubelet's staging path (${mounts.join(', ')})`);

      // Expand while mounted: claim 1Gi → 2Gi; the resizer stand-in expands in Cinder, the kubelet
      // calls NodeExpandVolume (xfs_growfs online; online ext4 grow needs CAP_SYS_RESOURCE).
      const before = fsBytes(target);
      const claim = await r.core().readNamespacedPersistentVolumeClaim({ namespace: r.ns, name: 'fs' });
      claim.spec!.resources!.requests = { storage: '2Gi' };
      await r.core().replaceNamespacedPersistentVolumeClaim({ namespace: r.ns, name: 'fs', body: claim });
      await until(
        'the resizer to expand the volume in Cinder',
        () => r.resizer.calls.includes(`expand ${fsVol.pv} ${2 * GiB}`),
        120_000,
        () => r.log.slice(-10).join('\n'),
      );
      // The kubelet looks for a pending filesystem resize when it syncs the pod (every minute, or on
      // a change of the pod): an annotation makes it sync now.
      const pod = await r.core().readNamespacedPod({ namespace: r.ns, name: 'reader' });
      pod.metadata!.annotations = { ...pod.metadata!.annotations, 'e2e/resized': '2Gi' };
      await r.core().replaceNamespacedPod({ namespace: r.ns, name: 'reader', body: pod });
      await until(
        'the kubelet to finish the filesystem resize (claim capacity 2Gi)',
        async () => {
          const c = await r.core().readNamespacedPersistentVolumeClaim({ namespace: r.ns, name: 'fs' });
          return (
            c.status?.capacity?.['storage'] === String(2 * GiB) || c.status?.capacity?.['storage'] === '2Gi'
          );
        },
        180_000,
        async () =>
          JSON.stringify(
            (await r.core().readNamespacedPersistentVolumeClaim({ namespace: r.ns, name: 'fs' })).status,
          ),
      );
      const afterBytes = fsBytes(target);
      assert.ok(afterBytes > before + 0.5 * GiB, `filesystem grew online: ${before} → ${afterBytes} bytes`);
      assert.equal((await r.cinder.getVolume(fsVol.volumeId)).size, 2, 'Cinder volume is 2 GiB');
    });

    it('kubelet restart while a volume is mounted: the pod deleted meanwhile is cleaned up after reconstruction', async () => {
      assert.ok(fsVol, 'needs the first test');
      await stopKubelet();
      try {
        await r.core().deleteNamespacedPod({ namespace: r.ns, name: 'reader', gracePeriodSeconds: 0 });
        await until(
          'the pod to be gone from the API',
          () => gone(() => r.core().readNamespacedPod({ namespace: r.ns, name: 'reader' })),
          30_000,
        );
        assert.notDeepEqual(
          mountsUnder(r.env.kubeletRoot, fsVol.pv),
          [],
          'still mounted while the kubelet is down',
        );
        assert.notDeepEqual(await podContainers(r.env, readerUid), [], 'its containers still run');
      } finally {
        await startKubelet();
      }
      await until(
        "the restarted kubelet to remove the deleted pod's containers",
        async () => (await podContainers(r.env, readerUid)).length === 0,
        180_000,
      );
      // The restarted kubelet reconstructs the volume from its directories, unpublishes and
      // unstages it, reports it unused; then the attach-detach controller detaches it.
      await objs.detached(fsVol, 300_000);
    });

    it('a snapshot, and a claim restored from it, holds the data', async () => {
      assert.ok(fsVol, 'needs the first test');
      const snap = await r
        .csi()
        .call<{ snapshot: { snapshot_id: string; ready_to_use: boolean } }>(
          'Controller',
          'CreateSnapshot',
          { source_volume_id: fsVol.volumeId, name: `${r.run}-snap`, secrets: {}, parameters: {} },
          120_000,
        );
      objs.snapshots.push(snap.snapshot.snapshot_id);
      await until(
        'the snapshot to be ready',
        async () =>
          (
            await r
              .csi()
              .call<{ snapshot: { ready_to_use: boolean } }>(
                'Controller',
                'CreateSnapshot',
                { source_volume_id: fsVol.volumeId, name: `${r.run}-snap`, secrets: {}, parameters: {} },
                60_000,
              )
          ).snapshot.ready_to_use,
        120_000,
        undefined,
        1000,
      );
      const restored = await objs.provision('restored', {
        sizeGiB: 2,
        fromSnapshot: snap.snapshot.snapshot_id,
      });
      await r.core().createNamespacedPod({
        namespace: r.ns,
        body: podManifest(r.env, {
          name: 'restored-reader',
          claim: 'restored',
          script: `cat ${MOUNT}/token > /dev/termination-log`,
        }),
      });
      assert.equal((await podSucceeded(r.core(), r.ns, 'restored-reader')).trim(), TOKEN);
      await deletePod(r.core(), r.ns, 'restored-reader');
      await objs.detached(restored);
    });

    it('a block-mode claim: raw device written by one pod, read by the next', async () => {
      const blk = await objs.provision('blk', { sizeGiB: 1, block: true });
      await r.core().createNamespacedPod({
        namespace: r.ns,
        body: podManifest(r.env, {
          name: 'blk-writer',
          claim: 'blk',
          block: true,
          script: `printf %s ${BLOCK_TOKEN} > ${DEVICE} && sync`,
        }),
      });
      await podSucceeded(r.core(), r.ns, 'blk-writer');
      await deletePod(r.core(), r.ns, 'blk-writer');
      await r.core().createNamespacedPod({
        namespace: r.ns,
        body: podManifest(r.env, {
          name: 'blk-reader',
          claim: 'blk',
          block: true,
          script: `head -c ${BLOCK_TOKEN.length} ${DEVICE} > /dev/termination-log`,
        }),
      });
      assert.equal(await podSucceeded(r.core(), r.ns, 'blk-reader'), BLOCK_TOKEN);
      await deletePod(r.core(), r.ns, 'blk-reader');
      await objs.detached(blk);
    });

    it("at the end nothing is left: Cinder, the host (mounts, loop devices), the API, the node's containers", async () => {
      const errors: string[] = [];
      const volumeIds = [...objs.volumes];
      await objs.teardown(errors);
      assert.deepEqual(errors, []);
      await objs.assertGoneFromCinder();
      // The logs are wanted when a check below fails: kept before the node plugin goes.
      if (r.failed) r.dumpLogs();
      const doublesState = r.doubles!.state;
      await r.stop(errors);
      assert.deepEqual(errors, []);
      const core = r.core();
      assert.deepEqual(
        mountsUnder(r.env.kubeletRoot, r.run),
        [],
        'no mount of this run under the kubelet root',
      );
      assert.deepEqual(loopsUnder(r.env.kubeletRoot, r.run), [], 'no kubelet loop device of this run');
      assert.deepEqual(loopsOfVolumes(volumeIds), [], 'no loop device on the data of a volume of this run');
      assert.deepEqual(ownedLoops(doublesState), [], "no loop device of the doubles' iSCSI logins");
      assert.deepEqual(
        (await core.listPersistentVolume()).items.filter((p) => p.metadata?.name?.startsWith(r.run)),
        [],
        'no PVs',
      );
      assert.deepEqual(
        (await r.storage().listVolumeAttachment()).items.filter((va) => va.spec.attacher === r.driver),
        [],
        'no VolumeAttachments',
      );
      // pods and claims went with the namespace; the node plugin pod's DaemonSet and Secret too
      await until('the namespace to be gone', () => gone(() => core.readNamespace({ name: r.ns })), 180_000);
      await until(
        'the CSIDriver to be gone',
        () => gone(() => r.storage().readCSIDriver({ name: r.driver })),
        30_000,
      );
      await until(
        'the StorageClass to be gone',
        () => gone(() => r.storage().readStorageClass({ name: r.sc })),
        30_000,
      );
      const plugin = await core.listNamespacedPod({
        namespace: NODE_SA.namespace,
        labelSelector: `e2e.cinder.csi.dev/run=${r.run}`,
      });
      assert.deepEqual(plugin.items, [], 'no node plugin pod');
      // The kubelet removes the containers of deleted pods in its container GC (every minute).
      await until(
        "the node's containerd to hold no container of the run's pods",
        async () => (await runContainers(r.env, r.run)).length === 0,
        180_000,
        async () => (await runContainers(r.env, r.run)).join('\n'),
        2000,
      );
      objs.clear();
    });
  });
}
