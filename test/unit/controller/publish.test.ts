/** ControllerPublish/UnpublishVolume against the in-memory Cinder double (see fake-cinder.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { META, publishContext } from '../../../src/csi/controller/index.ts';
import { Code } from '../../../src/csi/errors.ts';
import { FakeCinder } from './fake-cinder.ts';
import { cap, createReq, ctx, pubReq, rejectsWith, service } from './helpers.ts';

async function setup(opts: { microversion?: string; type?: string } = {}) {
  const cinder = new FakeCinder(opts.microversion ? { microversion: opts.microversion } : {});
  const svc = service(cinder);
  const v = await svc.CreateVolume(
    createReq('p', opts.type ? { parameters: { type: opts.type } } : {}),
    ctx(),
  );
  return { cinder, svc, id: v.volume?.volume_id ?? '' };
}

describe('ControllerPublishVolume', () => {
  it('creates one attachment with the node connector; publishing twice reuses it', async () => {
    const { cinder, svc, id } = await setup();
    const a = await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    const b = await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    assert.equal(cinder.attachments.size, 1);
    assert.equal(a.publish_context?.['attachment_id'], b.publish_context?.['attachment_id']);
    const att = [...cinder.attachments.values()][0];
    assert.equal(att?.connectorHost, 'node-1');
    assert.equal(att?.instance, null, 'no instance_uuid: attachments must stay deletable without Nova');
    assert.equal(cinder.volumes.get(id)?.metadata[`${META.attachmentPrefix}${att?.id}`], 'node-1');
    // After the node completed the attachment it is still found (through host_name).
    await cinder.completeAttachment(att?.id ?? '');
    const c = await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    assert.equal(c.publish_context?.['attachment_id'], att?.id);
    assert.equal(cinder.attachments.size, 1);
  });

  it('publish_context has target fields and never a secret from connection_info', async () => {
    const { svc, id } = await setup();
    const res = await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    const pc = res.publish_context ?? {};
    assert.equal(pc['driver_volume_type'], 'iscsi');
    assert.equal(pc['target_portal'], '127.0.0.1:3260');
    assert.equal(pc['target_lun'], '1');
    assert.match(pc['target_iqn'] ?? '', /^iqn\./);
    const text = JSON.stringify(pc);
    assert.doesNotMatch(text, /SECRET|auth_|password|keyring|CHAP/i);
  });

  it('publishContext keeps only the allow-listed rbd fields', () => {
    const pc = publishContext({
      id: 'att',
      status: 'attached',
      instance: null,
      volume_id: 'v',
      attached_at: null,
      detached_at: null,
      attach_mode: 'rw',
      connection_info: {
        driver_volume_type: 'rbd',
        name: 'volumes/volume-v',
        hosts: ['127.0.0.1'],
        ports: ['6789'],
        cluster_name: 'ceph',
        auth_enabled: true,
        auth_username: 'cinder',
        secret_type: 'ceph',
        secret_uuid: 'a018020c',
        keyring: 'AQD...==',
      },
    });
    assert.deepEqual(pc, {
      attachment_id: 'att',
      driver_volume_type: 'rbd',
      name: 'volumes/volume-v',
      hosts: '["127.0.0.1"]',
      ports: '["6789"]',
      cluster_name: 'ceph',
    });
  });

  it('errors: missing args, unknown volume / node, node without connector, attached elsewhere, mode conflict', async () => {
    const { cinder, svc, id } = await setup();
    await rejectsWith(svc.ControllerPublishVolume(pubReq('', 'node-1'), ctx()), Code.INVALID_ARGUMENT);
    await rejectsWith(svc.ControllerPublishVolume(pubReq(id, ''), ctx()), Code.INVALID_ARGUMENT);
    await rejectsWith(
      svc.ControllerPublishVolume(pubReq(id, 'node-1', { volume_capability: null }), ctx()),
      Code.INVALID_ARGUMENT,
    );
    await rejectsWith(
      svc.ControllerPublishVolume(pubReq('missing', 'node-1'), ctx()),
      Code.NOT_FOUND,
      /volume missing/,
    );
    await rejectsWith(
      svc.ControllerPublishVolume(pubReq(id, 'node-x'), ctx()),
      Code.NOT_FOUND,
      /node node-x/,
    );
    await rejectsWith(
      svc.ControllerPublishVolume(pubReq(id, 'node-bare'), ctx()),
      Code.FAILED_PRECONDITION,
      /no host connector/,
    );
    await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    await rejectsWith(
      svc.ControllerPublishVolume(pubReq(id, 'node-2'), ctx()),
      Code.FAILED_PRECONDITION,
      /attached to node-1/,
    );
    await rejectsWith(
      svc.ControllerPublishVolume(pubReq(id, 'node-1', { readonly: true }), ctx()),
      Code.ALREADY_EXISTS,
      /mode rw/,
    );
    await rejectsWith(
      svc.ControllerPublishVolume(
        pubReq(id, 'node-1', { volume_capability: cap('MULTI_NODE_MULTI_WRITER', 'block') }),
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
      /multiattach/,
    );
    assert.equal(cinder.attachments.size, 1);
  });

  it('read-only publish uses mode ro; needs 3.54', async () => {
    const { cinder, svc, id } = await setup();
    await svc.ControllerPublishVolume(pubReq(id, 'node-1', { readonly: true }), ctx());
    assert.equal([...cinder.attachments.values()][0]?.attach_mode, 'ro');
    const old = await setup({ microversion: '3.50' });
    await rejectsWith(
      old.svc.ControllerPublishVolume(pubReq(old.id, 'node-1', { readonly: true }), ctx()),
      Code.FAILED_PRECONDITION,
      /3\.54/,
    );
    await old.svc.ControllerPublishVolume(pubReq(old.id, 'node-1'), ctx());
    assert.equal([...old.cinder.attachments.values()][0]?.attach_mode, 'rw');
  });

  it('multiattach volumes publish to several nodes', async () => {
    const { cinder, svc, id } = await setup({ type: 'multi' });
    const mm = cap('MULTI_NODE_MULTI_WRITER', 'block');
    const p1 = await svc.ControllerPublishVolume(pubReq(id, 'node-1', { volume_capability: mm }), ctx());
    // Like real Cinder (lab): another host only once the volume is in-use → UNAVAILABLE until then.
    await rejectsWith(
      svc.ControllerPublishVolume(pubReq(id, 'node-2', { volume_capability: mm }), ctx()),
      Code.UNAVAILABLE,
      /complete/,
    );
    await cinder.completeAttachment(p1.publish_context?.['attachment_id'] ?? '');
    await svc.ControllerPublishVolume(pubReq(id, 'node-2', { volume_capability: mm }), ctx());
    assert.equal(cinder.attachments.size, 2);
    const got = await svc.ControllerGetVolume({ volume_id: id }, ctx());
    assert.deepEqual(got.status?.published_node_ids, ['node-1', 'node-2']);
    await svc.ControllerUnpublishVolume({ volume_id: id, node_id: 'node-1', secrets: {} }, ctx());
    assert.equal(cinder.attachments.size, 1);
    const after = await svc.ControllerGetVolume({ volume_id: id }, ctx());
    assert.deepEqual(after.status?.published_node_ids, ['node-2']);
  });

  it('a concurrent publish of the same volume+node gets ABORTED', async () => {
    const { svc, id } = await setup();
    const results = await Promise.allSettled([
      svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx()),
      svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx()),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(rejected?.reason.code, Code.ABORTED);
  });
});

describe('ControllerUnpublishVolume', () => {
  it('deletes the attachment and its record; missing volume / attachment / node → success', async () => {
    const { cinder, svc, id } = await setup();
    const res = await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    await cinder.completeAttachment(res.publish_context?.['attachment_id'] ?? '');
    await svc.ControllerUnpublishVolume({ volume_id: id, node_id: 'node-2', secrets: {} }, ctx());
    assert.equal(cinder.attachments.size, 1);
    await svc.ControllerUnpublishVolume({ volume_id: id, node_id: 'node-1', secrets: {} }, ctx());
    assert.equal(cinder.attachments.size, 0);
    const v = cinder.volumes.get(id);
    assert.equal(v?.status, 'available');
    assert.deepEqual(
      Object.keys(v?.metadata ?? {}).filter((k) => k.startsWith(META.attachmentPrefix)),
      [],
    );
    await svc.ControllerUnpublishVolume({ volume_id: id, node_id: 'node-1', secrets: {} }, ctx());
    await svc.ControllerUnpublishVolume({ volume_id: 'missing', node_id: 'node-1', secrets: {} }, ctx());
    await svc.ControllerUnpublishVolume({ volume_id: id, node_id: 'node-unknown', secrets: {} }, ctx());
  });
});
