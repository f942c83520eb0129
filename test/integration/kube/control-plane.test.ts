/**
 * The test API server (test/k8s/kube-lab.sh) is a usable control plane for storage: its
 * kube-controller-manager runs the controllers a real one runs, so a claim is bound to a matching
 * PersistentVolume (persistentvolume-binder), carries the pvc-protection finalizer, and a deleted
 * claim and volume actually go away (pvc-/pv-protection remove their finalizers); and a
 * kube-scheduler looks at every pod.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gone } from '../../support/kube-node/node-lab.ts';
import { eventually, type KubeLab, kubeLab, runPrefix } from './kube-lab.ts';

const RUN = runPrefix('cp');
let lab: KubeLab | undefined;
const skip = { reason: '' };

describe('kube-lab control plane (kube-controller-manager with the storage controllers)', () => {
  before(async () => {
    lab = await kubeLab();
    if (lab.reason) skip.reason = lab.reason;
  });
  after(async () => {
    if (lab && !lab.reason) {
      await lab.core!.deleteNamespace({ name: RUN }).catch(() => undefined);
      await lab.core!.deletePersistentVolume({ name: `${RUN}-pv` }).catch(() => undefined);
    }
    lab?.close();
  });

  test('a claim binds to a matching PersistentVolume; deleting both removes them', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const core = lab!.core!;
    await core.createNamespace({ body: { metadata: { name: RUN } } });
    await core.createPersistentVolume({
      body: {
        metadata: { name: `${RUN}-pv` },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          storageClassName: RUN,
          persistentVolumeReclaimPolicy: 'Delete',
          csi: { driver: 'cinder.csi.dev', volumeHandle: `${RUN}-handle` },
        },
      },
    });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: RUN,
      body: {
        metadata: { name: 'claim' },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: RUN,
          resources: { requests: { storage: '1Gi' } },
        },
      },
    });
    const read = () => core.readNamespacedPersistentVolumeClaim({ namespace: RUN, name: 'claim' });
    await eventually('the claim to be Bound', async () => (await read()).status?.phase === 'Bound', 60_000);
    const pvc = await read();
    assert.equal(pvc.spec?.volumeName, `${RUN}-pv`);
    assert.ok(pvc.metadata?.finalizers?.includes('kubernetes.io/pvc-protection'), 'pvc-protection finalizer');

    await core.deleteNamespacedPersistentVolumeClaim({ namespace: RUN, name: 'claim' });
    await eventually('the claim to be gone', () => gone(read), 60_000);
    // reclaim policy Delete with a CSI volume and no provisioner running: the volume is Released
    // (or Failed); the finalizers stay out of the way of a plain delete
    await core.deletePersistentVolume({ name: `${RUN}-pv` });
    await eventually(
      'the volume to be gone',
      () => gone(() => core.readPersistentVolume({ name: `${RUN}-pv` })),
      60_000,
    );
  });

  test('kube-scheduler runs: a pod that fits no node is marked Unschedulable', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const core = lab!.core!;
    await core.createNamespace({ body: { metadata: { name: RUN } } }).catch((err: { code?: number }) => {
      if (err.code !== 409) throw err;
    });
    // no node has this label (the lab has no kubelet; other tests' Node objects lack it)
    await core.createNamespacedPod({
      namespace: RUN,
      body: {
        metadata: { name: 'pod' },
        spec: { nodeSelector: { [`${RUN}/none`]: 'x' }, containers: [{ name: 'c', image: 'none' }] },
      },
    });
    const scheduled = async () =>
      (await core.readNamespacedPod({ namespace: RUN, name: 'pod' })).status?.conditions?.find(
        (c) => c.type === 'PodScheduled',
      );
    await eventually(
      'the scheduler to look at the pod',
      async () => (await scheduled()) !== undefined,
      60_000,
    );
    assert.equal((await scheduled())?.reason, 'Unschedulable');
  });
});
