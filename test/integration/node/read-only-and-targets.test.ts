/**
 * Issue 11 on real loop devices, real mkfs and real mounts (root):
 *  - item 13: a MULTI_NODE_READER_ONLY staging writes nothing to the device, even when the
 *    filesystem's journal holds transactions a writer on another node has not checkpointed;
 *  - item 7: unpublish removes only the placeholder the driver created at the target path;
 *  - errno mapping on a real read-only filesystem (EROFS) under the kubelet root.
 *
 * "Another node" is a second node service (own node id and state dir). The shared LUN it would
 * see is a copy of the writer's device image taken while the writer has it mounted: byte for
 * byte what a second host reads from shared storage at that moment, journal included (a copy of
 * a mounted ext4 always carries `needs_recovery`; xfs a dirty log).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../../src/csi/errors.ts';
import { blockCap, ctx, loopsOf, mountCap, req, rootSkipReason, sh, World } from './helpers.ts';

const skip = rootSkipReason();

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const w = await World.create();
  try {
    await fn(w);
  } finally {
    await w.cleanup();
  }
}

function rejectsWith(code: number, pattern?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CsiError, `expected CsiError, got ${String(e).slice(0, 300)}`);
    assert.equal(e.code, code, `code ${e.code} (${e.message})`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

function mountOptions(p: string): string {
  return sh('findmnt', ['-n', '-o', 'OPTIONS', '--mountpoint', p]);
}

/** What tells that the image's journal still needs replaying. */
function journalDirty(fsType: 'ext4' | 'xfs' | 'btrfs', file: string): boolean {
  if (fsType === 'ext4') return /needs_recovery/.test(sh('dumpe2fs', ['-h', file]));
  if (fsType === 'xfs') return /state: <DIRTY>/.test(sh('xfs_logprint', ['-t', file]));
  return /^log_root\s+[1-9]/m.test(sh('btrfs', ['inspect-internal', 'dump-super', file]));
}

const noBtrfs = spawnSync('which', ['mkfs.btrfs']).status === 0 ? undefined : 'mkfs.btrfs is not installed';

