/**
 * Issue 11, node side: targets the driver did not make stay untouched (unpublish never deletes a
 * file or directory it did not create; unstage removes only its own empty placeholders), the CSI
 * error table of the Node RPCs, and an invalid stage that leaves nothing behind. No root needed:
 * nothing here mounts (hostile-world.ts: block access only, a connector that connects nothing).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { blockCap, codeOf, ctx, mountCap, stageBlock, withWorld } from './hostile-world.ts';

test('NodeUnpublishVolume never deletes a file or directory it did not create (issue 11 item 7)', async () => {
  await withWorld(async (w) => {
    const file = path.join(w.root, 'pods', 'pod1', 'volumes', 'data.db');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, 'precious user data');
    assert.equal(await codeOf(w.svc.NodeUnpublishVolume({ volume_id: 'v1', target_path: file }, ctx())), 0);
    assert.equal(await readFile(file, 'utf8'), 'precious user data');

    const empty = path.join(w.root, 'pods', 'pod1', 'volumes', 'empty');
    await writeFile(empty, '');
    const dir = path.join(w.root, 'pods', 'pod1', 'volumes', 'dir');
    await mkdir(dir);
    for (const p of [empty, dir]) {
      assert.equal(await codeOf(w.svc.NodeUnpublishVolume({ volume_id: 'v1', target_path: p }, ctx())), 0);
      await stat(p); // still there
    }

    // Also for a volume the node knows (staged), at a path it never published.
    const staging = path.join(w.root, 'staging', 'v2');
    await stageBlock(w, 'v2', staging);
    assert.equal(await codeOf(w.svc.NodeUnpublishVolume({ volume_id: 'v2', target_path: file }, ctx())), 0);
    assert.equal(await readFile(file, 'utf8'), 'precious user data');
    await w.svc.NodeUnstageVolume({ volume_id: 'v2', staging_target_path: staging }, ctx());
  });
});

test('CSI error table: publish without staging path, target inside staging, incompatible re-stage, capacity range, corrupt state', async () => {
  await withWorld(async (w) => {
    const staging = path.join(w.root, 'staging', 'v1');
    const stage = (mode: string) => stageBlock(w, 'v1', staging, { mode });
    const publish = (stagingPath: string, target: string) =>
      w.svc.NodePublishVolume(
        {
          volume_id: 'v1',
          staging_target_path: stagingPath,
          target_path: target,
          volume_capability: blockCap as never,
          readonly: false,
          publish_context: {},
          secrets: {},
          volume_context: {},
        },
        ctx(),
      );
    const target = path.join(w.root, 'pods', 'p', 'dev');
    // Spec: "Staging target path not set" → FAILED_PRECONDITION (the node has STAGE_UNSTAGE_VOLUME).
    assert.equal(await codeOf(publish('', target)), status.FAILED_PRECONDITION);
    assert.equal(await codeOf(publish(staging, staging)), status.INVALID_ARGUMENT);
    assert.equal(await codeOf(publish(staging, path.join(staging, 'x'))), status.INVALID_ARGUMENT);

    await stage('SINGLE_NODE_WRITER');
    // Staged read-write; staging again for a read-only mode is incompatible → ALREADY_EXISTS.
    assert.equal(await codeOf(stage('MULTI_NODE_READER_ONLY')), status.ALREADY_EXISTS);
    assert.equal(await codeOf(stage('SINGLE_NODE_WRITER')), status.OK);

    const expand = (required: string, limit: string, cap: unknown = null) =>
      w.svc.NodeExpandVolume(
        {
          volume_id: 'v1',
          volume_path: staging,
          capacity_range: { required_bytes: required, limit_bytes: limit },
          staging_target_path: '',
          volume_capability: cap as never,
          secrets: {},
        },
        ctx(),
      );
    assert.equal(await codeOf(expand('2048', '1024')), status.OUT_OF_RANGE);
    assert.equal(await codeOf(expand('-1', '0')), status.INVALID_ARGUMENT);
    // Staged for block access; expanding as a filesystem exceeds its capabilities.
    assert.equal(await codeOf(expand('1', '0', mountCap)), status.INVALID_ARGUMENT);

    // A state file that is not JSON is the node's state, not a driver bug.
    await writeFile(path.join(w.dir, 'state', 'v1.json'), '{ not json');
    assert.equal(await codeOf(stage('SINGLE_NODE_WRITER')), status.FAILED_PRECONDITION);
    assert.equal(
      await codeOf(w.svc.NodeUnpublishVolume({ volume_id: 'v1', target_path: target }, ctx())),
      status.FAILED_PRECONDITION,
    );
  });
});

test('unstage removes the empty placeholders of publishes that never completed, and nothing else', async () => {
  await withWorld(async (w) => {
    const staging = path.join(w.root, 'staging', 'v3');
    await stageBlock(w, 'v3', staging);
    // What a publish that crashed after creating its targets leaves: recorded, empty, unmounted.
    const pods = path.join(w.root, 'pods', 'p3');
    await mkdir(pods, { recursive: true });
    const emptyFile = path.join(pods, 'dev');
    const emptyDir = path.join(pods, 'mnt');
    const refilled = path.join(pods, 'refilled');
    await writeFile(emptyFile, '');
    await mkdir(emptyDir);
    await writeFile(refilled, 'somebody wrote here since');
    const st = await w.svc.stateStore.get('v3');
    assert.ok(st);
    st.placeholders = [emptyFile, emptyDir, refilled, path.join(pods, 'gone')];
    await w.svc.stateStore.put(st);

    await w.svc.NodeUnstageVolume({ volume_id: 'v3', staging_target_path: staging }, ctx());
    await assert.rejects(stat(emptyFile), { code: 'ENOENT' });
    await assert.rejects(stat(emptyDir), { code: 'ENOENT' });
    assert.equal(await readFile(refilled, 'utf8'), 'somebody wrote here since');
  });
});

test('a stage request that is invalid leaves nothing behind: no staging directory, no connection', async () => {
  await withWorld(async (w) => {
    const staging = path.join(w.root, 'plugins', 'staging', 'v4', 'globalmount');
    const stage = (publish_context: Record<string, string>) =>
      stageBlock(w, 'v4', staging, { publish_context });
    assert.equal(await codeOf(stage({})), status.INVALID_ARGUMENT);
    assert.equal(
      await codeOf(stage({ driver_volume_type: 'rbd', target_lun: 'x' })),
      status.INVALID_ARGUMENT,
    );
    await assert.rejects(stat(path.join(w.root, 'plugins')), { code: 'ENOENT' });
    assert.deepEqual(w.connector.calls, []);
  });
});
