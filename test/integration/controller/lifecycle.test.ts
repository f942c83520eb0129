/**
 * Full volume lifecycle through the controller service on the lab Cinder, for each backend (fake,
 * rbd, tgt) in Keystone and noauth mode: create → publish (twice: one attachment) → node completes
 * the attachment → online expand → snapshot of the in-use volume → unpublish → offline expand →
 * restore → clone → retype (modify) → delete snapshot with dependents (refused on rbd only) → delete all.
 * Ends by asserting nothing of the run is left in the lab.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { META } from '../../../src/csi/controller/index.ts';
import { Code, CsiError } from '../../../src/csi/errors.ts';
import {
  closeLab,
  createReq,
  ctx,
  GiB,
  type Lab,
  type Mode,
  openLab,
  pubReq,
  rand,
  settleLeftovers,
  skipReason,
  TOPOLOGY_KEY,
} from './lab.ts';

const skip = await skipReason();

for (const mode of ['keystone', 'noauth'] as Mode[]) {
  describe(`controller lifecycle (${mode})`, { skip }, () => {
    let lab: Lab;
    before(async () => {
      lab = await openLab(mode);
    });
    after(() => closeLab(lab));

    for (const backend of ['fake', 'rbd', 'tgt']) {
      it(`${backend}: create → publish → expand → snapshot → restore → clone → modify → delete`, async () => {
        const { svc, cinder, nodes } = lab;
        const node = nodes[0] as string;
        const name = `ctl-${backend}-${rand()}`;
        const created = await svc.CreateVolume(
          createReq(name, {
            parameters: {
              type: backend,
              'csi.storage.k8s.io/pvc/name': 'data',
              'csi.storage.k8s.io/pvc/namespace': 'ctl',
            },
            accessibility_requirements: {
              requisite: [{ segments: { [TOPOLOGY_KEY]: 'nova' } }],
              preferred: [],
            },
          }),
          ctx(),
        );
        const id = created.volume?.volume_id ?? '';
        assert.deepEqual(created.volume?.accessible_topology, [{ segments: { [TOPOLOGY_KEY]: 'nova' } }]);
        assert.equal(created.volume?.capacity_bytes, String(GiB));
        let v = await cinder.getVolume(id);
        assert.equal(v.status, 'available');
        assert.equal(v.volume_type, backend);
        assert.equal(v.metadata[META.csiName], name);
        assert.equal(v.metadata['csi.storage.k8s.io/pvc/name'], 'data');

        // publish twice → one attachment; publish_context without secrets
        const p1 = await svc.ControllerPublishVolume(pubReq(id, node), ctx());
        const p2 = await svc.ControllerPublishVolume(pubReq(id, node), ctx());
        const attId = p1.publish_context?.['attachment_id'] ?? '';
        assert.equal(p2.publish_context?.['attachment_id'], attId);
        assert.equal((await cinder.listAttachments({ volume_id: id })).length, 1);
        const att = await cinder.getAttachment(attId);
        const info = (att.connection_info ?? {}) as Record<string, unknown>;
        assert.equal(p1.publish_context?.['driver_volume_type'], info['driver_volume_type']);
        const published = JSON.stringify(p1.publish_context);
        for (const k of [
          'auth_password',
          'auth_username',
          'secret_uuid',
          'keyring',
          'discovery_auth_password',
        ]) {
          const secret = info[k];
          if (typeof secret === 'string' && secret.length > 0) {
            assert.ok(!published.includes(secret), `publish_context leaks ${k}`);
          }
        }
        if (backend === 'rbd') assert.match(p1.publish_context?.['name'] ?? '', /^volumes\/volume-/);
        if (backend === 'tgt') assert.equal(p1.publish_context?.['target_portal'], '127.0.0.1:3260');

        // the node completes the attachment (what NodeStageVolume does) → in-use, published node listed
        await cinder.completeAttachment(attId);
        const got = await svc.ControllerGetVolume({ volume_id: id }, ctx());
        assert.deepEqual(got.status?.published_node_ids, [node]);
        assert.equal(got.status?.volume_condition?.abnormal, false);

        // online expand (in-use) and a snapshot of the in-use volume (force)
        const grown = await svc.ControllerExpandVolume(
          {
            volume_id: id,
            capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
            secrets: {},
            volume_capability: pubReq(id, node).volume_capability,
          },
          ctx(),
        );
        assert.deepEqual(grown, { capacity_bytes: String(2 * GiB), node_expansion_required: true });
        v = await cinder.getVolume(id);
        assert.equal(v.size, 2);
        assert.equal(v.status, 'in-use');
        const snap = await svc.CreateSnapshot(
          { name: `${name}-snap`, source_volume_id: id, secrets: {}, parameters: {} },
          ctx(),
        );
        assert.equal(snap.snapshot?.ready_to_use, true);
        const snapId = snap.snapshot?.snapshot_id ?? '';

        // unpublish → attachment gone, volume available; again → still fine
        await svc.ControllerUnpublishVolume({ volume_id: id, node_id: node, secrets: {} }, ctx());
        await svc.ControllerUnpublishVolume({ volume_id: id, node_id: node, secrets: {} }, ctx());
        assert.equal((await cinder.listAttachments({ volume_id: id })).length, 0);
        v = await cinder.getVolume(id);
        assert.equal(v.status, 'available');
        assert.deepEqual(
          Object.keys(v.metadata).filter((k) => k.startsWith(META.attachmentPrefix)),
          [],
        );

        // offline expand, block volume: no node expansion
        const grown2 = await svc.ControllerExpandVolume(
          {
            volume_id: id,
            capacity_range: { required_bytes: String(3 * GiB), limit_bytes: '0' },
            secrets: {},
            volume_capability: {
              block: {},
              access_mode: { mode: 'SINGLE_NODE_WRITER' },
              access_type: 'block',
            },
          },
          ctx(),
        );
        assert.deepEqual(grown2, { capacity_bytes: String(3 * GiB), node_expansion_required: false });

        // restore from the snapshot and clone the volume
        const restored = await svc.CreateVolume(
          createReq(`${name}-restore`, {
            parameters: { type: backend },
            volume_content_source: { snapshot: { snapshot_id: snapId }, type: 'snapshot' },
          }),
          ctx(),
        );
        assert.equal(restored.volume?.capacity_bytes, String(2 * GiB), 'at least the snapshot size');
        assert.deepEqual(restored.volume?.content_source, { snapshot: { snapshot_id: snapId } });
        const clone = await svc.CreateVolume(
          createReq(`${name}-clone`, {
            parameters: { type: backend },
            volume_content_source: { volume: { volume_id: id }, type: 'volume' },
          }),
          ctx(),
        );
        assert.equal(clone.volume?.capacity_bytes, String(3 * GiB));

        // modify: retype to a second type of the same backend
        const other = await lab.createType({ volume_backend_name: backend });
        await svc.ControllerModifyVolume(
          { volume_id: id, secrets: {}, mutable_parameters: { type: other } },
          ctx(),
        );
        assert.equal((await cinder.getVolume(id)).volume_type, other);

        // the volume with a snapshot cannot be deleted
        const busy = await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx()).catch((e) => e);
        assert.ok(busy instanceof CsiError && busy.code === Code.FAILED_PRECONDITION, String(busy));
        // A snapshot with a volume made from it: Cinder decides (docs/operations.md). RBD clones
        // depend on it (refused, naming the volume); fake and tgt restore independent copies.
        const del = await svc.DeleteSnapshot({ snapshot_id: snapId, secrets: {} }, ctx()).catch((e) => e);
        if (backend === 'rbd') {
          assert.ok(del instanceof CsiError && del.code === Code.FAILED_PRECONDITION, String(del));
          assert.match(del.message, /Snapshot is busy/);
          assert.match(del.message, new RegExp(restored.volume?.volume_id ?? 'x'));
          assert.equal((await cinder.getSnapshot(snapId)).status, 'available');
        } else {
          assert.deepEqual(del, {});
          await assert.rejects(
            cinder.getSnapshot(snapId),
            (e: { notFound?: boolean }) => e.notFound === true,
          );
          assert.equal((await cinder.getVolume(restored.volume?.volume_id ?? '')).status, 'available');
        }

        for (const vid of [restored.volume?.volume_id, clone.volume?.volume_id]) {
          await svc.DeleteVolume({ volume_id: vid ?? '', secrets: {} }, ctx());
        }
        await svc.DeleteSnapshot({ snapshot_id: snapId, secrets: {} }, ctx());
        await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
        await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
        await assert.rejects(cinder.getVolume(id), (e: { notFound?: boolean }) => e.notFound === true);
      });
    }

    it('leaves nothing behind', async () => {
      assert.deepEqual(await settleLeftovers(lab), []);
    });
  });
}