describe('read-only stagings and target placeholders on loop devices', { skip }, () => {
  for (const [fsType, sizeMiB] of [
    ['ext4', 64],
    ['xfs', 320],
    ['btrfs', 256],
  ] as const) {
    test(`${fsType}: a MULTI_NODE_READER_ONLY staging does not change a byte of a device with a dirty journal`, {
      skip: fsType === 'btrfs' ? noBtrfs : undefined,
    }, async () => {
      await withWorld(async (w) => {
        const nodeA = w.service({ nodeId: 'node-a' });
        const nodeB = w.service({ nodeId: 'node-b', stateDir: path.join(w.dir, 'state-b') });
        const writer = await w.volume(sizeMiB);
        const shared = await w.volume(sizeMiB); // node B's view of the same LUN

        // Node A stages read-write and writes with fsync: the journal (btrfs: log tree) holds
        // the transactions, not yet checkpointed into the filesystem.
        await nodeA.NodeStageVolume(req.stage(writer, mountCap(fsType)), ctx());
        for (let i = 0; i < 20; i++) {
          const fh = await open(path.join(writer.staging, `file-${i}`), 'w');
          try {
            await fh.write(`data ${i}\n`);
            await fh.sync();
          } finally {
            await fh.close();
          }
        }
        sh('cp', ['--sparse=always', writer.file, shared.file]);
        assert.ok(journalDirty(fsType, shared.file), 'the copied image has a journal to replay');
        const before = await sha256(shared.file);

        // Node B stages it for reading.
        const cap = mountCap(fsType, 'MULTI_NODE_READER_ONLY');
        await nodeB.NodeStageVolume(req.stage(shared, cap), ctx());
        const dev = loopsOf(shared.file)[0] as string;
        const roWhileStaged = sh('blockdev', ['--getro', dev]);
        const opts = mountOptions(shared.staging);
        assert.match(opts, /(^|,)ro(,|$)/);
        if (fsType === 'xfs') assert.match(opts, /norecovery/);
        if (fsType === 'btrfs') assert.match(opts, /nologreplay/);
        await readdir(shared.staging); // it mounted and can be read
        await nodeB.NodeStageVolume(req.stage(shared, cap), ctx()); // idempotent
        const target = shared.target('reader');
        await nodeB.NodePublishVolume(req.publish(shared, cap, target), ctx());
        await assert.rejects(writeFile(path.join(target, 'x'), 'x'), { code: 'EROFS' });
        const stats = await nodeB.NodeGetVolumeStats(req.stats(shared, target), ctx());
        assert.equal(stats.volume_condition?.abnormal, false, stats.volume_condition?.message);

        // Node A keeps writing meanwhile.
        await writeFile(path.join(writer.staging, 'later'), 'still writable');

        await nodeB.NodeUnpublishVolume(req.unpublish(shared, target), ctx());
        await nodeB.NodeUnstageVolume(req.unstage(shared), ctx());
        assert.deepEqual(loopsOf(shared.file), []);
        assert.equal(await sha256(shared.file), before, 'not a byte of the device changed');
        assert.ok(journalDirty(fsType, shared.file), 'the journal was not replayed');
        assert.equal(roWhileStaged, '1', 'the device was read-only in the kernel while staged');
        assert.equal(
          sh('blockdev', ['--getro', dev]),
          '0',
          'the loop device is left writable for its next user',
        );

        await nodeA.NodeUnstageVolume(req.unstage(writer), ctx());
      });
    });
  }

  test('a read-only staging refuses an incompatible read-write re-stage; block access sets the device read-only too', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(16);
      await svc.NodeStageVolume(req.stage(v, blockCap('MULTI_NODE_READER_ONLY')), ctx());
      const dev = loopsOf(v.file)[0] as string;
      assert.equal(sh('blockdev', ['--getro', dev]), '1');
      await assert.rejects(
        svc.NodeStageVolume(req.stage(v, blockCap('MULTI_NODE_MULTI_WRITER')), ctx()),
        rejectsWith(status.ALREADY_EXISTS, /read-only/),
      );
      await svc.NodeUnstageVolume(req.unstage(v), ctx());
      assert.equal(sh('blockdev', ['--getro', dev]), '0');
    });
  });

  test('unpublish removes the directory/file the driver created, and nothing it did not', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const fs = await w.volume(64);
      const blk = await w.volume(16);
      const cap = mountCap('ext4');
      await svc.NodeStageVolume(req.stage(fs, cap), ctx());
      await svc.NodeStageVolume(req.stage(blk, blockCap()), ctx());

      // Created by the driver: removed on unpublish (the spec asks the SP to delete what it made).
      const mine = fs.target('created');
      await svc.NodePublishVolume(req.publish(fs, cap, mine), ctx());
      await svc.NodeUnpublishVolume(req.unpublish(fs, mine), ctx());
      await assert.rejects(stat(mine), { code: 'ENOENT' });
      const blkTarget = blk.target('created');
      await svc.NodePublishVolume(req.publish(blk, blockCap(), blkTarget), ctx());
      await svc.NodeUnpublishVolume(req.unpublish(blk, blkTarget), ctx());
      await assert.rejects(stat(blkTarget), { code: 'ENOENT' });

      // Made by someone else (the kubelet): mounted onto, unmounted, left in place.
      const theirs = fs.target('kubelet-made');
      await mkdir(theirs, { recursive: true });
      await svc.NodePublishVolume(req.publish(fs, cap, theirs), ctx());
      await writeFile(path.join(theirs, 'on-the-volume'), 'x');
      await svc.NodeUnpublishVolume(req.unpublish(fs, theirs), ctx());
      assert.ok((await stat(theirs)).isDirectory());
      assert.deepEqual(await readdir(theirs), []);

      // A user's file at the target: never mounted over, never deleted.
      const userFile = blk.target('user-file');
      await mkdir(path.dirname(userFile), { recursive: true });
      await writeFile(userFile, 'user data');
      await assert.rejects(
        svc.NodePublishVolume(req.publish(blk, blockCap(), userFile), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /not an empty regular file/),
      );
      await assert.rejects(
        svc.NodePublishVolume(req.publish(fs, cap, userFile), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /not a directory/),
      );
      await svc.NodeUnpublishVolume(req.unpublish(blk, userFile), ctx());
      await svc.NodeUnpublishVolume(req.unpublish(fs, userFile), ctx());
      assert.equal(await readFile(userFile, 'utf8'), 'user data');

      await svc.NodeUnstageVolume(req.unstage(fs), ctx());
      await svc.NodeUnstageVolume(req.unstage(blk), ctx());
    });
  });

  test('a read-only filesystem under the kubelet root answers FAILED_PRECONDITION (EROFS), not INTERNAL', async () => {
    await withWorld(async (w) => {
      const svc = w.service();
      const v = await w.volume(16);
      const ro = path.join(w.kubeletRoot, 'ro');
      await mkdir(ro, { recursive: true });
      sh('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
      await assert.rejects(
        svc.NodeStageVolume(req.stage({ ...v, staging: path.join(ro, 'globalmount') }, mountCap()), ctx()),
        rejectsWith(status.FAILED_PRECONDITION, /mkdir .*read-only filesystem \(EROFS\)/),
      );
      assert.deepEqual(w.connector.calls, [], 'nothing was connected');
    });
  });
});
