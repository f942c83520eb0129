/**
 * End to end on the lab's real Cinder (tgt backend): the node service with the production iSCSI
 * connector and the real CinderClient. This machine has no kernel iSCSI initiator, so iscsiadm and
 * the sysfs side are the host layer's tool doubles (test/doubles): login does a real CHAP login to
 * tgtd and exposes the volume's real sparse file as a loop device. Everything else is real:
 * attachment read + os-complete through CinderClient, blkid/mkfs.xfs/mount/xfs_growfs, snapshots.
 *
 * Data integrity: stage+publish a tgt volume, write files, unpublish/unstage, snapshot it in
 * Cinder, create a volume from the snapshot, stage it: the files are there byte for byte (and,
 * xfs with nouuid, the clone mounts next to its origin). Then an online extend in Cinder followed
 * by NodeExpandVolume grows the filesystem.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { iscsiSkipReason } from '../../doubles/harness.ts';
import { cinder, labConnector, waitVolume } from '../../doubles/lab-cinder.ts';
import { ctx, mountCap } from './helpers.ts';
import { attach, detach, kubeletPaths, labNodeSuite, labVolume, snapshotAndClone } from './lab-node.ts';

const skip = await iscsiSkipReason();
const PREFIX = `nodesvc-${randomBytes(3).toString('hex')}`;
const GiB = 1024 ** 3;
const CONNECTOR = labConnector(PREFIX, 'iqn.2004-10.org.cinder-csi:nodesvc-test');

describe('node service on the lab tgt backend (real CinderClient, iscsiadm double)', { skip }, () => {
  const n = labNodeSuite(PREFIX, { connectorDeps: () => ({ iscsi: { deviceWaitMs: 5000, pollMs: 50 } }) });

  /** What ControllerPublishVolume does: an attachment with this node's connector. */
  async function publish(volumeId: string): Promise<string> {
    return (await attach(n, volumeId, CONNECTOR)).id;
  }

  const paths = (id: string) => kubeletPaths(n, id);
  const stageReq = (id: string, attachmentId: string) => ({
    volume_id: id,
    publish_context: { attachment_id: attachmentId, driver_volume_type: 'iscsi' },
    staging_target_path: paths(id).staging,
    volume_capability: mountCap('xfs') as never,
    secrets: {},
    volume_context: {},
  });
  const publishReq = (id: string, attachmentId: string) => ({
    ...stageReq(id, attachmentId),
    target_path: paths(id).target,
    readonly: false,
  });

  test('write, unstage, snapshot, clone, stage the clone: files byte for byte; online extend grows xfs', (t) =>
    n.work.run(t, async () => {
      const { lab, svc, h } = n;
      const origin = await labVolume(n, `${PREFIX}-origin`, 'tgt');
      const att1 = await publish(origin);

      await svc.NodeStageVolume(stageReq(origin, att1), ctx());
      assert.equal(
        (await waitVolume(lab, origin, ['in-use'], 10_000)).status,
        'in-use',
        'os-complete was sent',
      );
      await svc.NodePublishVolume(publishReq(origin, att1), ctx());
      const payload = randomBytes(256 * 1024);
      await writeFile(path.join(paths(origin).target, 'payload.bin'), payload);
      await writeFile(path.join(paths(origin).target, 'note.txt'), `written by ${PREFIX}\n`);
      await svc.NodeUnpublishVolume({ volume_id: origin, target_path: paths(origin).target }, ctx());
      await svc.NodeUnstageVolume({ volume_id: origin, staging_target_path: paths(origin).staging }, ctx());

      // The state file held no CHAP secret, and no log line did either.
      const conn = (
        await cinder<{ attachment: { connection_info: Record<string, string> } }>(
          lab,
          'GET',
          `/attachments/${att1}`,
        )
      ).attachment.connection_info;
      assert.equal(conn.auth_method, 'CHAP');
      const logs = h.logLines.join('');
      assert.ok(!logs.includes(conn.auth_password as string), 'a log line holds the CHAP password');
      await detach(n, origin, att1);

      // Snapshot in Cinder, then a volume from it.
      const clone = await snapshotAndClone(n, origin, PREFIX, 'tgt');

      // Origin and clone staged side by side: same xfs UUID, mounted thanks to nouuid.
      const att2 = await publish(clone);
      const att3 = await publish(origin);
      await svc.NodeStageVolume(stageReq(clone, att2), ctx());
      await svc.NodeStageVolume(stageReq(origin, att3), ctx());
      await svc.NodePublishVolume(publishReq(clone, att2), ctx());
      const t = paths(clone).target;
      assert.deepEqual(await readFile(path.join(t, 'payload.bin')), payload, 'payload byte for byte');
      assert.equal(await readFile(path.join(t, 'note.txt'), 'utf8'), `written by ${PREFIX}\n`);

      // Online extend in Cinder (what ControllerExpandVolume does), then NodeExpandVolume.
      const before = await svc.NodeGetVolumeStats(
        { volume_id: clone, volume_path: t, staging_target_path: '' },
        ctx(),
      );
      await cinder(lab, 'POST', `/volumes/${clone}/action`, { 'os-extend': { new_size: 2 } });
      await waitVolume(lab, clone, ['in-use'], 60_000);
      const res = await svc.NodeExpandVolume(
        {
          volume_id: clone,
          volume_path: t,
          capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
          staging_target_path: paths(clone).staging,
          volume_capability: mountCap('xfs') as never,
          secrets: {},
        },
        ctx(),
      );
      assert.equal(String(res.capacity_bytes), String(2 * GiB));
      const afterStats = await svc.NodeGetVolumeStats(
        { volume_id: clone, volume_path: t, staging_target_path: '' },
        ctx(),
      );
      const total = (s: typeof before) => Number(s.usage?.find((u) => u.unit === 'BYTES')?.total);
      assert.ok(
        total(afterStats) > total(before) + 0.9 * GiB,
        `xfs grew: ${total(before)} -> ${total(afterStats)}`,
      );
      assert.equal(afterStats.volume_condition?.abnormal, false);
      assert.deepEqual(await readFile(path.join(t, 'payload.bin')), payload, 'data survives the extend');

      await svc.NodeUnpublishVolume({ volume_id: clone, target_path: t }, ctx());
      await svc.NodeUnstageVolume({ volume_id: clone, staging_target_path: paths(clone).staging }, ctx());
      await svc.NodeUnstageVolume({ volume_id: origin, staging_target_path: paths(origin).staging }, ctx());
      await detach(n, clone, att2);
      await detach(n, origin, att3);
      assert.deepEqual(await svc.stateStore.list(), []);
    }));
});
