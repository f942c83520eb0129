/** Request validation of the node service (src/csi/node/validate.ts). */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { multiNodeWriterMountProblem } from '../../../src/csi/access-modes.ts';
import { CsiError } from '../../../src/csi/errors.ts';
import {
  parseCapability,
  parseMountFlags,
  requirePathUnder,
  requireVolumeId,
} from '../../../src/csi/node/validate.ts';

const invalid = (re?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CsiError);
  assert.equal(e.code, status.INVALID_ARGUMENT);
  if (re) assert.match(e.message, re);
  return true;
};

const mount = (fs_type: string, mode = 'SINGLE_NODE_WRITER', extra: Record<string, unknown> = {}) =>
  ({
    mount: { fs_type, mount_flags: [], volume_mount_group: '', ...extra },
    access_mode: { mode },
    access_type: 'mount',
  }) as never;

test('requireVolumeId', () => {
  assert.equal(
    requireVolumeId('3f0c3c4e-1b2a-4c39-9f0e-1d2c3b4a5e6f'),
    '3f0c3c4e-1b2a-4c39-9f0e-1d2c3b4a5e6f',
  );
  assert.throws(() => requireVolumeId(''), invalid(/required/));
  assert.throws(() => requireVolumeId('../etc/passwd'), invalid());
  assert.throws(() => requireVolumeId('a'.repeat(129)), invalid());
});

test('parseCapability: defaults, fs types, modes, flags, mount group', () => {
  assert.deepEqual(parseCapability(mount('')), {
    accessType: 'mount',
    accessMode: 'SINGLE_NODE_WRITER',
    readOnly: false,
    fsType: 'ext4',
    mountFlags: [],
  });
  assert.equal(parseCapability(mount('XFS')).fsType, 'xfs');
  assert.equal(parseCapability(mount('ext4', 'MULTI_NODE_READER_ONLY')).readOnly, true);
  assert.equal(parseCapability(mount('ext4', 'SINGLE_NODE_MULTI_WRITER')).readOnly, false);
  assert.throws(
    () => parseCapability(mount('ext4', 'MULTI_NODE_MULTI_WRITER')),
    invalid(/needs block access/),
  );
  assert.throws(() => parseCapability(mount('zfs')), invalid(/not supported/));
  assert.throws(() => parseCapability(mount('ext4', 'UNKNOWN')), invalid());
  assert.throws(() => parseCapability(null), invalid(/required/));
  assert.throws(
    () => parseCapability(mount('ext4', 'SINGLE_NODE_WRITER', { mount_flags: ['bind'] })),
    invalid(),
  );
  assert.throws(
    () => parseCapability(mount('ext4', 'SINGLE_NODE_WRITER', { mount_flags: ['a b'] })),
    invalid(),
  );
  assert.throws(
    () => parseCapability(mount('ext4', 'SINGLE_NODE_WRITER', { volume_mount_group: '2000' })),
    invalid(/volume_mount_group/),
  );
  const block = parseCapability({ block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } } as never);
  assert.equal(block.accessType, 'block');
  assert.equal(block.fsType, undefined);
});

test('requirePathUnder: inside only, normalized, no symlink escape', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'node-validate-'));
  try {
    const root = path.join(dir, 'kubelet');
    await mkdir(path.join(root, 'pods'), { recursive: true });
    assert.equal(await requirePathUnder('p', `${root}/pods/x/../y`, root), `${root}/pods/y`);
    await assert.rejects(requirePathUnder('p', root, root), invalid(/outside/));
    await assert.rejects(requirePathUnder('p', `${root}/../x`, root), invalid(/outside/));
    await assert.rejects(requirePathUnder('p', 'relative/path', root), invalid(/absolute/));
    await assert.rejects(requirePathUnder('p', '', root), invalid(/required/));
    await symlink('/etc', path.join(root, 'pods', 'evil'));
    await assert.rejects(
      requirePathUnder('p', `${root}/pods/evil/new`, root),
      invalid(/resolves to \/etc\/new/),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('mount flags: every comma-separated option is checked on its own (issue 11 item 5)', () => {
  const flags = (mount_flags: string[]) =>
    parseCapability(mount('ext4', 'SINGLE_NODE_WRITER', { mount_flags }));
  for (const bad of [
    ['defaults,bind'],
    ['noatime, rbind'],
    ['ro,remount'],
    ['move,noatime'],
    ['defaults,,noatime'],
    ['noatime,'],
    ['rshared'],
    ['loop,offset=4096'],
    ['X-mount.mkdir=0755'],
    ['x-systemd.automount'],
    ['helper=evil'],
    ['context="a:b,c'],
  ]) {
    assert.throws(() => flags(bad), invalid(), `mount_flags ${JSON.stringify(bad)} must be refused`);
  }
  assert.deepEqual(flags(['defaults,noatime', ' discard ', 'errors=remount-ro']).mountFlags, [
    'defaults',
    'noatime',
    'discard',
    'errors=remount-ro',
  ]);
  // A quoted value keeps its commas (SELinux contexts).
  assert.deepEqual(parseMountFlags(['context="system_u:object_r:container_file_t:s0:c1,c2",noatime']), [
    'context="system_u:object_r:container_file_t:s0:c1,c2"',
    'noatime',
  ]);
  // Bounded: count and length, and the message quotes only a prefix.
  assert.throws(() => parseMountFlags(Array(65).fill('noatime')), invalid(/too many/));
  assert.throws(() => parseMountFlags([Array(70).fill('ro').join(',')]), invalid(/too many/));
  const huge = `x${'a'.repeat(1_000_000)}`;
  assert.throws(
    () => parseMountFlags([huge]),
    (e: unknown) => e instanceof CsiError && e.code === status.INVALID_ARGUMENT && e.message.length < 200,
  );
});

test('multiNodeWriterMountProblem: the reason the node and the controller both give', () => {
  const reason =
    'access mode MULTI_NODE_MULTI_WRITER needs block access: a ext4 filesystem cannot be written from several nodes';
  assert.equal(multiNodeWriterMountProblem('MULTI_NODE_MULTI_WRITER', { mount: { fs_type: '' } }), reason);
  assert.match(
    multiNodeWriterMountProblem('MULTI_NODE_SINGLE_WRITER', { mount: { fs_type: 'xfs' } }) ?? '',
    /MULTI_NODE_SINGLE_WRITER needs block access: a xfs filesystem/,
  );
  assert.equal(multiNodeWriterMountProblem('MULTI_NODE_MULTI_WRITER', { block: {} }), undefined);
  assert.equal(multiNodeWriterMountProblem('MULTI_NODE_READER_ONLY', { mount: {} }), undefined);
  assert.equal(multiNodeWriterMountProblem('SINGLE_NODE_WRITER', { mount: {} }), undefined);
  assert.throws(() => parseCapability(mount('', 'MULTI_NODE_MULTI_WRITER')), invalid(new RegExp(reason)));
});
