/**
 * Decisions of the stale-attachment reconciler, with in-memory doubles of Cinder and Kubernetes
 * (the real-system behaviour is covered by test/integration/kube/reconciler.test.ts; these cover
 * the edge cases that are hard to stage there: ambiguous hosts, failures, clock).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoreV1Event, V1Node, V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import {
  type ReconcileAction,
  StaleAttachmentReconciler,
  type StaleAttachmentReconcilerOptions,
  staleReason,
} from '../../../src/kube/reconciler.ts';
import type { ListWatcher, WatchEvent } from '../../../src/kube/watch-cache.ts';
import type { Attachment, Volume } from '../../../src/openstack/cinder-types.ts';
import { silentLogger } from '../../../src/util/logger.ts';

const DRIVER = 'cinder.csi.openstack.org';
const CLUSTER = { 'cinder.csi.dev/cluster': 'c1' };

function volume(
  id: string,
  opts: {
    cluster?: Record<string, string>;
    attachedTo?: [string, string][];
    records?: Record<string, string>;
  } = {},
): Volume {
  return {
    id,
    name: id,
    status: opts.attachedTo?.length ? 'in-use' : 'reserved',
    size: 1,
    availability_zone: 'nova',
    volume_type: 'fake',
    snapshot_id: null,
    source_volid: null,
    description: null,
    metadata: { ...(opts.cluster ?? CLUSTER), ...(opts.records ?? {}) },
    multiattach: false,
    attachments: (opts.attachedTo ?? []).map(([attachment_id, host_name]) => ({
      attachment_id,
      host_name,
      volume_id: id,
    })),
    created_at: '',
    updated_at: null,
  };
}

const attachment = (id: string, volume_id: string, status = 'attached'): Attachment => ({
  id,
  volume_id,
  status,
  instance: null,
  attached_at: null,
  detached_at: null,
  attach_mode: 'rw',
});

const node = (name: string, connectorHost?: string): V1Node => ({
  metadata: {
    name,
    annotations: connectorHost
      ? { [`${DRIVER}/connector`]: JSON.stringify({ version: 1, connector: { host: connectorHost } }) }
      : {},
  },
});
const pv = (name: string, volumeHandle: string): V1PersistentVolume => ({
  metadata: { name, uid: `uid-${name}` },
  spec: { csi: { driver: DRIVER, volumeHandle } },
});
const va = (
  name: string,
  pvName: string,
  nodeName: string,
  metadata?: Record<string, string>,
): V1VolumeAttachment => ({
  metadata: { name },
  spec: { attacher: DRIVER, nodeName, source: { persistentVolumeName: pvName } },
  status: metadata ? { attached: true, attachmentMetadata: metadata } : undefined,
});

class World {
  volumes: Volume[] = [];
  attachments: Attachment[] = [];
  nodes: V1Node[] = [];
  pvs: V1PersistentVolume[] = [];
  vas: V1VolumeAttachment[] = [];
  events: CoreV1Event[] = [];
  deleted: string[] = [];
  deleteError: Error | undefined;
  kubeDown = false;
  listedVolumesWith: unknown[] = [];
  clock = 1_000_000;
  vaWatcher: ListWatcher<V1VolumeAttachment> | undefined;

  reconciler(extra: Partial<StaleAttachmentReconcilerOptions> = {}, actions: ReconcileAction[] = []) {
    return new StaleAttachmentReconciler({
      cinder: {
        listVolumes: (filters) => {
          this.listedVolumesWith.push(filters);
          const vols = this.volumes;
          return (async function* () {
            yield* vols;
          })();
        },
        listAttachments: async () => [...this.attachments],
        deleteAttachment: async (id) => {
          if (this.deleteError) throw this.deleteError;
          if (!this.attachments.some((a) => a.id === id))
            throw Object.assign(new Error('not found'), { status: 404 });
          this.deleted.push(id);
          this.attachments = this.attachments.filter((a) => a.id !== id);
        },
      },
      kube: {
        listVolumeAttachments: async () => this.#kube([...this.vas]),
        listPersistentVolumes: async () => this.#kube([...this.pvs]),
        nodes: {
          list: async () => this.#kube({ items: [...this.nodes], resourceVersion: '1' }),
          watch: async () => {},
        },
        createEvent: async (_ns, e) => {
          this.events.push(e);
        },
        ...(this.vaWatcher ? { volumeAttachments: this.vaWatcher } : {}),
      },
      driverName: DRIVER,
      clusterVolumes: { filters: { metadata: CLUSTER } },
      logger: silentLogger(),
      graceMs: 60_000,
      now: () => this.clock,
      onAction: (a) => actions.push(a),
      ...extra,
    });
  }

  #kube<T>(v: T): T {
    if (this.kubeDown) throw Object.assign(new Error('connect ECONNREFUSED'), {});
    return v;
  }
}

/** v-live on n1 (VA present), v-orphan on n1 (no VA), v-foreign (other cluster, no VA). */
function standardWorld(): World {
  const w = new World();
  w.nodes = [node('n1', 'n1')];
  w.volumes = [
    volume('v-live', { attachedTo: [['a-live', 'n1']] }),
    volume('v-orphan', { attachedTo: [['a-orphan', 'n1']] }),
    volume('v-foreign', { cluster: { 'cinder.csi.dev/cluster': 'c2' }, attachedTo: [['a-foreign', 'n1']] }),
  ];
  w.attachments = [
    attachment('a-live', 'v-live'),
    attachment('a-orphan', 'v-orphan'),
    attachment('a-foreign', 'v-foreign'),
  ];
  w.pvs = [pv('pv-live', 'v-live'), pv('pv-orphan', 'v-orphan')];
  w.vas = [va('va-live', 'pv-live', 'n1')];
  return w;
}

