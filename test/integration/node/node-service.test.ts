/**
 * The node service against real loop devices, real mkfs/blkid/fsck/resize and real mounts (root).
 * The storage connector is LoopConnector, a stand-in for the iSCSI/RBD connectors (which have
 * their own tests against the iscsiadm/rbd doubles); Cinder is a double of the two attachment
 * calls the node makes. Everything is cleaned up in `finally`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../../src/csi/errors.ts';
import {
  blockCap,
  CHAP_PASSWORD,
  ctx,
  loopsOf,
  MiB,
  mountCap,
  req,
  rootSkipReason,
  sh,
  type Vol,
  World,
} from './helpers.ts';

const skip = rootSkipReason();

/** Online ext4 resize (EXT4_IOC_RESIZE_FS) needs CAP_SYS_RESOURCE, which some sandboxes drop. */
function capSysResourceMissing(): string | undefined {
  const line = readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\s*([0-9a-f]+)/m)?.[1];
  if (line && (BigInt(`0x${line}`) & (1n << 24n)) === 0n) {
    return 'online ext4 resize needs CAP_SYS_RESOURCE, which this process lacks (the kernel answers EPERM)';
  }
  return undefined;
}
const noOnlineExt4Resize = capSysResourceMissing();
const noBtrfs = spawnSync('which', ['mkfs.btrfs']).status === 0 ? undefined : 'mkfs.btrfs is not installed';

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
    assert.ok(e instanceof CsiError, `expected CsiError, got ${String(e)}`);
    assert.equal(e.code, code, `code ${e.code} (${e.message})`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

/** The filesystem type blkid finds, '' for a blank device (blkid exits 2). */
function blkidType(dev: string): string {
  try {
    return sh('blkid', ['-p', '-o', 'value', '-s', 'TYPE', dev]);
  } catch {
    return '';
  }
}

async function findmnt(p: string): Promise<{ source: string; options: string; fstype: string } | undefined> {
  try {
    const [source, options, fstype] = sh('findmnt', [
      '-n',
      '-o',
      'SOURCE,OPTIONS,FSTYPE',
      '--mountpoint',
      p,
    ]).split(/\s+/);
    return { source: source ?? '', options: options ?? '', fstype: fstype ?? '' };
  } catch {
    return undefined;
  }
}

describe('node service on loop devices', { skip }, () => {
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
