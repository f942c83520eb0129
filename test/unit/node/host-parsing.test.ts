/** Pure parsing and option logic of src/host/{mount,filesystem,stats}.ts (no root needed). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandError, type Executor } from '../../../src/host/exec.ts';
import { mkfsCommand, parseBlkidExport, stagingMountOptions } from '../../../src/host/filesystem.ts';
import { Mounter, parseMountInfo } from '../../../src/host/mount.ts';
import { readOnlyProblem } from '../../../src/host/stats.ts';

const MOUNTINFO = [
  '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro',
  '36 22 7:0 / /var/lib/kubelet/plugins/staging/vol\\0401/globalmount rw,relatime shared:2 master:1 - ext4 /dev/loop0 rw',
  '37 22 7:0 / /var/lib/kubelet/pods/p/mount ro,relatime shared:2 - ext4 /dev/loop0 ro,errors=remount-ro',
  '38 22 0:5 /loop3 /var/lib/kubelet/pods/p/block rw,nosuid - devtmpfs udev rw,size=100k',
  'garbage line',
  '',
].join('\n');

test('parseMountInfo: fields, optional fields, octal escapes, super options; skips garbage', () => {
  const t = parseMountInfo(MOUNTINFO);
  assert.equal(t.length, 4);
  const staging = t[1];
  assert.equal(staging?.mountPoint, '/var/lib/kubelet/plugins/staging/vol 1/globalmount');
  assert.equal(staging?.majorMinor, '7:0');
  assert.equal(staging?.source, '/dev/loop0');
  assert.equal(staging?.fsType, 'ext4');
  assert.deepEqual(staging?.mountOptions, ['rw', 'relatime']);
  assert.deepEqual(t[2]?.superOptions, ['ro', 'errors=remount-ro']);
  assert.equal(t[3]?.root, '/loop3');
  assert.equal(t[3]?.fsType, 'devtmpfs');
});

test('readOnlyProblem: superblock ro vs per-mount ro vs expected', () => {
  const [, rw, ro] = parseMountInfo(MOUNTINFO);
  assert.ok(rw && ro);
  assert.equal(readOnlyProblem(rw, { superReadOnly: false, mountReadOnly: false }), undefined);
  assert.match(readOnlyProblem(ro, { superReadOnly: false, mountReadOnly: true }) ?? '', /went read-only/);
  assert.equal(readOnlyProblem(ro, { superReadOnly: true, mountReadOnly: true }), undefined);
  const remounted = { ...rw, mountOptions: ['ro'] };
  assert.match(
    readOnlyProblem(remounted, { superReadOnly: false, mountReadOnly: false }) ?? '',
    /remounted read-only/,
  );
  assert.equal(readOnlyProblem(remounted, { superReadOnly: false, mountReadOnly: true }), undefined);
});

test('parseBlkidExport', () => {
  assert.deepEqual(parseBlkidExport('DEVNAME=/dev/loop0\nUUID=ab-cd\nTYPE=xfs\n\nbogus\n'), {
    DEVNAME: '/dev/loop0',
    UUID: 'ab-cd',
    TYPE: 'xfs',
  });
});

test('mkfsCommand: no discard pass, lazy init for ext, force only on ext (blank-checked before)', () => {
  assert.deepEqual(mkfsCommand('/dev/sdb', 'ext4'), [
    'mkfs.ext4',
    ['-F', '-m0', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', '/dev/sdb'],
  ]);
  assert.deepEqual(mkfsCommand('/dev/sdb', 'xfs'), ['mkfs.xfs', ['-K', '/dev/sdb']]);
  assert.deepEqual(mkfsCommand('/dev/sdb', 'btrfs'), ['mkfs.btrfs', ['-K', '/dev/sdb']]);
});

test('stagingMountOptions: nouuid for xfs, ro and no journal replay when read-only, caller flags kept', () => {
  assert.deepEqual(stagingMountOptions('xfs', ['noatime'], false), ['noatime', 'nouuid']);
  assert.deepEqual(stagingMountOptions('ext4', [], true), ['ro', 'noload']);
  assert.deepEqual(stagingMountOptions('ext3', ['noload'], true), ['noload', 'ro']);
  assert.deepEqual(stagingMountOptions('xfs', ['nouuid', 'ro'], true), ['nouuid', 'ro', 'norecovery']);
  assert.deepEqual(stagingMountOptions('btrfs', [], true), ['ro', 'rescue=nologreplay']);
  // The caller's rw cannot undo a read-only access mode: it is dropped and ro comes last.
  assert.deepEqual(stagingMountOptions('ext4', ['rw', 'noatime'], true), ['noatime', 'ro', 'noload']);
});

test('Mounter.setReadOnly: a device the kernel already keeps read-only is accepted when --setro is refused', async () => {
  // A double of the executor: this machine has no device that refuses BLKROSET (an RBD image
  // mapped --read-only does); the real --setro/--getro run in test/integration/node.
  const exec = (readOnlyAlready: boolean): Executor => ({
    async run(cmd, args) {
      if (args[0] === '--setro') {
        throw new CommandError({ cmd, args, code: 1, stderr: 'BLKROSET: Permission denied' });
      }
      return { code: 0, stdout: readOnlyAlready ? '1\n' : '0\n', stderr: '', durationMs: 1 };
    },
  });
  await new Mounter({ executor: exec(true) }).setReadOnly('/dev/rbd0');
  await assert.rejects(new Mounter({ executor: exec(false) }).setReadOnly('/dev/rbd0'), CommandError);
});
