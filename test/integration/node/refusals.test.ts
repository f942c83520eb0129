/**
 * What the node service refuses, on real loop devices (root): publishing what is not staged or
 * onto another mount, a second writer under SINGLE_NODE_SINGLE_WRITER, a call for a volume in
 * flight (ABORTED), paths outside the kubelet root, unknown or missing attachments.
 */
import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ctx, mountCap, req, rootSkipReason, sh, type Vol } from './helpers.ts';
import { rejectsWith, withWorld } from './node-kit.ts';

describe('node service refusals on loop devices', { skip: rootSkipReason() }, () => {
  test('publish: not staged → FAILED_PRECONDITION; target mounted from elsewhere → FAILED_PRECONDITION', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const a = await w.volume(64);
      const b = await w.volume(64);
      const cap = mountCap('ext4');
      await assert.rejects(
        svc.NodePublishVolume(req.publish(a, cap, a.target()), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /not staged/),
      );
      await svc.NodeStageVolume(req.stage(a, cap), ctx());
      await svc.NodeStageVolume(req.stage(b, cap), ctx());
      const shared = a.target('shared');
      await svc.NodePublishVolume(req.publish(b, cap, shared.replace(a.id, b.id)), ctx());
      await svc.NodePublishVolume(req.publish(a, cap, shared), ctx());
      // b's staging mounted onto a's target by someone else: publishing a there must not stack.
      await svc.NodeUnpublishVolume(req.unpublish(a, shared), ctx());
      sh('mkdir', ['-p', shared]);
      sh('mount', ['--bind', b.staging, shared]);
      await assert.rejects(
        svc.NodePublishVolume(req.publish(a, cap, shared), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /another mount/),
      );
      sh('umount', [shared]);
      await svc.NodeUnpublishVolume(req.unpublish(b, shared.replace(a.id, b.id)), ctx());
      await svc.NodeUnstageVolume(req.unstage(a), ctx());
      await svc.NodeUnstageVolume(req.unstage(b), ctx());
    });
  });

  test('SINGLE_NODE_SINGLE_WRITER: one read-write publish at a time', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(64);
      const cap = mountCap('ext4', 'SINGLE_NODE_SINGLE_WRITER');
      await svc.NodeStageVolume(req.stage(v, cap), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, v.target('a')), ctx());
      await assert.rejects(
        svc.NodePublishVolume(req.publish(v, cap, v.target('b')), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /SINGLE_NODE_SINGLE_WRITER/),
      );
      await svc.NodePublishVolume(req.publish(v, cap, v.target('c'), true), ctx());
      await svc.NodeUnpublishVolume(req.unpublish(v, v.target('a')), ctx());
      await svc.NodePublishVolume(req.publish(v, cap, v.target('b')), ctx());
      for (const p of ['b', 'c']) await svc.NodeUnpublishVolume(req.unpublish(v, v.target(p)), ctx());
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
    });
  });

  test('a second call for a volume in flight answers ABORTED', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(64);
      const cap = mountCap('ext4');
      let open!: () => void;
      w.connector.gate = new Promise<void>((r) => {
        open = r;
      });
      const first = svc.NodeStageVolume(req.stage(v, cap), ctx());
      try {
        while (w.connector.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
        await assert.rejects(svc.NodeStageVolume(req.stage(v, cap), ctx()), rejectsWith(status.ABORTED));
        await assert.rejects(svc.NodeUnstageVolume(req.unstage(v), ctx()), rejectsWith(status.ABORTED));
      } finally {
        open(); // never leave the first stage hanging, even when an assertion failed
        await first;
        w.connector.gate = undefined;
      }
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
    });
  });

  test('paths outside the kubelet root are refused, also through a symlink', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(16);
      const cap = mountCap('ext4');
      const outside: Vol = { ...v, staging: path.join(w.dir, 'elsewhere', 'globalmount') };
      await assert.rejects(
        svc.NodeStageVolume(req.stage(outside, cap), ctx()),
        rejectsWith(status.INVALID_ARGUMENT, /outside the kubelet root/),
      );
      const dotdot: Vol = { ...v, staging: `${w.kubeletRoot}/../escape` };
      await assert.rejects(
        svc.NodeStageVolume(req.stage(dotdot, cap), ctx()),
        rejectsWith(status.INVALID_ARGUMENT),
      );
      await symlink(w.dir, path.join(w.kubeletRoot, 'link'));
      const viaLink: Vol = { ...v, staging: path.join(w.kubeletRoot, 'link', 'x') };
      await assert.rejects(
        svc.NodeStageVolume(req.stage(viaLink, cap), ctx()),
        rejectsWith(status.INVALID_ARGUMENT, /resolves to/),
      );
      await assert.rejects(
        svc.NodePublishVolume(req.publish(v, cap, '/etc/evil'), ctx()),
        rejectsWith(status.INVALID_ARGUMENT, /target_path/),
      );
      assert.deepEqual(w.connector.calls, [], 'nothing was connected');
    });
  });

  test('unknown attachment → NOT_FOUND; missing attachment_id → INVALID_ARGUMENT', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(16);
      const cap = mountCap('ext4');
      await assert.rejects(
        svc.NodeStageVolume(req.stage({ ...v, publishContext: { attachment_id: 'nope' } }, cap), ctx()),
        rejectsWith(status.NOT_FOUND, /Cinder/),
      );
      await assert.rejects(
        svc.NodeStageVolume(req.stage({ ...v, publishContext: {} }, cap), ctx()),
        rejectsWith(status.INVALID_ARGUMENT, /attachment_id/),
      );
    });
  });
});
