/**
 * src/host/mount.ts, filesystem.ts and stats.ts against the real tools on loop devices (root):
 * blkid probing, format-only-blank, partition-table refusal, fsck, mount table parsing of real
 * mounts, read-only bind, stacked and busy unmounts (bounded wait).
 */
import assert from 'node:assert/strict';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { FilesystemMismatchError, Filesystems } from '../../../src/host/filesystem.ts';
import { deviceNumber, MountBusyError, Mounter } from '../../../src/host/mount.ts';
import { blockDeviceSize, filesystemUsage } from '../../../src/host/stats.ts';
import { MiB, rootSkipReason, sh, World } from './helpers.ts';

const skip = rootSkipReason();

async function withLoop(sizeMiB: number, fn: (dev: string, w: World) => Promise<void>): Promise<void> {
  const w = await World.create();
  try {
    const v = await w.volume(sizeMiB);
    const dev = sh('losetup', ['-f', '--show', v.file]);
    await fn(dev, w);
  } finally {
    await w.cleanup();
  }
}

describe('host filesystem and mount helpers on loop devices', { skip }, () => {
  test('probe: blank, ext4 after format; ensureFilesystem formats once and then leaves it alone', async () => {
    await withLoop(32, async (dev, w) => {
      const fs = new Filesystems({ executor: w.executor });
      assert.deepEqual(await fs.probe(dev), {});
      assert.deepEqual(await fs.ensureFilesystem(dev, 'ext4'), { formatted: true });
      const p = await fs.probe(dev);
      assert.equal(p.type, 'ext4');
      assert.match(p.uuid ?? '', /^[0-9a-f-]{36}$/);
      assert.deepEqual(await fs.ensureFilesystem(dev, 'ext4'), { formatted: false });
      assert.equal((await fs.probe(dev)).uuid, p.uuid, 'not reformatted');
      await fs.check(dev, 'ext4');
      await assert.rejects(fs.ensureFilesystem(dev, 'btrfs'), FilesystemMismatchError);
    });
  });

  test('a device with a partition table is refused, not formatted', async () => {
    await withLoop(32, async (dev, w) => {
      sh('parted', ['-s', dev, 'mklabel', 'gpt']);
      const fs = new Filesystems({ executor: w.executor });
      assert.equal((await fs.probe(dev)).ptType, 'gpt');
      await assert.rejects(fs.ensureFilesystem(dev, 'ext4'), /already holds a gpt partition table/);
      assert.equal((await fs.probe(dev)).ptType, 'gpt', 'still only the partition table');
    });
  });

  test('mount table, device numbers, read-only bind, usage and device size', async () => {
    await withLoop(64, async (dev, w) => {
      const fs = new Filesystems({ executor: w.executor });
      const m = new Mounter({ executor: w.executor });
      await fs.format(dev, 'ext4');
      const mnt = path.join(w.kubeletRoot, 'with space', 'mnt');
      const bind = path.join(w.kubeletRoot, 'bind');
      await mkdir(mnt, { recursive: true });
      await mkdir(bind, { recursive: true });
      assert.equal(await m.isMountPoint(mnt), false);
      await m.mount(dev, mnt, { fsType: 'ext4', options: ['noatime'] });
      const e = await m.find(mnt);
      assert.ok(e, 'found by a path with a space (octal-escaped in mountinfo)');
      assert.equal(e.source, dev);
      assert.equal(e.fsType, 'ext4');
      assert.ok(e.mountOptions.includes('noatime'));
      assert.equal(e.majorMinor, await deviceNumber(dev));

      await m.bindMount(mnt, bind, { readOnly: true });
      const b = await m.find(bind);
      assert.ok(b?.mountOptions.includes('ro'));
      assert.ok(b?.superOptions.includes('rw'), 'the filesystem itself stays writable');
      await assert.rejects(writeFile(path.join(bind, 'x'), 'x'), { code: 'EROFS' });

      const u = await filesystemUsage(mnt);
      assert.ok(u.totalBytes > 50n * BigInt(MiB) && u.availableBytes <= u.totalBytes && u.usedBytes > 0n);
      assert.ok(u.totalInodes > 0n && u.usedInodes > 0n);
      assert.equal(await blockDeviceSize(w.executor, dev), BigInt(64 * MiB));

      await m.unmount(bind);
      await m.unmount(bind); // not mounted: success
      assert.equal(await m.isMountPoint(bind), false);
      await m.unmount(mnt);
    });
  });

  test('unmount removes stacked mounts with one umount each and one read of the mount table', async () => {
    await withLoop(32, async (dev, w) => {
      const fs = new Filesystems({ executor: w.executor });
      const m = new Mounter({ executor: w.executor });
      await fs.format(dev, 'ext4');
      const mnt = path.join(w.kubeletRoot, 'stacked');
      const other = path.join(w.kubeletRoot, 'other');
      await mkdir(mnt, { recursive: true });
      await mkdir(other, { recursive: true });
      await m.mount(dev, mnt, { fsType: 'ext4' });
      await m.bindMount(other, mnt); // a second mount on top of the first
      const list = m.list.bind(m);
      let reads = 0;
      m.list = () => {
        reads++;
        return list();
      };
      const umounts: string[] = [];
      const run = w.executor.run.bind(w.executor);
      const exec = {
        run: (cmd: string, a: string[], o?: object) => {
          if (cmd === 'umount') umounts.push(a.join(' '));
          return run(cmd, a, o);
        },
      };
      const counted = new Mounter({ executor: exec });
      counted.list = m.list;
      await counted.unmount(mnt);
      assert.equal(await new Mounter({ executor: w.executor }).isMountPoint(mnt), false, 'both gone');
      assert.deepEqual(umounts, [mnt, mnt]);
      assert.equal(reads, 1);
      // Given the caller's table, it reads none; nothing mounted there: no umount at all.
      await counted.unmount(mnt, { table: await list() });
      assert.equal(reads, 1);
      assert.equal(umounts.length, 2);
    });
  });

  test('unmount waits (bounded) while the mount is busy', async () => {
    await withLoop(32, async (dev, w) => {
      const fs = new Filesystems({ executor: w.executor });
      const m = new Mounter({ executor: w.executor });
      await fs.format(dev, 'ext4');
      const mnt = path.join(w.kubeletRoot, 'busy');
      await mkdir(mnt, { recursive: true });
      await m.mount(dev, mnt, { fsType: 'ext4' });
      const fh = await open(path.join(mnt, 'held-open'), 'w');
      try {
        await assert.rejects(m.unmount(mnt, { busyTimeoutMs: 300 }), MountBusyError);
        assert.equal(await m.isMountPoint(mnt), true);
        // Released while unmount is waiting: it succeeds.
        setTimeout(() => void fh.close(), 250);
        await m.unmount(mnt, { busyTimeoutMs: 5000 });
        assert.equal(await m.isMountPoint(mnt), false);
      } finally {
        await fh.close().catch(() => undefined);
      }
    });
  });
});
