/**
 * Issue 11, node side: every path a Node RPC takes, made hostile (over-long, through a regular
 * file, a symlink loop, relative, outside the kubelet root, missing), answers the CSI code the
 * spec asks for with a short message, never INTERNAL; and unpublish never deletes a file it did
 * not create. No root needed: nothing here mounts (the connector is a recording double, block
 * access only, device paths that do not exist).
 */
import assert from 'node:assert/strict';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../../src/csi/errors.ts';
import type { NodeServiceImpl } from '../../../src/csi/node/index.ts';
import { codeOf, ctx, mountCap, stageBlock, type World, withWorld } from './hostile-world.ts';

/** Every Node RPC that takes a path, with `p` in each path field in turn. */
function calls(svc: NodeServiceImpl, root: string, p: string) {
  const staging = path.join(root, 'staging', 'v1');
  const target = path.join(root, 'pods', 'pod1', 'v1');
  const publish = (stagingPath: string, targetPath: string) =>
    svc.NodePublishVolume(
      {
        volume_id: 'v1',
        staging_target_path: stagingPath,
        target_path: targetPath,
        volume_capability: mountCap as never,
        readonly: false,
        publish_context: {},
        secrets: {},
        volume_context: {},
      },
      ctx(),
    );
  return {
    stage: () =>
      svc.NodeStageVolume(
        {
          volume_id: 'v1',
          staging_target_path: p,
          volume_capability: mountCap as never,
          publish_context: { driver_volume_type: 'rbd' },
          secrets: {},
          volume_context: {},
        },
        ctx(),
      ),
    unstage: () => svc.NodeUnstageVolume({ volume_id: 'v1', staging_target_path: p }, ctx()),
    publishTarget: () => publish(staging, p),
    publishStaging: () => publish(p, target),
    unpublish: () => svc.NodeUnpublishVolume({ volume_id: 'v1', target_path: p }, ctx()),
    stats: () => svc.NodeGetVolumeStats({ volume_id: 'v1', volume_path: p, staging_target_path: '' }, ctx()),
    expand: () =>
      svc.NodeExpandVolume(
        {
          volume_id: 'v1',
          volume_path: p,
          capacity_range: { required_bytes: '1', limit_bytes: '0' },
          staging_target_path: '',
          volume_capability: null as never,
          secrets: {},
        },
        ctx(),
      ),
  };
}

type Expect = Record<keyof ReturnType<typeof calls>, number>;
const all = (code: number): Expect => ({
  stage: code,
  unstage: code,
  publishTarget: code,
  publishStaging: code,
  unpublish: code,
  stats: code,
  expand: code,
});

async function expectCodes(w: World, p: string, want: Expect, label: string): Promise<void> {
  const got: Partial<Expect> = {};
  for (const [name, call] of Object.entries(calls(w.svc, w.root, p))) {
    got[name as keyof Expect] = await codeOf(call());
  }
  assert.deepEqual(got, want, label);
}
test('over-long paths and components answer INVALID_ARGUMENT with a short message (ENAMETOOLONG)', async () => {
  await withWorld(async (w) => {
    await expectCodes(
      w,
      path.join(w.root, 'pods', 'a'.repeat(256), 'mount'),
      all(status.INVALID_ARGUMENT),
      'component of 256 bytes',
    );
    const deep = path.join(w.root, 'pods', ...Array(40).fill('b'.repeat(120)));
    assert.ok(Buffer.byteLength(deep) > 4096);
    await expectCodes(w, deep, all(status.INVALID_ARGUMENT), 'path over 4096 bytes');
    await expectCodes(
      w,
      `${w.root}/pods/${'é'.repeat(128)}`,
      all(status.INVALID_ARGUMENT),
      '256 UTF-8 bytes',
    );
    await expectCodes(w, `${w.root}/pods/${'c'.repeat(1_000_000)}`, all(status.INVALID_ARGUMENT), '1 MB');
    // 255 bytes is allowed (the name simply does not exist).
    const ok = path.join(w.root, 'pods', 'd'.repeat(255));
    assert.equal(await codeOf(w.svc.NodeUnpublishVolume({ volume_id: 'v1', target_path: ok }, ctx())), 0);
  });
});

