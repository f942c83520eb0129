/**
 * The node service's life cycle against real loop devices, real mkfs/blkid and real mounts (root):
 * ext4, xfs and block access end to end, every RPC idempotent, no reformat over data, and a plugin
 * restart between stage and unstage. The connector is LoopConnector (a stand-in for iSCSI/RBD,
 * which have their own tests against the iscsiadm/rbd doubles); Cinder is a double of the two
 * attachment calls the node makes. Everything is cleaned up in `finally` (withWorld).
 */
import assert from 'node:assert/strict';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { blockCap, CHAP_PASSWORD, ctx, loopsOf, MiB, mountCap, req, rootSkipReason } from './helpers.ts';
import { blkidType, findmnt, rejectsWith, withWorld } from './node-kit.ts';

describe('node service life cycle on loop devices', { skip: rootSkipReason() }, () => {
  test('ext4: stage, publish, write, stats, unpublish, unstage; every RPC idempotent', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(64);
      const cap = mountCap('ext4');
      const target = v.target();

      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      const dev = loopsOf(v.file)[0] as string;
      assert.ok(dev, 'the connector attached a loop device');
      assert.equal(blkidType(dev), 'ext4', 'a blank device was formatted');
      assert.equal((await findmnt(v.staging))?.source, dev);
      assert.deepEqual(w.cinder.completed, [v.attachmentId], 'the attachment was marked complete');

      // Stage again: nothing new happens (no second connect, no second complete).
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      assert.equal(w.connector.calls.filter((c) => c.startsWith('connect')).length, 1);
      assert.deepEqual(w.cinder.completed, [v.attachmentId]);

      // The state file: 0600, no secrets.
      const stateFile = path.join(w.stateDir, `${v.id}.json`);
      assert.equal((await stat(stateFile)).mode & 0o777, 0o600);
      assert.equal((await stat(w.stateDir)).mode & 0o777, 0o700);
      const stateText = await readFile(stateFile, 'utf8');
      assert.ok(!stateText.includes(CHAP_PASSWORD), 'no CHAP secret in the state file');
      assert.equal(JSON.parse(stateText).device.devicePath, dev);

      await svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      const m = await findmnt(target);
      assert.ok(m, 'target is mounted');
      assert.match(m.options, /(^|,)rw(,|$)/);
      await writeFile(path.join(target, 'hello.txt'), 'hello from a pod\n');
      assert.equal(await readFile(path.join(v.staging, 'hello.txt'), 'utf8'), 'hello from a pod\n');

      const stats = await svc.NodeGetVolumeStats(req.stats(v, target), ctx());
      const bytes = stats.usage?.find((u) => u.unit === 'BYTES');
      const inodes = stats.usage?.find((u) => u.unit === 'INODES');
      assert.ok(bytes && inodes);
      const total = Number(bytes.total);
      assert.ok(total > 50 * MiB && total <= 64 * MiB, `total ${total}`);
      assert.ok(Number(bytes.used) > 0 && Number(bytes.available) > 0 && Number(bytes.available) < total);
      assert.ok(Number(inodes.total) > 1000 && Number(inodes.used) >= 12);
      assert.equal(stats.volume_condition?.abnormal, false);

      await svc.NodeUnpublishVolume(req.unpublish(v, target), ctx());
      assert.equal(await findmnt(target), undefined);
      await assert.rejects(stat(target), { code: 'ENOENT' }, 'the target directory is removed');
      await svc.NodeUnpublishVolume(req.unpublish(v, target), ctx());

      await svc.NodeUnstageVolume(req.unstage(v), ctx());
      assert.equal(await findmnt(v.staging), undefined);
      assert.deepEqual(loopsOf(v.file), [], 'the device was disconnected');
      await assert.rejects(stat(stateFile), { code: 'ENOENT' });
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
      assert.equal(w.connector.calls.filter((c) => c.startsWith('disconnect')).length, 1);

      // The data survives: stage again (no reformat) and read it back.
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      assert.equal(await readFile(path.join(v.staging, 'hello.txt'), 'utf8'), 'hello from a pod\n');
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
    });
  });

  test('xfs: mounted with nouuid; read-only publish refuses writes (EROFS)', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(320);
      const cap = mountCap('xfs');
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      const dev = loopsOf(v.file)[0] as string;
      assert.equal(blkidType(dev), 'xfs');
      assert.match((await findmnt(v.staging))?.options ?? '', /nouuid/);

      const rw = v.target('writer');
      const ro = v.target('reader');
      await svc.NodePublishVolume(req.publish(v, cap, rw), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, ro, true), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, ro, true), ctx());
      assert.match((await findmnt(ro))?.options ?? '', /(^|,)ro(,|$)/);
      await writeFile(path.join(rw, 'a.txt'), 'written');
      assert.equal(await readFile(path.join(ro, 'a.txt'), 'utf8'), 'written');
      await assert.rejects(writeFile(path.join(ro, 'b.txt'), 'x'), { code: 'EROFS' });

      // Same target, other read-only flag: incompatible → ALREADY_EXISTS.
      await assert.rejects(
        svc.NodePublishVolume(req.publish(v, cap, ro, false), ctx()),
        rejectsWith(status.ALREADY_EXISTS),
      );

      await svc.NodeUnpublishVolume(req.unpublish(v, rw), ctx());
      await svc.NodeUnpublishVolume(req.unpublish(v, ro), ctx());
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
      assert.deepEqual(loopsOf(v.file), []);
    });
  });

  test('block: the device is bound onto a file; data goes straight to the volume', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(16);
      const cap = blockCap();
      const target = v.target();
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      const dev = loopsOf(v.file)[0] as string;
      assert.equal(await findmnt(v.staging), undefined, 'nothing is mounted at staging for block');
      await svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      assert.ok((await stat(target)).isBlockDevice(), 'the target is the device');

      const payload = Buffer.from('raw block payload 0123456789');
      const fh = await open(target, 'r+');
      try {
        await fh.write(payload, 0, payload.length, MiB);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const stats = await svc.NodeGetVolumeStats(req.stats(v, target), ctx());
      assert.deepEqual(
        stats.usage?.map((u) => [u.unit, String(u.total)]),
        [['BYTES', String(16 * MiB)]],
      );
      assert.equal(stats.volume_condition?.abnormal, false);
      assert.equal(blkidType(dev), '', 'no filesystem was created');

      await svc.NodeUnpublishVolume(req.unpublish(v, target), ctx());
      await assert.rejects(stat(target), { code: 'ENOENT' });
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
      assert.deepEqual(loopsOf(v.file), []);
      const back = Buffer.alloc(payload.length);
      const file = await open(v.file, 'r');
      try {
        await file.read(back, 0, back.length, MiB);
      } finally {
        await file.close();
      }
      assert.deepEqual(back, payload, 'bytes written through the target are on the volume');
    });
  });

  test('a device holding ext4 is never reformatted as xfs; the data stays intact', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(320);
      await svc.NodeStageVolume(req.stage(v, mountCap('ext4')), ctx());
      await writeFile(path.join(v.staging, 'keep.txt'), 'precious');
      await svc.NodeUnstageVolume(req.unstage(v), ctx());

      await assert.rejects(
        svc.NodeStageVolume(req.stage(v, mountCap('xfs')), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /already holds ext4.*refusing to format/),
      );
      assert.deepEqual(loopsOf(v.file), [], 'the failed stage disconnected again');
      assert.equal(blkidType(v.file), 'ext4');

      await svc.NodeStageVolume(req.stage(v, mountCap('ext4')), ctx());
      assert.equal(await readFile(path.join(v.staging, 'keep.txt'), 'utf8'), 'precious');
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
    });
  });

  test('plugin restart between stage and unstage: a new instance unstages from the state file', async () => {
    await withWorld(async (w) => {
      const v = await w.volume(64);
      const cap = mountCap('ext4');
      const target = v.target();
      const first = w.service();
      await first.NodeStageVolume(req.stage(v, cap), ctx());
      await first.NodePublishVolume(req.publish(v, cap, target), ctx());

      const second = w.service(); // fresh instance: no memory of the first
      const stats = await second.NodeGetVolumeStats(req.stats(v, target), ctx());
      assert.equal(stats.volume_condition?.abnormal, false);
      await assert.rejects(
        second.NodeUnstageVolume(req.unstage(v), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /still published/),
      );
      await second.NodeUnpublishVolume(req.unpublish(v, target), ctx());
      await second.NodeUnstageVolume(req.unstage(v), ctx());
      assert.equal(await findmnt(v.staging), undefined);
      assert.deepEqual(loopsOf(v.file), []);
      assert.deepEqual(await second.stateStore.list(), []);
    });
  });
});
