/**
 * NodeExpandVolume and NodeGetVolumeStats against real loop devices and filesystems (root):
 * growing ext4/xfs/btrfs online after the backing file grew, block rescans, and the volume
 * condition when the mount, the filesystem or the device goes bad behind the driver's back.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { blockCap, ctx, loopsOf, MiB, mountCap, req, rootSkipReason, sh } from './helpers.ts';
import { noBtrfs, noOnlineExt4Resize, rejectsWith, withWorld } from './node-kit.ts';

describe('node expansion and stats on loop devices', { skip: rootSkipReason() }, () => {
  for (const fsType of ['ext4', 'xfs', 'btrfs'] as const) {
    const why = fsType === 'ext4' ? noOnlineExt4Resize : fsType === 'btrfs' ? noBtrfs : undefined;
    test(`expansion (${fsType}): grow the backing file, rescan, the filesystem grows`, {
      skip: why,
    }, async () => {
      await withWorld(async (w) => {
        const svc = w.service();
        const v = await w.volume(320);
        const cap = mountCap(fsType);
        const target = v.target();
        await svc.NodeStageVolume(req.stage(v, cap), ctx());
        // Idempotent also for btrfs, whose mounts show an anonymous device number in mountinfo.
        await svc.NodeStageVolume(req.stage(v, cap), ctx());
        assert.equal(w.connector.calls.filter((c) => c.startsWith('connect')).length, 1);
        await svc.NodePublishVolume(req.publish(v, cap, target), ctx());
        const first = await svc.NodeGetVolumeStats(req.stats(v, target), ctx());
        assert.equal(first.volume_condition?.abnormal, false, first.volume_condition?.message);
        const before = Number(first.usage?.[0]?.total);

        sh('truncate', ['-s', '400M', v.file]); // what the backend does on extend
        const res = await svc.NodeExpandVolume(req.expand(v, target, 400 * MiB), ctx());
        assert.equal(String(res.capacity_bytes), String(400 * MiB));
        assert.ok(w.connector.calls.some((c) => c.startsWith('rescan')));
        const after = Number((await svc.NodeGetVolumeStats(req.stats(v, target), ctx())).usage?.[0]?.total);
        assert.ok(after > before + 60 * MiB, `filesystem grew from ${before} to ${after}`);

        // Again: nothing left to grow, still success.
        await svc.NodeExpandVolume(req.expand(v, target, 400 * MiB), ctx());
        // Asking for more than the device has → UNAVAILABLE after bounded rescans (retryable).
        await svc.NodeUnpublishVolume(req.unpublish(v, target), ctx());
        await svc.NodeUnstageVolume(req.unstage(v), ctx());
      });
    });
  }

  test('block expansion: rescan only, returns the new device size', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(16);
      const cap = blockCap();
      const target = v.target();
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      sh('truncate', ['-s', '32M', v.file]);
      const res = await svc.NodeExpandVolume(req.expand(v, target, 32 * MiB, cap), ctx());
      assert.equal(String(res.capacity_bytes), String(32 * MiB));
      await svc.NodeUnpublishVolume(req.unpublish(v, target), ctx());
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
    });
  });

  test('stats: abnormal when the mount is gone, the filesystem went read-only, or the device vanished', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(64);
      const cap = mountCap('ext4');
      const target = v.target();
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, target), ctx());

      // Superblock read-only behind our back (what errors=remount-ro does).
      sh('mount', ['-o', 'remount,ro', v.staging]);
      let s = await svc.NodeGetVolumeStats(req.stats(v, target), ctx());
      assert.equal(s.volume_condition?.abnormal, true);
      assert.match(s.volume_condition?.message ?? '', /went read-only/);
      sh('mount', ['-o', 'remount,rw', v.staging]);

      // Lazy unmount of the target behind our back.
      sh('umount', ['-l', target]);
      s = await svc.NodeGetVolumeStats(req.stats(v, target), ctx());
      assert.equal(s.volume_condition?.abnormal, true);
      assert.match(s.volume_condition?.message ?? '', /not mounted/);

      // Missing path → NOT_FOUND.
      await assert.rejects(
        svc.NodeGetVolumeStats(req.stats(v, path.join(w.kubeletRoot, 'nope')), ctx()),
        rejectsWith(status.NOT_FOUND),
      );

      // The device vanished (detached behind our back): the staging mount is lazily dropped.
      sh('umount', ['-l', v.staging]);
      for (const l of loopsOf(v.file)) sh('losetup', ['-d', l]);
      await new Promise((r) => setTimeout(r, 200));
      s = await svc.NodeGetVolumeStats(req.stats(v, v.staging), ctx());
      assert.equal(s.volume_condition?.abnormal, true);
      assert.match(s.volume_condition?.message ?? '', /connection of \/dev\/loop\d+ is down|vanished/);

      await svc.NodeUnpublishVolume(req.unpublish(v, target), ctx());
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
    });
  });
});
