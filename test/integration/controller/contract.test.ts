/**
 * Parts of the CSI error contract that need real Cinder behaviour (issue 11 items 13 and 10), on
 * the lab: a real multiattach volume type (created here on the tgt backend, whose driver reports
 * multiattach, and deleted at the end) and a retype that would need a migration between backends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Code } from '../../../src/csi/errors.ts';
import { rejectsWith } from '../../support/csi-errors.ts';
import {
  closeLab,
  createReq,
  ctx,
  type Lab,
  mountCap,
  openLab,
  pubReq,
  rand,
  settleLeftovers,
  skipReason,
} from './lab.ts';

const skip = await skipReason();

const blockCap = (mode: 'MULTI_NODE_MULTI_WRITER' | 'MULTI_NODE_SINGLE_WRITER') => ({
  block: {},
  access_mode: { mode },
  access_type: 'block' as const,
});

describe('controller contract on the lab (keystone)', { skip }, () => {
  let lab: Lab;
  let multi: string;
  before(async () => {
    lab = await openLab('keystone');
    multi = await lab.createType({ multiattach: '<is> True', volume_backend_name: 'tgt' });
  });
  after(() => closeLab(lab));

  it('multi-node writers with mount access are refused in CreateVolume, Validate and Publish with the node reason; block is fine', async () => {
    const [a, b] = lab.nodes as [string, string];
    const { svc, cinder } = lab;
    const reason = /needs block access: a ext4 filesystem cannot be written from several nodes/;
    for (const mode of ['MULTI_NODE_MULTI_WRITER', 'MULTI_NODE_SINGLE_WRITER'] as const) {
      await rejectsWith(
        svc.CreateVolume(
          createReq(`ctl-mn-${rand()}`, {
            parameters: { type: multi },
            volume_capabilities: [mountCap(mode)],
          }),
          ctx(),
        ),
        Code.INVALID_ARGUMENT,
        reason,
      );
    }
    const created = await svc.CreateVolume(
      createReq(`ctl-mn-${rand()}`, {
        parameters: { type: multi },
        volume_capabilities: [blockCap('MULTI_NODE_MULTI_WRITER')],
      }),
      ctx(),
    );
    const id = created.volume?.volume_id ?? '';
    assert.equal((await cinder.getVolume(id)).multiattach, true);

    const validate = (caps: unknown[]) =>
      svc.ValidateVolumeCapabilities(
        {
          volume_id: id,
          volume_context: {},
          volume_capabilities: caps as never,
          parameters: {},
          mutable_parameters: {},
          secrets: {},
        },
        ctx(),
      );
    for (const mode of ['MULTI_NODE_MULTI_WRITER', 'MULTI_NODE_SINGLE_WRITER'] as const) {
      const no = await validate([mountCap(mode)]);
      assert.equal(no.confirmed, undefined);
      assert.match(no.message ?? '', reason);
      await rejectsWith(
        svc.ControllerPublishVolume({ ...pubReq(id, a), volume_capability: mountCap(mode) }, ctx()),
        Code.INVALID_ARGUMENT,
        reason,
      );
    }
    assert.deepEqual(await cinder.listAttachments({ volume_id: id }), [], 'nothing attached');
    assert.ok(
      (await validate([blockCap('MULTI_NODE_MULTI_WRITER'), mountCap('MULTI_NODE_READER_ONLY')])).confirmed,
    );

    // block access really publishes to two nodes (the second once the first is complete)
    const pa = await svc.ControllerPublishVolume(
      { ...pubReq(id, a), volume_capability: blockCap('MULTI_NODE_MULTI_WRITER') },
      ctx(),
    );
    await cinder.completeAttachment(pa.publish_context?.['attachment_id'] ?? '');
    await svc.ControllerPublishVolume(
      { ...pubReq(id, b), volume_capability: blockCap('MULTI_NODE_MULTI_WRITER') },
      ctx(),
    );
    assert.equal((await cinder.listAttachments({ volume_id: id })).length, 2);
    for (const n of [a, b])
      await svc.ControllerUnpublishVolume({ volume_id: id, node_id: n, secrets: {} }, ctx());
    await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
  });

  it('a retype that needs a migration while migrationPolicy is never → INVALID_ARGUMENT (infeasible)', async () => {
    const { svc, cinder } = lab;
    const created = await svc.CreateVolume(
      createReq(`ctl-rt-${rand()}`, { parameters: { type: 'fake' } }),
      ctx(),
    );
    const id = created.volume?.volume_id ?? '';
    await rejectsWith(
      svc.ControllerModifyVolume({ volume_id: id, secrets: {}, mutable_parameters: { type: 'tgt' } }, ctx()),
      Code.INVALID_ARGUMENT,
      /migrationPolicy is never/,
    );
    const v = await cinder.getVolume(id);
    assert.equal(v.volume_type, 'fake');
    assert.equal(v.status, 'available');
    await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
  });

  it('leaves nothing behind', async () => {
    assert.deepEqual(await settleLeftovers(lab), []);
  });
});
