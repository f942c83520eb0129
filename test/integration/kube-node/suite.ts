/**
 * End to end on a real node (issue 14): the lab's kubelet 1.20 + containerd (test/k8s/kube-node.sh)
 * runs busybox pods whose volumes come from the driver, with the lab's control plane (binder,
 * attach-detach, expand, pvc-protection controllers; scheduler) and the lab Cinder (tgt backend).
 *
 * Real: the kubelet (registration, NodeGetInfo, CSINode, stage/publish/expand/unpublish/unstage,
 * block mapping, reconstruction after a restart), containerd/runc, the API server and controllers,
 * the driver's controller and node plugin (processes, `cinder-csi --mode controller|node`), Cinder,
 * tgtd, mkfs/mount/xfs_growfs. Stand-ins (test/support/kube-node/, each says so in its header):
 * node-driver-registrar, external-attacher, external-resizer; provisioning is static (the suite
 * calls CreateVolume/CreateSnapshot on the controller like external-provisioner and the snapshot
 * controller would; the lab has no snapshot CRDs) and creates the PVs itself. No kernel iSCSI
 * initiator here: the node plugin runs with test/doubles on PATH (README "what is real").
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectorAnnotationKey } from '../../../src/kube/connector-annotation.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { type DoublesEnv, setupDoubles } from '../../doubles/index.ts';
import { ExternalAttacher } from '../../support/kube-node/attacher.ts';
import {
  controllerProcess,
  type DriverProcess,
  type NodePlugin,
  nodeProcess,
  writeLabCloudConf,
} from '../../support/kube-node/driver.ts';
import {
  DEVICE,
  deletePod,
  fsBytes,
  gone,
  kubeNode,
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
import { PodNodePlugin } from '../../support/kube-node/node-pod.ts';
import { NodeDriverRegistrar } from '../../support/kube-node/registrar.ts';
import { ExternalResizer } from '../../support/kube-node/resizer.ts';
import {
  applyManifests,
  CONTROLLER_SA,
  type KubeLab,
  kubeLab,
  NODE_SA,
  RBAC_YAML,
} from '../kube/kube-lab.ts';
import { ensureKubeNode, type KubeNodeEnv, podContainers } from '../kube/kube-node.ts';
import { type LabSession, labSession } from '../openstack/cinder-lab-session.ts';

export type NodePluginVariant = 'process' | 'pod';

const GiB = 1024 ** 3;
/** Where a failed run leaves its driver and stand-in logs. */
const LOG_DIR = '/var/log/cinder-csi/kube-node-e2e';

interface Provisioned {
  pv: string;
  claim: string;
  volumeId: string;
}

/** The image the pod variant runs: built by test/image/build.sh, imported into the node's containerd. */
export const E2E_IMAGE = 'localhost/cinder-csi:e2e';

/**
 * The suite, once per way of running the node plugin: 'process' (`cinder-csi --mode node` on the
 * host, the doubles on PATH) or 'pod' (deploy/node.yaml's DaemonSet of the project's image).
 */
