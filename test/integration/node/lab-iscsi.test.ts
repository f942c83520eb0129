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
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNodeService, type NodeServiceImpl } from '../../../src/csi/node/index.ts';
import { connectorFor } from '../../../src/host/connector-factory.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { type Harness, harness, iscsiSkipReason } from '../../doubles/harness.ts';
import {
  cinder,
  cleanup,
  createAttachment,
  createVolume,
  type LabSession,
  labLogin,
  waitVolume,
} from '../../doubles/lab-cinder.ts';
import { type LabSession as ClientSession, labSession } from '../openstack/cinder-lab-session.ts';
import { ctx, mountCap, sh } from './helpers.ts';

const skip = await iscsiSkipReason();
const PREFIX = `nodesvc-${randomBytes(3).toString('hex')}`;
const GiB = 1024 ** 3;
const CONNECTOR = {
  initiator: 'iqn.2004-10.org.cinder-csi:nodesvc-test',
  ip: '127.0.0.1',
  host: PREFIX,
  multipath: false,
  platform: 'x86_64',
  os_type: 'linux2',
};

describe('node service on the lab tgt backend (real CinderClient, iscsiadm double)', { skip }, () => {
  let lab: LabSession;
  let client: ClientSession;
  let h: Harness;
  let dir: string;
  let svc: NodeServiceImpl;
  const volumes: { id: string; attachments: string[] }[] = [];
  const snapshots: string[] = [];

  before(async () => {
    lab = await labLogin();
    client = await labSession('keystone');
    if (!client.session) throw new Error(client.reason);
    h = harness(PREFIX);
    dir = await mkdtemp(path.join(tmpdir(), `${PREFIX}-`));
    svc = createNodeService({
      nodeId: PREFIX,
      cinder: new CinderClient({ session: client.session, logger: h.deps.logger }),
      connectors: (info) => connectorFor(info, { ...h.deps, iscsi: { deviceWaitMs: 5000, pollMs: 50 } }),
      executor: h.deps.executor,
      paths: h.deps.paths,
      stateDir: path.join(dir, 'state'),
      kubeletRoot: path.join(dir, 'kubelet'),
      logger: h.deps.logger,
    });
  });

  after(async () => {
    // Unmount anything a failed assertion left behind, release the doubles' loop devices, then
    // delete our Cinder resources (clones before snapshots before origins).
    const mounts = sh('findmnt', ['-rn', '-o', 'TARGET'])
      .split('\n')
      .filter((m) => dir && m.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) sh('umount', ['-l', m]);
    h?.doubles.teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
    for (const v of volumes.slice(1).reverse()) {
      await cleanup(lab, v.id, v.attachments);
      await waitGone(`/volumes/${v.id}`);
    }
    for (const s of snapshots) {
      await cinder(lab, 'DELETE', `/snapshots/${s}`).catch(() => undefined);
      await waitGone(`/snapshots/${s}`);
    }
    if (volumes[0]) await cleanup(lab, volumes[0].id, volumes[0].attachments);
    await client?.close();
  });

  async function waitGone(p: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try {
        await cinder(lab, 'GET', p);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  /** What ControllerPublishVolume does: an attachment with this node's connector. */
  async function publish(volumeId: string): Promise<string> {
    const a = await createAttachment(lab, volumeId, CONNECTOR);
    volumes.find((v) => v.id === volumeId)?.attachments.push(a.id);
    return a.id;
  }

  async function unpublish(volumeId: string, attachmentId: string): Promise<void> {
    await cinder(lab, 'DELETE', `/attachments/${attachmentId}`);
    await waitVolume(lab, volumeId, ['available']);
  }

  const paths = (id: string) => ({
    staging: path.join(dir, 'kubelet/plugins/kubernetes.io/csi/cinder.csi.openstack.org', id, 'globalmount'),
    target: path.join(dir, 'kubelet/pods/p1/volumes/kubernetes.io~csi', id, 'mount'),
  });
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

  test('write, unstage, snapshot, clone, stage the clone: files byte for byte; online extend grows xfs', async () => {
    const origin = await createVolume(lab, `${PREFIX}-origin`, 'tgt');
    volumes.push({ id: origin, attachments: [] });
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
    await unpublish(origin, att1);

    // Snapshot in Cinder, then a volume from it.
    const { snapshot } = await cinder<{ snapshot: { id: string } }>(lab, 'POST', '/snapshots', {
      snapshot: { volume_id: origin, name: `${PREFIX}-snap` },
    });
    snapshots.push(snapshot.id);
    for (let i = 0; ; i++) {
      const s = await cinder<{ snapshot: { status: string } }>(lab, 'GET', `/snapshots/${snapshot.id}`);
      if (s.snapshot.status === 'available') break;
      assert.ok(!s.snapshot.status.startsWith('error') && i < 200, `snapshot ${s.snapshot.status}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const { volume } = await cinder<{ volume: { id: string } }>(lab, 'POST', '/volumes', {
      volume: { name: `${PREFIX}-clone`, size: 1, volume_type: 'tgt', snapshot_id: snapshot.id },
    });
    volumes.push({ id: volume.id, attachments: [] });
    await waitVolume(lab, volume.id, ['available'], 120_000);
    const clone = volume.id;

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
    await unpublish(clone, att2);
    await unpublish(origin, att3);
    assert.deepEqual(await svc.stateStore.list(), []);
  });
});
