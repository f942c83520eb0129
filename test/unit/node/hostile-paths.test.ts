/**
 * Issue 11, node side: every path a Node RPC takes, made hostile (over-long, through a regular
 * file, a symlink loop, relative, outside the kubelet root, missing), answers the CSI code the
 * spec asks for with a short message, never INTERNAL; and unpublish never deletes a file it did
 * not create. No root needed: nothing here mounts (the connector is a recording double, block
 * access only, device paths that do not exist).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../../src/csi/errors.ts';
import { createNodeService, type NodeServiceImpl } from '../../../src/csi/node/index.ts';
import type { RpcContext } from '../../../src/csi/rpc.ts';
import type { ConnectedDevice, StorageConnector } from '../../../src/host/connector.ts';
import { HostExecutor } from '../../../src/host/exec.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import { silentLogger } from '../../../src/util/logger.ts';

const ctx = (): RpcContext => ({
  signal: new AbortController().signal,
  deadline: undefined,
  requestId: 't',
  log: silentLogger(),
});

class NullConnector implements StorageConnector {
  readonly protocol = 'rbd' as const;
  readonly calls: string[] = [];
  async connect(): Promise<ConnectedDevice> {
    this.calls.push('connect');
    return { protocol: 'rbd', devicePath: '/dev/rbd-test-does-not-exist', details: {} };
  }
  async disconnect(): Promise<void> {
    this.calls.push('disconnect');
  }
  async rescan(): Promise<void> {}
  async isConnected(): Promise<boolean> {
    return true;
  }
}

interface World {
  dir: string;
  root: string;
  svc: NodeServiceImpl;
  connector: NullConnector;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'node-hostile-'));
  try {
    const root = path.join(dir, 'kubelet');
    await mkdir(path.join(root, 'pods'), { recursive: true });
    const connector = new NullConnector();
    const svc = createNodeService({
      nodeId: 'n1',
      connectors: () => connector,
      executor: new HostExecutor({ logger: silentLogger() }),
      paths: hostPaths('/'),
      stateDir: path.join(dir, 'state'),
      kubeletRoot: root,
      logger: silentLogger(),
      nodeStageSecretsMode: true,
      unmountBusyTimeoutMs: 500,
    });
    await fn({ dir, root, svc, connector });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the call; returns its gRPC code (0 for success) after checking the message is short. */
async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return status.OK;
  } catch (e) {
    assert.ok(e instanceof CsiError, `not a CsiError (would be INTERNAL): ${String(e).slice(0, 300)}`);
    assert.ok(e.message.length <= 600, `message of ${e.message.length} chars: ${e.message.slice(0, 200)}`);
    return e.code;
  }
}

const mountCap = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const blockCap = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

/** Every Node RPC that takes a path, with `p` in each path field in turn. */
function calls(svc: NodeServiceImpl, root: string, p: string) {
  const staging = path.join(root, 'staging', 'v1');
  const target = path.join(root, 'pods', 'pod1', 'v1');
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
    publishTarget: () =>
      svc.NodePublishVolume(
        {
          volume_id: 'v1',
          staging_target_path: staging,
          target_path: p,
          volume_capability: mountCap as never,
          readonly: false,
          publish_context: {},
          secrets: {},
          volume_context: {},
        },
        ctx(),
      ),
    publishStaging: () =>
      svc.NodePublishVolume(
        {
          volume_id: 'v1',
          staging_target_path: p,
          target_path: target,
          volume_capability: mountCap as never,
          readonly: false,
          publish_context: {},
          secrets: {},
          volume_context: {},
        },
        ctx(),
      ),
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
    await w.svc.NodeStageVolume(
      {
        volume_id: 'known',
        staging_target_path: staging,
        volume_capability: blockCap as never,
        publish_context: { driver_volume_type: 'rbd' },
        secrets: {},
        volume_context: {},
      },
      ctx(),
    );
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
    await w.svc.NodeStageVolume(
      {
        volume_id: 'v2',
        staging_target_path: staging,
        volume_capability: blockCap as never,
        publish_context: { driver_volume_type: 'rbd' },
        secrets: {},
        volume_context: {},
      },
      ctx(),
    );
    assert.equal(await codeOf(w.svc.NodeUnpublishVolume({ volume_id: 'v2', target_path: file }, ctx())), 0);
    assert.equal(await readFile(file, 'utf8'), 'precious user data');
    await w.svc.NodeUnstageVolume({ volume_id: 'v2', staging_target_path: staging }, ctx());
  });
});

test('CSI error table: publish without staging path, target inside staging, incompatible re-stage, capacity range, corrupt state', async () => {
  await withWorld(async (w) => {
    const staging = path.join(w.root, 'staging', 'v1');
    const stage = (mode: string) =>
      w.svc.NodeStageVolume(
        {
          volume_id: 'v1',
          staging_target_path: staging,
          volume_capability: { block: {}, access_mode: { mode } } as never,
          publish_context: { driver_volume_type: 'rbd' },
          secrets: {},
          volume_context: {},
        },
        ctx(),
      );
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
    await w.svc.NodeStageVolume(
      {
        volume_id: 'v3',
        staging_target_path: staging,
        volume_capability: blockCap as never,
        publish_context: { driver_volume_type: 'rbd' },
        secrets: {},
        volume_context: {},
      },
      ctx(),
    );
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
      w.svc.NodeStageVolume(
        {
          volume_id: 'v4',
          staging_target_path: staging,
          volume_capability: blockCap as never,
          publish_context,
          secrets: {},
          volume_context: {},
        },
        ctx(),
      );
    assert.equal(await codeOf(stage({})), status.INVALID_ARGUMENT);
    assert.equal(
      await codeOf(stage({ driver_volume_type: 'rbd', target_lun: 'x' })),
      status.INVALID_ARGUMENT,
    );
    await assert.rejects(stat(path.join(w.root, 'plugins')), { code: 'ENOENT' });
    assert.deepEqual(w.connector.calls, []);
  });
});