describe('staleReason', () => {
  const live = { nodeName: 'n1', nodeExists: true, connectorHost: 'n1' };
  it('keeps an attachment whose host has a VolumeAttachment on an existing node', () => {
    assert.equal(staleReason({ host: 'n1' }, [live]), undefined);
    assert.equal(
      staleReason({ host: 'h1.example' }, [{ ...live, connectorHost: 'h1.example' }]),
      undefined,
      'matched by connector host',
    );
  });
  it('stale when no VolumeAttachment accounts for the host', () => {
    assert.equal(staleReason({ host: 'n2' }, [live]), 'volumeattachment-missing');
    assert.equal(staleReason({ host: 'n2' }, []), 'volumeattachment-missing');
  });
  it('stale when the VolumeAttachment is on a deleted node', () => {
    assert.equal(staleReason({ host: 'n1' }, [{ ...live, nodeExists: false }]), 'node-deleted');
  });
  it('keeps when ambiguous: a VolumeAttachment on an existing node whose connector host is unknown', () => {
    assert.equal(
      staleReason({ host: 'h9' }, [{ nodeName: 'n3', nodeExists: true, connectorHost: undefined }]),
      undefined,
    );
  });
  it('host unknown (not completed): any VolumeAttachment on an existing node keeps it', () => {
    assert.equal(staleReason({ host: undefined }, [{ ...live, nodeName: 'other' }]), undefined);
    assert.equal(staleReason({ host: undefined }, [{ ...live, nodeExists: false }]), 'node-deleted');
    assert.equal(staleReason({ host: undefined }, []), 'volumeattachment-missing');
  });
});

