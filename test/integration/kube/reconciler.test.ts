/**
 * Stale-attachment reconciler against the real lab Cinder (Keystone, backend "fake") and the real
 * kube-apiserver, running with the controller ServiceAccount's minted token (deploy/rbac.yaml).
 *
 * Four volumes, attached the way ControllerPublishVolume does (attachment with the node's
 * connector + the `cinder.csi.dev.attachment.<id>` host record):
 *   live     on node A, completed, VolumeAttachment present           → kept
 *   orphan   on node A, completed, VolumeAttachment created then deleted → deleted after the grace period
 *   deadnode on node B, reserved (not completed), VolumeAttachment present, Node B deleted → deleted
 *   foreign  on node A, another cluster's marker, no VolumeAttachment   → never touched
 *   unrecorded  for node A by the publish intent only (`cinder.csi.dev.publishing`: the POST's answer
 *            was lost, no record), not completed; the volume's only VolumeAttachment is on node C
 *            (the pod moved on; A's VolumeAttachment went without an unpublish) → deleted: it is
 *            A's, and it would block C's publish for ever (not multiattach)
 * Everything is named with RUN and removed afterwards. Skips when the API server or the lab is absent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectorAnnotationKey, encodeConnectorAnnotation } from '../../../src/kube/connector-annotation.ts';
import type { KubeApi } from '../../../src/kube/kube-api.ts';
import { type ReconcileAction, StaleAttachmentReconciler } from '../../../src/kube/reconciler.ts';
import type { CinderClient } from '../../../src/openstack/cinder.ts';
import type { HostConnector } from '../../../src/openstack/cinder-types.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import type { LabSession } from '../openstack/cinder-lab-session.ts';
import {
  CONTROLLER_SA,
  closeKubeLab,
  DRIVER,
  deleteVolumeAndAttachments,
  ignore404,
  type KubeLab,
  rbacKubeCinderLab,
  runPrefix,
  serviceAccountApi,
} from './kube-lab.ts';

const RUN = runPrefix('kube-reconc-it');
const CLUSTER_KEY = 'cinder.csi.dev/cluster';
const HOST_PREFIX = 'cinder.csi.dev.attachment.';
const NODE_A = `${RUN}-a`;
const NODE_B = `${RUN}-b`;
const NODE_C = `${RUN}-c`;
const INTENT_KEY = 'cinder.csi.dev.publishing';
const GRACE_MS = 1500;
const NAMES = ['live', 'orphan', 'deadnode', 'foreign', 'unrecorded'] as const;
type Name = (typeof NAMES)[number];

let lab: KubeLab;
let os: LabSession | undefined;
let cinder: CinderClient;
let controllerApi: KubeApi;
const skip = { reason: '' };
const vol = {} as Record<Name, { id: string; attachmentId: string }>;
const k8sCleanup: (() => Promise<unknown>)[] = [];

const connector = (node: string): HostConnector => ({
  host: node,
  initiator: `iqn.1993-08.org.debian:01:${node}`,
  ip: '127.0.0.1',
  platform: 'x86_64',
  os_type: 'linux',
  multipath: false,
  do_local_attach: false,
});

async function attachedVolume(
  name: Name,
  node: string,
  complete: boolean,
  cluster = RUN,
  record: 'record' | 'intent only' = 'record',
) {
  const v = await cinder.createVolume({
    size: 1,
    name: `${RUN}-${name}`,
    volume_type: 'fake',
    metadata: { [CLUSTER_KEY]: cluster },
  });
  await cinder.waitForVolume(v.id, { target: ['available'], signal: AbortSignal.timeout(60_000) });
  if (record === 'intent only') await cinder.setVolumeMetadata(v.id, { [INTENT_KEY]: node });
  const att = await cinder.createAttachment({ volume_uuid: v.id, connector: connector(node), mode: 'rw' });
  if (record === 'record') await cinder.setVolumeMetadata(v.id, { [`${HOST_PREFIX}${att.id}`]: node });
  if (complete) await cinder.completeAttachment(att.id);
  vol[name] = { id: v.id, attachmentId: att.id };
}

async function pvAndVa(name: Name, node: string) {
  const pv = `${RUN}-${name}`;
  await lab.core!.createPersistentVolume({
    body: {
      metadata: { name: pv },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        csi: { driver: DRIVER, volumeHandle: vol[name].id },
      },
    },
  });
  k8sCleanup.push(() => ignore404(lab.core!.deletePersistentVolume({ name: pv })));
  await lab.storage!.createVolumeAttachment({
    body: {
      metadata: { name: pv },
      spec: { attacher: DRIVER, nodeName: node, source: { persistentVolumeName: pv } },
    },
  });
  k8sCleanup.push(() => ignore404(lab.storage!.deleteVolumeAttachment({ name: pv })));
}

/** Which of this run's attachments still exist (others' tests attach in the same project). */
async function attachmentIds(): Promise<Set<string>> {
  const ours = new Set(NAMES.map((n) => vol[n].attachmentId));
  const ids = new Set<string>();
  for (const a of await cinder.listAttachments({})) if (ours.has(a.id)) ids.add(a.id);
  return ids;
}