export function kubeNodeSuite(variant: NodePluginVariant): void {
  const skip = process.getuid?.() !== 0 ? 'needs root (a kubelet, mounts, loop devices)' : undefined;
  const RUN = `e2e${variant === 'pod' ? 'p' : ''}-${randomBytes(3).toString('hex')}`;
  const NS = RUN;
  const DRIVER = `${RUN}.cinder.csi.dev`;
  const SC = RUN;
  const TOKEN = `data-${randomBytes(8).toString('hex')}`;
  const BLOCK_TOKEN = `block-${randomBytes(8).toString('hex')}`;

  describe(`end to end on the lab kubelet: node plugin as a ${variant}`, {
    skip,
    timeout: 20 * 60_000,
  }, () => {
    let lab: KubeLab;
    let env: KubeNodeEnv;
    let os: LabSession;
    let cinder: CinderClient;
    let dir: string;
    let doubles: DoublesEnv;
    let controller: DriverProcess;
    let node: NodePlugin;
    let registrar: NodeDriverRegistrar;
    let attacher: ExternalAttacher;
    let resizer: ExternalResizer;
    const volumes: string[] = [];
    const snapshots: string[] = [];
    /** Volumes created from a snapshot (deleted before it). */
    const restored = new Set<string>();
    const pvs: string[] = [];
    const log: string[] = [];
    /** Set when a test or the set-up fails: the logs are printed before the clean-up. */
    let failed = false;
    const it = (name: string, fn: () => Promise<void>) =>
      test(name, async () => {
        try {
          await fn();
        } catch (err) {
          failed = true;
          throw err;
        }
      });
    const say = (m: string) => log.push(`${new Date().toISOString().slice(11, 23)} ${m}`);
    const core = () => lab.core!;
    const storage = () => lab.storage!;
    const csi = () => controller.client();

    before(async () => {
      try {
        await setUp();
      } catch (err) {
        failed = true;
        throw err;
      }
    });

    async function setUp(): Promise<void> {
      lab = await kubeLab();
      if (lab.reason) throw new Error(lab.reason);
      env = await ensureKubeNode(core());
      os = await labSession('keystone');
      if (os.reason) throw new Error(os.reason);
      cinder = new CinderClient({ session: os.session!, logger: silentLogger() });
      await applyManifests(lab.kc!, RBAC_YAML);
      dir = mkdtempSync(join(tmpdir(), `${RUN}-`));
      writeLabCloudConf(join(dir, 'cloud.conf'));
      doubles = setupDoubles(`${RUN}-doubles`);
      const setup = {
        driverName: DRIVER,
        clusterId: RUN,
        nodeName: env.name,
        kubeletRoot: env.kubeletRoot,
        dir,
        controllerKubeconfig: await lab.serviceAccountKubeconfig(CONTROLLER_SA),
        nodeKubeconfig: await lab.serviceAccountKubeconfig(NODE_SA),
        doubles,
      };
      await core().createNamespace({ body: { metadata: { name: NS } } });
      await storage().createCSIDriver({
        body: {
          metadata: { name: DRIVER },
          spec: { attachRequired: true, podInfoOnMount: true, volumeLifecycleModes: ['Persistent'] },
        },
      });
      await storage().createStorageClass({
        body: {
          metadata: { name: SC },
          provisioner: DRIVER,
          allowVolumeExpansion: true,
          reclaimPolicy: 'Retain',
          parameters: { type: 'tgt' },
        },
      });
      controller = controllerProcess(setup);
      if (variant === 'process') node = nodeProcess(setup);
      else {
        await buildAndImportImage();
        node = new PodNodePlugin(
          {
            run: RUN,
            driverName: DRIVER,
            kubeletRoot: env.kubeletRoot,
            nodeName: env.name,
            image: E2E_IMAGE,
            namespace: NODE_SA.namespace,
            cloudConfigSecret: `${RUN}-cloud-config`,
            dir,
            doubles,
            ...apiHostPort(lab),
          },
          { apps: lab.kc!.makeApiClient((await import('@kubernetes/client-node')).AppsV1Api), core: core() },
          join(dir, 'cloud.conf'),
        );
      }
      await Promise.all([controller.start(), node.start()]);
      registrar = new NodeDriverRegistrar({
        csiAddress: `unix://${node.socket}`,
        kubeletRegistrationPath: node.socket,
        registrationDir: join(env.kubeletRoot, 'plugins_registry'),
        log: say,
      });
      await registrar.start();
      await Promise.race([
        registrar.registered,
        new Promise((_, rej) =>
          setTimeout(() => rej(new Error('the kubelet did not register the plugin in 60 s')), 60_000),
        ),
      ]);
      // The kubelet called NodeGetInfo and wrote the node id into the node's CSINode.
      await until(
        'the CSINode entry of the driver',
        async () =>
          (await storage().readCSINode({ name: env.name })).spec.drivers.find((d) => d.name === DRIVER)
            ?.nodeID === env.name,
        30_000,
      );
      attacher = new ExternalAttacher({
        driverName: DRIVER,
        csi: csi(),
        core: core(),
        storage: storage(),
        log: say,
      });
      resizer = new ExternalResizer({
        driverName: DRIVER,
        csi: csi(),
        core: core(),
        namespaces: [NS],
        log: say,
      });
      attacher.start();
      resizer.start();
    }

    after(async () => {
      const errors: string[] = [];
      try {
        if (lab?.core) await teardown(errors);
      } finally {
        if (failed || errors.length) {
          process.stderr.write(`--- ${RUN} stand-ins' log:\n${log.join('\n')}\n`);
          process.stderr.write(`--- node plugin log tail:\n${node?.logTail(6000)}\n`);
          process.stderr.write(`--- controller log tail:\n${controller?.logTail(3000)}\n`);
          // The whole logs outlive the run's directory when something failed.
          const keep = join(LOG_DIR, RUN);
          mkdirSync(keep, { recursive: true });
          writeFileSync(join(keep, 'node-plugin.log'), node?.logTail(50 * 1024 * 1024) ?? '');
          writeFileSync(join(keep, 'controller.log'), controller?.logTail(50 * 1024 * 1024) ?? '');
          writeFileSync(join(keep, 'stand-ins.log'), log.join('\n'));
          process.stderr.write(`--- full logs: ${keep}\n`);
        }
        await attacher?.stop();
        await resizer?.stop();
        await registrar?.stop();
        await node?.stop();
        await controller?.stop();
        // The node plugin's connector annotation on the (shared) Node: this run's driver name only.
        if (lab?.admin && env)
          await lab.admin
            .patchNodeAnnotations(env.name, { [connectorAnnotationKey(DRIVER)]: null })
            .catch(() => undefined);
        // Anything a failure left mounted under this run's directories, then the doubles' loops.
        for (const m of dir ? mountsUnder(dir).sort((a, b) => b.length - a.length) : [])
          errors.push(`left mounted: ${m}`);
        doubles?.teardown();
        if (lab?.storage) {
          await storage()
            .deleteCSIDriver({ name: DRIVER })
            .catch(() => undefined);
          await storage()
            .deleteStorageClass({ name: SC })
            .catch(() => undefined);
        }
        if (lab?.core)
          await core()
            .deleteNamespace({ name: NS })
            .catch(() => undefined);
        await os?.close();
        lab?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
      if (errors.length) throw new Error(`clean-up: ${errors.join('; ')}`);
    });

    /** Removes pods, claims, PVs (after their VolumeAttachments are gone), snapshots and volumes. */
    async function teardown(errors: string[]): Promise<void> {
      const step = async (what: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (err) {
          errors.push(`${what}: ${(err as Error).message.slice(0, 400)}`);
        }
      };
      const pods = await core()
        .listNamespacedPod({ namespace: NS })
        .catch(() => ({ items: [] }));
      await Promise.all(
        pods.items.map((p) =>
          step(`pod ${p.metadata?.name}`, () => deletePod(core(), NS, p.metadata!.name!)),
        ),
      );
      const claims = await core()
        .listNamespacedPersistentVolumeClaim({ namespace: NS })
        .catch(() => ({ items: [] }));
      for (const c of claims.items) {
        await step(`claim ${c.metadata?.name}`, async () => {
          await core().deleteNamespacedPersistentVolumeClaim({ namespace: NS, name: c.metadata!.name! });
          await until(
            'the claim to be gone',
            () =>
              gone(() =>
                core().readNamespacedPersistentVolumeClaim({ namespace: NS, name: c.metadata!.name! }),
              ),
            60_000,
          );
        });
      }
      await step('VolumeAttachments', () =>
        until(
          'no VolumeAttachment of the driver',
          async () =>
            (await storage().listVolumeAttachment()).items.every((va) => va.spec.attacher !== DRIVER),
          180_000,
        ),
      );
      for (const pv of pvs) {
        await step(`PV ${pv}`, async () => {
          await core()
            .deletePersistentVolume({ name: pv })
            .catch((e) => {
              if ((e as { code?: number }).code !== 404) throw e;
            });
          await until(
            `PV ${pv} to be gone`,
            () => gone(() => core().readPersistentVolume({ name: pv })),
            60_000,
          );
        });
      }
      // Volumes restored from a snapshot, then the snapshots, then their origins (Cinder refuses to
      // delete a volume that has snapshots).
      const deleteVolume = (id: string) =>
        step(`volume ${id}`, () =>
          until(
            `DeleteVolume ${id}`,
            async () => {
              await csi().call('Controller', 'DeleteVolume', { volume_id: id, secrets: {} }, 60_000);
              return true;
            },
            120_000,
            undefined,
            2000,
          ),
        );
      for (const id of [...volumes].reverse()) if (restored.has(id)) await deleteVolume(id);
      for (const id of snapshots) {
        await step(`snapshot ${id}`, async () => {
          await csi().call('Controller', 'DeleteSnapshot', { snapshot_id: id, secrets: {} }, 60_000);
        });
      }
      for (const id of [...volumes].reverse()) if (!restored.has(id)) await deleteVolume(id);
    }

    /** What external-provisioner would do for a claim: CreateVolume, then a PV bound to the claim. */
    async function provision(
      name: string,
      opts: { sizeGiB: number; block?: boolean; fromSnapshot?: string },
    ): Promise<Provisioned> {
      const pv = `${RUN}-${name}`;
      const cap = opts.block
        ? { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }
        : { mount: { fs_type: 'xfs', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
      const res = await csi().call<{
        volume: { volume_id: string; capacity_bytes: string; volume_context: Record<string, string> };
      }>(
        'Controller',
        'CreateVolume',
        {
          name: pv,
          capacity_range: { required_bytes: String(opts.sizeGiB * GiB) },
          volume_capabilities: [cap],
          parameters: { type: 'tgt' },
          secrets: {},
          ...(opts.fromSnapshot
            ? { volume_content_source: { snapshot: { snapshot_id: opts.fromSnapshot } } }
            : {}),
        },
        180_000,
      );
      volumes.push(res.volume.volume_id);
      if (opts.fromSnapshot) restored.add(res.volume.volume_id);
      const size = `${opts.sizeGiB}Gi`;
      const volumeMode = opts.block ? 'Block' : 'Filesystem';
      pvs.push(pv);
      await core().createPersistentVolume({
        body: {
          metadata: { name: pv, annotations: { 'pv.kubernetes.io/provisioned-by': DRIVER } },
          spec: {
            capacity: { storage: size },
            accessModes: ['ReadWriteOnce'],
            persistentVolumeReclaimPolicy: 'Retain',
            storageClassName: SC,
            volumeMode,
            claimRef: { namespace: NS, name },
            csi: {
              driver: DRIVER,
              volumeHandle: res.volume.volume_id,
              ...(opts.block ? {} : { fsType: 'xfs' }),
              volumeAttributes: res.volume.volume_context ?? {},
            },
          },
        },
      });
      await core().createNamespacedPersistentVolumeClaim({
        namespace: NS,
        body: {
          metadata: { name },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: SC,
            volumeMode,
            volumeName: pv,
            resources: { requests: { storage: size } },
          },
        },
      });
      await until(
        `claim ${name} to be Bound`,
        async () =>
          (await core().readNamespacedPersistentVolumeClaim({ namespace: NS, name })).status?.phase ===
          'Bound',
        60_000,
      );
      return { pv, claim: name, volumeId: res.volume.volume_id };
    }

    const vaOf = async (pv: string) =>
      (await storage().listVolumeAttachment()).items.find((va) => va.spec.source.persistentVolumeName === pv);

    /** The volume is detached everywhere: no VolumeAttachment, no Cinder attachment, nothing mounted. */
    async function detached(p: Provisioned, timeoutMs = 180_000): Promise<void> {
      await until(
        `${p.pv}: VolumeAttachment gone`,
        async () => (await vaOf(p.pv)) === undefined,
        timeoutMs,
        () => log.slice(-10).join('\n'),
      );
      await until(
        `${p.pv}: Cinder volume available without attachments`,
        async () => {
          const v = await cinder.getVolume(p.volumeId);
          return (
            v.status === 'available' && (await cinder.listAttachments({ volume_id: p.volumeId })).length === 0
          );
        },
        60_000,
      );
      assert.deepEqual(
        mountsUnder(env.kubeletRoot, p.pv),
        [],
        'nothing of the volume mounted under the kubelet root',
      );
      assert.deepEqual(loopsUnder(env.kubeletRoot, p.pv), [], 'no kubelet loop device of the volume');
    }

    let fsVol: Provisioned;
    let readerUid = '';

    it('a pod writes to a claim; a second pod on the same claim reads it back; expand while mounted', async () => {
      fsVol = await provision('fs', { sizeGiB: 1 });
      const t0 = Date.now();
      await core().createNamespacedPod({
        namespace: NS,
        body: podManifest(env, {
          name: 'writer',
          claim: 'fs',
          script: `echo ${TOKEN} > ${MOUNT}/token && sync`,
        }),
      });
      await podSucceeded(core(), NS, 'writer');
      say(`writer pod succeeded after ${Date.now() - t0} ms`);
      const va = await vaOf(fsVol.pv);
      assert.equal(va?.spec.nodeName, env.name, 'the attach-detach controller created the VolumeAttachment');
      assert.ok(
        attacher.calls.includes(`publish ${fsVol.pv} ${env.name}`),
        'ControllerPublishVolume with the CSINode id',
      );
      await deletePod(core(), NS, 'writer');
      await detached(fsVol);

      await core().createNamespacedPod({
        namespace: NS,
        body: podManifest(env, {
          name: 'reader',
          claim: 'fs',
          script: 'sleep 3600',
          ready: `grep -qx ${TOKEN} ${MOUNT}/token`,
          restartPolicy: 'Always',
        }),
      });
      const reader = await podReady(core(), NS, 'reader');
      const uid = reader.metadata!.uid!;
      readerUid = uid;
      const target = join(env.kubeletRoot, 'pods', uid, 'volumes/kubernetes.io~csi', fsVol.pv, 'mount');
      const staging = join(env.kubeletRoot, 'plugins/kubernetes.io/csi/pv', fsVol.pv, 'globalmount');
      const mounts = mountsUnder(env.kubeletRoot, fsVol.pv);
      assert.ok(mounts.includes(target), `published at the kubelet's target path (${mounts.join(', ')})`);
      assert.ok(mounts.includes(staging), `staged at the kubelet's staging path (${mounts.join(', ')})`);

      // Expand while mounted: claim 1Gi → 2Gi; the resizer stand-in expands in Cinder, the kubelet
      // calls NodeExpandVolume (xfs_growfs online; online ext4 grow needs CAP_SYS_RESOURCE).
      const before = fsBytes(target);
      const claim = await core().readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'fs' });
      claim.spec!.resources!.requests = { storage: '2Gi' };
      await core().replaceNamespacedPersistentVolumeClaim({ namespace: NS, name: 'fs', body: claim });
      await until(
        'the resizer to expand the volume in Cinder',
        () => resizer.calls.includes(`expand ${fsVol.pv} ${2 * GiB}`),
        120_000,
        () => log.slice(-10).join('\n'),
      );
      // The kubelet looks for a pending filesystem resize when it syncs the pod (every minute, or on
      // a change of the pod): an annotation makes it sync now.
      const pod = await core().readNamespacedPod({ namespace: NS, name: 'reader' });
      pod.metadata!.annotations = { ...pod.metadata!.annotations, 'e2e/resized': '2Gi' };
      await core().replaceNamespacedPod({ namespace: NS, name: 'reader', body: pod });
      await until(
        'the kubelet to finish the filesystem resize (claim capacity 2Gi)',
        async () => {
          const c = await core().readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'fs' });
          return (
            c.status?.capacity?.['storage'] === String(2 * GiB) || c.status?.capacity?.['storage'] === '2Gi'
          );
        },
        180_000,
        async () =>
          JSON.stringify(
            (await core().readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'fs' })).status,
          ),
      );
      const afterBytes = fsBytes(target);
      assert.ok(afterBytes > before + 0.5 * GiB, `filesystem grew online: ${before} → ${afterBytes} bytes`);
      assert.equal((await cinder.getVolume(fsVol.volumeId)).size, 2, 'Cinder volume is 2 GiB');
    });

    it('kubelet restart while a volume is mounted: the pod deleted meanwhile is cleaned up after reconstruction', async () => {
      assert.ok(fsVol, 'needs the first test');
      await stopKubelet();
      try {
        await core().deleteNamespacedPod({ namespace: NS, name: 'reader', gracePeriodSeconds: 0 });
        await until(
          'the pod to be gone from the API',
          () => gone(() => core().readNamespacedPod({ namespace: NS, name: 'reader' })),
          30_000,
        );
        assert.notDeepEqual(
          mountsUnder(env.kubeletRoot, fsVol.pv),
          [],
          'still mounted while the kubelet is down',
        );
        assert.notDeepEqual(await podContainers(env, readerUid), [], 'its containers still run');
      } finally {
        await startKubelet();
      }
      await until(
        "the restarted kubelet to remove the deleted pod's containers",
        async () => (await podContainers(env, readerUid)).length === 0,
        180_000,
      );
      // The restarted kubelet reconstructs the volume from its directories, unpublishes and
      // unstages it, reports it unused; then the attach-detach controller detaches it.
      await detached(fsVol, 300_000);
    });

    it('a snapshot, and a claim restored from it, holds the data', async () => {
      assert.ok(fsVol, 'needs the first test');
      const snap = await csi().call<{ snapshot: { snapshot_id: string; ready_to_use: boolean } }>(
        'Controller',
        'CreateSnapshot',
        { source_volume_id: fsVol.volumeId, name: `${RUN}-snap`, secrets: {}, parameters: {} },
        120_000,
      );
      snapshots.push(snap.snapshot.snapshot_id);
      await until(
        'the snapshot to be ready',
        async () =>
          (
            await csi().call<{ snapshot: { ready_to_use: boolean } }>(
              'Controller',
              'CreateSnapshot',
              { source_volume_id: fsVol.volumeId, name: `${RUN}-snap`, secrets: {}, parameters: {} },
              60_000,
            )
          ).snapshot.ready_to_use,
        120_000,
        undefined,
        1000,
      );
      const restored = await provision('restored', { sizeGiB: 2, fromSnapshot: snap.snapshot.snapshot_id });
      await core().createNamespacedPod({
        namespace: NS,
        body: podManifest(env, {
          name: 'restored-reader',
          claim: 'restored',
          script: `cat ${MOUNT}/token > /dev/termination-log`,
        }),
      });
      assert.equal((await podSucceeded(core(), NS, 'restored-reader')).trim(), TOKEN);
      await deletePod(core(), NS, 'restored-reader');
      await detached(restored);
    });

    it('a block-mode claim: raw device written by one pod, read by the next', async () => {
      const blk = await provision('blk', { sizeGiB: 1, block: true });
      await core().createNamespacedPod({
        namespace: NS,
        body: podManifest(env, {
          name: 'blk-writer',
          claim: 'blk',
          block: true,
          script: `printf %s ${BLOCK_TOKEN} > ${DEVICE} && sync`,
        }),
      });
      await podSucceeded(core(), NS, 'blk-writer');
      await deletePod(core(), NS, 'blk-writer');
      await core().createNamespacedPod({
        namespace: NS,
        body: podManifest(env, {
          name: 'blk-reader',
          claim: 'blk',
          block: true,
          script: `head -c ${BLOCK_TOKEN.length} ${DEVICE} > /dev/termination-log`,
        }),
      });
      assert.equal(await podSucceeded(core(), NS, 'blk-reader'), BLOCK_TOKEN);
      await deletePod(core(), NS, 'blk-reader');
      await detached(blk);
    });

    it('at the end nothing is left: Cinder, the host (mounts, loop devices), the API', async () => {
      const errors: string[] = [];
      await teardown(errors);
      assert.deepEqual(errors, []);
      for (const id of volumes) {
        await until(`volume ${id} to be gone from Cinder`, () => gone(() => cinder.getVolume(id)), 120_000);
      }
      for (const id of snapshots) {
        await until(
          `snapshot ${id} to be gone from Cinder`,
          () => gone(() => cinder.getSnapshot(id)),
          120_000,
        );
      }
      const ours = [];
      for await (const v of cinder.listVolumes({ metadata: { 'cinder.csi.dev/cluster': RUN } }))
        ours.push(v.id);
      assert.deepEqual(ours, [], 'no volume of this cluster id in Cinder');
      assert.deepEqual(mountsUnder(env.kubeletRoot, RUN), [], 'no mount of this run under the kubelet root');
      assert.deepEqual(
        loopsUnder(env.kubeletRoot, RUN),
        [],
        'no loop device of this run under the kubelet root',
      );
      assert.deepEqual((await core().listNamespacedPod({ namespace: NS })).items, [], 'no pods');
      assert.deepEqual(
        (await core().listNamespacedPersistentVolumeClaim({ namespace: NS })).items,
        [],
        'no claims',
      );
      const leftPvs = (await core().listPersistentVolume()).items.filter((p) =>
        p.metadata?.name?.startsWith(RUN),
      );
      assert.deepEqual(leftPvs, [], 'no PVs');
      const leftVas = (await storage().listVolumeAttachment()).items.filter(
        (va) => va.spec.attacher === DRIVER,
      );
      assert.deepEqual(leftVas, [], 'no VolumeAttachments');
      volumes.length = 0;
      snapshots.length = 0;
      restored.clear();
      pvs.length = 0;
    });
  });
}

/** host and port of the lab API server (the pod's KUBERNETES_SERVICE_HOST/PORT). */
function apiHostPort(lab: KubeLab): { apiHost: string; apiPort: string } {
  const u = new URL(lab.kc!.getCurrentCluster()!.server);
  return { apiHost: u.hostname, apiPort: u.port || '443' };
}

/** test/image/build.sh --keep (cached layers: minutes only the first time), then into the node's containerd. */
async function buildAndImportImage(): Promise<void> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const repo = join(import.meta.dirname, '../../..');
  try {
    await run('bash', [join(repo, 'test/image/build.sh'), '--keep', '--tag', E2E_IMAGE], {
      timeout: 40 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`test/image/build.sh failed: ${(e.stderr ?? e.message).slice(-3000)}`);
  }
  await kubeNode('import-image', E2E_IMAGE);
}