describe('StaleAttachmentReconciler', () => {
  it("deletes only after the grace period, only this cluster's stale attachment, and records an Event on the PV", async () => {
    const w = standardWorld();
    const actions: ReconcileAction[] = [];
    const r = w.reconciler({}, actions);
    const first = await r.runOnce();
    assert.equal(first.examined, 2);
    assert.equal(first.live, 1);
    assert.deepEqual(
      actions.map((a) => [a.action, a.attachmentId, a.reason]),
      [['pending', 'a-orphan', 'volumeattachment-missing']],
    );
    assert.deepEqual(w.deleted, []);
    assert.deepEqual(w.listedVolumesWith, [{ metadata: CLUSTER }], 'server-side cluster filter');

    w.clock += 59_999;
    await r.runOnce();
    assert.deepEqual(w.deleted, [], 'still within the grace period');
    w.clock += 1;
    actions.length = 0;
    await r.runOnce();
    assert.deepEqual(w.deleted, ['a-orphan']);
    assert.deepEqual(
      actions.map((a) => [a.action, a.pvName, a.staleForMs]),
      [['deleted', 'pv-orphan', 60_000]],
    );
    assert.equal(w.events.length, 1);
    assert.deepEqual(w.events[0]?.involvedObject, {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      name: 'pv-orphan',
      uid: 'uid-pv-orphan',
    });
    assert.equal(w.events[0]?.reason, 'StaleAttachmentDeleted');
  });

  it('restarts the grace clock when an attachment becomes live again', async () => {
    const w = standardWorld();
    const r = w.reconciler();
    await r.runOnce(); // stale since t0
    w.vas.push(va('va-orphan', 'pv-orphan', 'n1')); // re-published meanwhile
    w.clock += 30_000;
    await r.runOnce();
    w.vas.pop();
    w.clock += 40_000;
    await r.runOnce(); // stale again since t0 + 70 s
    assert.deepEqual(w.deleted, [], 'seen stale for 0 s, not 70 s');
    w.clock += 60_000;
    await r.runOnce();
    assert.deepEqual(w.deleted, ['a-orphan']);
  });

  it('dry run: reports would-delete and an Event, deletes nothing', async () => {
    const w = standardWorld();
    const actions: ReconcileAction[] = [];
    await w.reconciler({ dryRun: true, graceMs: 0 }, actions).runOnce();
    assert.deepEqual(
      actions.map((a) => [a.action, a.attachmentId]),
      [['would-delete', 'a-orphan']],
    );
    assert.deepEqual(w.deleted, []);
    assert.equal(w.events[0]?.reason, 'StaleAttachmentFound');
  });

  it('a pass whose Kubernetes listing fails deletes nothing', async () => {
    const w = standardWorld();
    w.kubeDown = true;
    const r = w.reconciler({ graceMs: 0 });
    await assert.rejects(r.runOnce(), /list Kubernetes objects/);
    assert.deepEqual(w.deleted, []);
    assert.equal(r.stats.failedPasses, 1);
  });

  it("keeps an attachment named in a VolumeAttachment's attachmentMetadata, even if hosts do not match", async () => {
    const w = standardWorld();
    w.vas.push(va('va-x', 'pv-unknown', 'n7', { attachment_id: 'a-orphan' }));
    const res = await w.reconciler({ graceMs: 0 }).runOnce();
    assert.equal(res.live, 2);
    assert.deepEqual(w.deleted, []);
  });

  it('node deleted: attachment of a VolumeAttachment whose Node is gone is stale', async () => {
    const w = standardWorld();
    w.vas.push(va('va-orphan', 'pv-orphan', 'n2'));
    w.volumes[1] = volume('v-orphan', { attachedTo: [['a-orphan', 'n2']] });
    const actions: ReconcileAction[] = [];
    await w.reconciler({ graceMs: 0 }, actions).runOnce();
    assert.deepEqual(
      actions.map((a) => [a.action, a.reason]),
      [['deleted', 'node-deleted']],
    );
  });

  it("reserved (not completed) attachment: host from the controller's metadata record", async () => {
    const w = standardWorld();
    w.volumes.push(volume('v-res', { records: { 'cinder.csi.dev.attachment.a-res': 'n1' } }));
    w.attachments.push(attachment('a-res', 'v-res', 'reserved'));
    w.pvs.push(pv('pv-res', 'v-res'));
    w.vas.push(va('va-res', 'pv-res', 'n1'));
    const actions: ReconcileAction[] = [];
    await w.reconciler({ graceMs: 0 }, actions).runOnce();
    assert.deepEqual(
      actions.map((a) => a.attachmentId),
      ['a-orphan'],
      'a-res is live on n1',
    );
  });

  it('a failed delete is reported and retried on the next pass; 404 counts as deleted', async () => {
    const w = standardWorld();
    w.deleteError = Object.assign(new Error('HTTP 503'), { status: 503 });
    const actions: ReconcileAction[] = [];
    const r = w.reconciler({ graceMs: 0 }, actions);
    await r.runOnce();
    assert.deepEqual(
      actions.map((a) => [a.action, a.error]),
      [['delete-failed', 'HTTP 503']],
    );
    w.deleteError = undefined;
    w.attachments = w.attachments.filter((a) => a.id !== 'a-orphan');
    w.attachments.push(attachment('a-orphan', 'v-orphan', 'detaching'));
    await r.runOnce();
    assert.deepEqual(w.deleted, ['a-orphan']);
  });

  it('without a cluster marker nothing is considered ours', async () => {
    const w = standardWorld();
    const res = await w.reconciler({ clusterVolumes: { filters: {} }, graceMs: 0 }).runOnce();
    assert.equal(res.examined, 0);
    assert.deepEqual(w.deleted, []);
  });

  it('a VolumeAttachment deletion seen by the watch triggers passes (soon, and after the grace period)', async () => {
    const w = standardWorld();
    let emit: ((e: WatchEvent<V1VolumeAttachment>) => void) | undefined;
    const volumeAttachments: ListWatcher<V1VolumeAttachment> = {
      list: async () => ({ items: [va('va-orphan', 'pv-orphan', 'n1')], resourceVersion: '1' }),
      watch: (_rv, onEvent, signal) =>
        new Promise<void>((resolve) => {
          emit = onEvent;
          signal.addEventListener('abort', () => resolve(), { once: true });
        }),
    };
    w.vaWatcher = volumeAttachments;
    const rr = w.reconciler({ graceMs: 50, intervalMs: 3_600_000, now: Date.now });
    rr.start();
    try {
      // the periodic pass at start sees a-orphan stale (pending); wait for the watch
      const deadline = Date.now() + 5000;
      while (!emit && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
      assert.ok(emit, 'watch started');
      const passes = rr.stats.passes;
      emit({ type: 'DELETED', object: va('va-orphan', 'pv-orphan', 'n1') });
      while (w.deleted.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      assert.deepEqual(w.deleted, ['a-orphan'], 'deleted by a pass triggered after the grace period');
      assert.ok(rr.stats.passes >= passes + 1);
    } finally {
      await rr.stop();
    }
  });
});