function reconciler(opts: { dryRun?: boolean; graceMs: number; actions: ReconcileAction[] }) {
  return new StaleAttachmentReconciler({
    cinder,
    kube: controllerApi,
    driverName: DRIVER,
    clusterVolumes: { filters: { metadata: { [CLUSTER_KEY]: RUN } } },
    logger: silentLogger(),
    graceMs: opts.graceMs,
    dryRun: opts.dryRun,
    onAction: (a) => opts.actions.push(a),
  });
}

describe('stale-attachment reconciler on the lab Cinder and a real kube-apiserver', {
  timeout: 180_000,
}, () => {
  before(async () => {
    ({ lab, os, cinder } = await rbacKubeCinderLab(skip));
    if (skip.reason) return;
    controllerApi = await serviceAccountApi(lab, CONTROLLER_SA);
    for (const node of [NODE_A, NODE_B, NODE_C]) {
      // node C runs the node plugin: its connector is published (so its host is known)
      const annotations =
        node === NODE_C
          ? { [connectorAnnotationKey(DRIVER)]: encodeConnectorAnnotation(connector(node)) }
          : undefined;
      await lab.core!.createNode({
        body: { metadata: { name: node, ...(annotations ? { annotations } : {}) } },
      });
      k8sCleanup.push(() => ignore404(lab.core!.deleteNode({ name: node })));
    }
    await Promise.all([
      attachedVolume('live', NODE_A, true),
      attachedVolume('orphan', NODE_A, true),
      attachedVolume('deadnode', NODE_B, false),
      attachedVolume('foreign', NODE_A, true, `${RUN}-other-cluster`),
      attachedVolume('unrecorded', NODE_A, false, RUN, 'intent only'),
    ]);
    await pvAndVa('live', NODE_A);
    await pvAndVa('orphan', NODE_A);
    await pvAndVa('deadnode', NODE_B);
    await pvAndVa('unrecorded', NODE_C);
    // the orphan's VolumeAttachment disappears without ControllerUnpublishVolume (force-deleted)
    await lab.storage!.deleteVolumeAttachment({ name: `${RUN}-orphan` });
    // node B is removed from the cluster with its VolumeAttachment still there
    await lab.core!.deleteNode({ name: NODE_B });
  });

  after(async () => {
    if (cinder) {
      for (const name of NAMES) {
        const v = vol[name];
        if (v) await deleteVolumeAndAttachments(cinder, v.id);
      }
    }
    if (lab && !lab.reason) {
      for (const step of k8sCleanup.reverse()) await step().catch(() => undefined);
      const events = await lab
        .core!.listNamespacedEvent({ namespace: 'default' })
        .catch(() => ({ items: [] }));
      for (const e of events.items) {
        if (e.involvedObject?.name?.startsWith(RUN) && e.metadata?.name) {
          await ignore404(lab.core!.deleteNamespacedEvent({ namespace: 'default', name: e.metadata.name }));
        }
      }
    }
    await os?.close();
    await closeKubeLab(lab);
  });

  it('dry run reports exactly the stale attachments and deletes nothing', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const actions: ReconcileAction[] = [];
    const before = await attachmentIds();
    const res = await reconciler({ dryRun: true, graceMs: 0, actions }).runOnce();
    assert.equal(res.examined, 4, "only this cluster's four attachments are examined");
    assert.equal(res.live, 1);
    assert.deepEqual(
      actions.map((a) => [a.action, a.attachmentId, a.reason]).sort(),
      [
        ['would-delete', vol.deadnode.attachmentId, 'node-deleted'],
        ['would-delete', vol.orphan.attachmentId, 'volumeattachment-missing'],
        ['would-delete', vol.unrecorded.attachmentId, 'volumeattachment-missing'],
      ].sort(),
    );
    assert.deepEqual(await attachmentIds(), before);
  });

  it('deletes the stale attachments after the grace period, keeps live and foreign ones, records Events', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const actions: ReconcileAction[] = [];
    const r = reconciler({ graceMs: GRACE_MS, actions });

    await r.runOnce();
    assert.deepEqual(
      actions.map((a) => a.action),
      ['pending', 'pending', 'pending'],
      'first sighting only starts the grace clock',
    );
    let ids = await attachmentIds();
    for (const name of NAMES)
      assert.ok(ids.has(vol[name].attachmentId), `${name} still attached during the grace period`);

    await new Promise((res) => setTimeout(res, GRACE_MS + 100));
    actions.length = 0;
    const res = await r.runOnce();
    assert.deepEqual(
      actions.map((a) => [a.action, a.volumeId, a.pvName]).sort(),
      [
        ['deleted', vol.deadnode.id, `${RUN}-deadnode`],
        ['deleted', vol.orphan.id, `${RUN}-orphan`],
        ['deleted', vol.unrecorded.id, `${RUN}-unrecorded`],
      ].sort(),
    );
    assert.equal(res.live, 1);

    ids = await attachmentIds();
    assert.ok(ids.has(vol.live.attachmentId), 'attachment of a live VolumeAttachment kept');
    assert.ok(ids.has(vol.foreign.attachmentId), "other cluster's attachment untouched");
    assert.ok(!ids.has(vol.orphan.attachmentId), 'orphaned attachment deleted');
    assert.ok(!ids.has(vol.deadnode.attachmentId), "dead node's attachment deleted");
    assert.ok(!ids.has(vol.unrecorded.attachmentId), "node A's unrecorded attachment deleted");
    assert.equal(
      actions.find((a) => a.volumeId === vol.unrecorded.id)?.host,
      NODE_A,
      "judged as the intent's node",
    );
    const orphan = await cinder.getVolume(vol.orphan.id);
    assert.equal(
      orphan.metadata[`${HOST_PREFIX}${vol.orphan.attachmentId}`],
      undefined,
      'host record removed',
    );
    const live = await cinder.getVolume(vol.live.id);
    assert.equal(live.metadata[`${HOST_PREFIX}${vol.live.attachmentId}`], NODE_A, 'live record kept');

    const events = await lab.core!.listNamespacedEvent({ namespace: 'default' });
    const ours = events.items.filter(
      (e) => e.involvedObject?.name?.startsWith(RUN) && e.reason === 'StaleAttachmentDeleted',
    );
    assert.deepEqual(ours.map((e) => e.involvedObject.name).sort(), [
      `${RUN}-deadnode`,
      `${RUN}-orphan`,
      `${RUN}-unrecorded`,
    ]);
    assert.match(
      ours.find((e) => e.involvedObject.name === `${RUN}-orphan`)?.message ?? '',
      new RegExp(vol.orphan.attachmentId),
    );

    // nothing left to do: a further pass is a no-op
    actions.length = 0;
    await r.runOnce();
    assert.deepEqual(actions, []);
  });
});