test('a path through a regular file (ENOTDIR) or a symlink loop (ELOOP) never answers INTERNAL', async () => {
  await withWorld(async (w) => {
    const file = path.join(w.root, 'pods', 'file');
    await writeFile(file, 'user data');
    const want: Expect = {
      stage: status.FAILED_PRECONDITION, // cannot create the staging directory there
      unstage: status.OK, // nothing is staged there
      publishTarget: status.FAILED_PRECONDITION, // the volume is not staged
      publishStaging: status.FAILED_PRECONDITION,
      unpublish: status.OK, // nothing is published there
      stats: status.NOT_FOUND, // no volume at that path
      expand: status.NOT_FOUND,
    };
    await expectCodes(w, path.join(file, 'mount'), want, 'through a regular file');
    await expectCodes(w, path.join(file, 'x', 'y'), want, 'deeper through a regular file');
    assert.equal(await readFile(file, 'utf8'), 'user data');

    await symlink('loop-b', path.join(w.root, 'pods', 'loop-a'));
    await symlink('loop-a', path.join(w.root, 'pods', 'loop-b'));
    await expectCodes(w, path.join(w.root, 'pods', 'loop-a', 'mount'), want, 'through a symlink loop');
    assert.deepEqual(w.connector.calls, [], 'nothing was connected');
  });
});

test('stage on a path through a regular file names the reason, quoting only a prefix', async () => {
  await withWorld(async (w) => {
    const file = path.join(w.root, 'pods', 'f');
    await writeFile(file, '');
    const long = path.join(file, ...Array(15).fill('z'.repeat(200)));
    try {
      await calls(w.svc, w.root, long).stage();
      assert.fail('stage must fail');
    } catch (e) {
      assert.ok(e instanceof CsiError);
      assert.equal(e.code, status.FAILED_PRECONDITION);
      assert.match(e.message, /^staging volume v1: mkdir .*not a directory \(ENOTDIR\)$/);
      assert.ok(e.message.length < 300, e.message);
    }
    assert.deepEqual(w.connector.calls, [], 'checked before connecting anything');
  });
});

test('NodeGetVolumeStats / NodeExpandVolume: a volume_path that does not exist is NOT_FOUND (issue 11 item 8)', async () => {
  await withWorld(async (w) => {
    // Stage a (block) volume so one id is known to the node.
    const staging = path.join(w.root, 'staging', 'known');
    await stageBlock(w, 'known', staging);
    for (const volumeId of ['known', 'unknown']) {
      for (const p of [
        'some/path',
        'relative',
        './x',
        '/path/does/not/exist',
        '/etc',
        path.join(w.root, 'pods', 'missing', 'mount'),
        path.join(w.root, '..', 'escape'),
      ]) {
        const stats = await codeOf(
          w.svc.NodeGetVolumeStats({ volume_id: volumeId, volume_path: p, staging_target_path: '' }, ctx()),
        );
        assert.equal(stats, status.NOT_FOUND, `stats ${volumeId} ${p}`);
        const expand = await codeOf(
          w.svc.NodeExpandVolume(
            {
              volume_id: volumeId,
              volume_path: p,
              capacity_range: null as never,
              staging_target_path: '',
              volume_capability: null as never,
              secrets: {},
            },
            ctx(),
          ),
        );
        assert.equal(expand, status.NOT_FOUND, `expand ${volumeId} ${p}`);
      }
    }
    // A path that exists but is not where this volume is staged or published: the volume does
    // not exist there (spec), also for a volume the node does not know.
    const other = path.join(w.root, 'pods');
    for (const volumeId of ['known', 'unknown']) {
      assert.equal(
        await codeOf(
          w.svc.NodeGetVolumeStats(
            { volume_id: volumeId, volume_path: other, staging_target_path: '' },
            ctx(),
          ),
        ),
        status.NOT_FOUND,
        `stats ${volumeId} at another path`,
      );
    }
    const own = await w.svc.NodeGetVolumeStats(
      { volume_id: 'known', volume_path: staging, staging_target_path: '' },
      ctx(),
    );
    assert.equal(own.volume_condition?.abnormal, true, 'its device does not exist here');
    // Malformed input is still INVALID_ARGUMENT.
    for (const p of ['', 'a\0b']) {
      assert.equal(
        await codeOf(
          w.svc.NodeGetVolumeStats({ volume_id: 'known', volume_path: p, staging_target_path: '' }, ctx()),
        ),
        status.INVALID_ARGUMENT,
      );
    }
    await w.svc.NodeUnstageVolume({ volume_id: 'known', staging_target_path: staging }, ctx());
  });
});
