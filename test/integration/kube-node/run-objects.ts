/**
 * The volumes of one end-to-end run (suite.ts) and their Kubernetes objects: static provisioning
 * the way external-provisioner would do it (CreateVolume on the controller, then a PV pre-bound to
 * the claim, then the claim), the wait for a volume to be detached everywhere, and the clean-up of
 * everything the run created in the API and in Cinder (pods, claims, VolumeAttachments, PVs,
 * restored volumes, snapshots, volumes: in that order).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { deletePod, gone, loopsUnder, mountsUnder, until } from '../../support/kube-node/node-lab.ts';
import type { E2eRun } from './e2e-run.ts';

const GiB = 1024 ** 3;

export interface Provisioned {
  pv: string;
  claim: string;
  volumeId: string;
}

export class RunObjects {
  readonly #r: E2eRun;
  readonly volumes: string[] = [];
  readonly snapshots: string[] = [];
  /** Volumes created from a snapshot (deleted before it). */
  readonly restored = new Set<string>();
  readonly pvs: string[] = [];

  constructor(run: E2eRun) {
    this.#r = run;
  }

  /** What external-provisioner would do for a claim: CreateVolume, then a PV bound to the claim. */
  async provision(
    name: string,
    opts: { sizeGiB: number; block?: boolean; fromSnapshot?: string },
  ): Promise<Provisioned> {
    const r = this.#r;
    const pv = `${r.run}-${name}`;
    const cap = opts.block
      ? { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }
      : { mount: { fs_type: 'xfs', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
    const res = await r.csi().call<{
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
    this.volumes.push(res.volume.volume_id);
    if (opts.fromSnapshot) this.restored.add(res.volume.volume_id);
    const size = `${opts.sizeGiB}Gi`;
    const volumeMode = opts.block ? 'Block' : 'Filesystem';
    this.pvs.push(pv);
    await r.core().createPersistentVolume({
      body: {
        metadata: { name: pv, annotations: { 'pv.kubernetes.io/provisioned-by': r.driver } },
        spec: {
          capacity: { storage: size },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: r.sc,
          volumeMode,
          claimRef: { namespace: r.ns, name },
          csi: {
            driver: r.driver,
            volumeHandle: res.volume.volume_id,
            ...(opts.block ? {} : { fsType: 'xfs' }),
            volumeAttributes: res.volume.volume_context ?? {},
          },
        },
      },
    });
    await r.core().createNamespacedPersistentVolumeClaim({
      namespace: r.ns,
      body: {
        metadata: { name },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: r.sc,
          volumeMode,
          volumeName: pv,
          resources: { requests: { storage: size } },
        },
      },
    });
    await until(
      `claim ${name} to be Bound`,
      async () =>
        (await r.core().readNamespacedPersistentVolumeClaim({ namespace: r.ns, name })).status?.phase ===
        'Bound',
      60_000,
    );
    return { pv, claim: name, volumeId: res.volume.volume_id };
  }

  async vaOf(pv: string) {
    return (await this.#r.storage().listVolumeAttachment()).items.find(
      (va) => va.spec.source.persistentVolumeName === pv,
    );
  }

  /** The volume is detached everywhere: no VolumeAttachment, no Cinder attachment, nothing mounted. */
  async detached(p: Provisioned, timeoutMs = 180_000): Promise<void> {
    const r = this.#r;
    await until(
      `${p.pv}: VolumeAttachment gone`,
      async () => (await this.vaOf(p.pv)) === undefined,
      timeoutMs,
      () => r.log.slice(-10).join('\n'),
    );
    await until(
      `${p.pv}: Cinder volume available without attachments`,
      async () => {
        const v = await r.cinder.getVolume(p.volumeId);
        return (
          v.status === 'available' && (await r.cinder.listAttachments({ volume_id: p.volumeId })).length === 0
        );
      },
      60_000,
    );
    assert.deepEqual(
      mountsUnder(r.env.kubeletRoot, p.pv),
      [],
      'nothing of the volume mounted under the kubelet root',
    );
    assert.deepEqual(loopsUnder(r.env.kubeletRoot, p.pv), [], 'no kubelet loop device of the volume');
    assert.deepEqual(
      loopsOfVolumes([p.volumeId]),
      [],
      'no loop device on the volume data (iSCSI logged out)',
    );
  }

  /** Removes pods, claims, PVs (after their VolumeAttachments are gone), snapshots and volumes. */
  async teardown(errors: string[]): Promise<void> {
    const r = this.#r;
    const core = r.core();
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(`${what}: ${(err as Error).message.slice(0, 400)}`);
      }
    };
    const pods = await core.listNamespacedPod({ namespace: r.ns }).catch(() => ({ items: [] }));
    await Promise.all(
      pods.items.map((p) => step(`pod ${p.metadata?.name}`, () => deletePod(core, r.ns, p.metadata!.name!))),
    );
    const claims = await core
      .listNamespacedPersistentVolumeClaim({ namespace: r.ns })
      .catch(() => ({ items: [] }));
    for (const c of claims.items) {
      const name = c.metadata!.name!;
      await step(`claim ${name}`, async () => {
        await core.deleteNamespacedPersistentVolumeClaim({ namespace: r.ns, name });
        await until(
          'the claim to be gone',
          () => gone(() => core.readNamespacedPersistentVolumeClaim({ namespace: r.ns, name })),
          60_000,
        );
      });
    }
    await step('VolumeAttachments', () =>
      until(
        'no VolumeAttachment of the driver',
        async () =>
          (await r.storage().listVolumeAttachment()).items.every((va) => va.spec.attacher !== r.driver),
        180_000,
      ),
    );
    for (const pv of this.pvs) {
      await step(`PV ${pv}`, async () => {
        await core.deletePersistentVolume({ name: pv }).catch((e) => {
          if ((e as { code?: number }).code !== 404) throw e;
        });
        await until(`PV ${pv} to be gone`, () => gone(() => core.readPersistentVolume({ name: pv })), 60_000);
      });
    }
    // Volumes restored from a snapshot, then the snapshots, then their origins (Cinder refuses to
    // delete a volume that has snapshots).
    const deleteVolume = (id: string) =>
      step(`volume ${id}`, () =>
        until(
          `DeleteVolume ${id}`,
          async () => {
            await r.csi().call('Controller', 'DeleteVolume', { volume_id: id, secrets: {} }, 60_000);
            return true;
          },
          120_000,
          undefined,
          2000,
        ),
      );
    for (const id of [...this.volumes].reverse()) if (this.restored.has(id)) await deleteVolume(id);
    for (const id of this.snapshots) {
      await step(`snapshot ${id}`, () =>
        r.csi().call('Controller', 'DeleteSnapshot', { snapshot_id: id, secrets: {} }, 60_000),
      );
    }
    for (const id of [...this.volumes].reverse()) if (!this.restored.has(id)) await deleteVolume(id);
  }

  /** Nothing of the run in Cinder (after teardown): its volumes and snapshots gone, none of its cluster id. */
  async assertGoneFromCinder(): Promise<void> {
    const r = this.#r;
    for (const id of this.volumes)
      await until(`volume ${id} to be gone from Cinder`, () => gone(() => r.cinder.getVolume(id)), 120_000);
    for (const id of this.snapshots)
      await until(
        `snapshot ${id} to be gone from Cinder`,
        () => gone(() => r.cinder.getSnapshot(id)),
        120_000,
      );
    const ours: string[] = [];
    for await (const v of r.cinder.listVolumes({ metadata: { 'cinder.csi.dev/cluster': r.run } }))
      ours.push(v.id);
    assert.deepEqual(ours, [], 'no volume of this cluster id in Cinder');
  }

  /** Forget what was removed (so a later clean-up does not try again). */
  clear(): void {
    this.volumes.length = 0;
    this.snapshots.length = 0;
    this.restored.clear();
    this.pvs.length = 0;
  }
}

/** Loop devices whose backing file is a volume's data (tgt's file names carry the volume id). */
export function loopsOfVolumes(volumeIds: readonly string[]): string[] {
  if (volumeIds.length === 0) return [];
  const out = execFileSync('losetup', ['-n', '-l', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && volumeIds.some((id) => l.includes(id)));
}
