/**
 * Node service logic that needs no root: info, capabilities, the state store, and a block-access
 * stage/unstage in node-stage-secrets mode (nothing is mounted for block staging). The connector
 * is a recording double; the real connectors have their own tests.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createNodeService, DEFAULT_MAX_VOLUMES_PER_NODE, StateStore } from '../../../src/csi/node/index.ts';
import type { RpcContext } from '../../../src/csi/rpc.ts';
import type { ConnectedDevice, ConnectOptions, StorageConnector } from '../../../src/host/connector.ts';
import { HostExecutor } from '../../../src/host/exec.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import type { ConnectionInfo } from '../../../src/openstack/cinder-types.ts';
import { silentLogger } from '../../../src/util/logger.ts';

const ctx = (): RpcContext => ({
  signal: new AbortController().signal,
  deadline: undefined,
  requestId: 't',
  log: silentLogger(),
});

class RecordingConnector implements StorageConnector {
  readonly protocol = 'rbd' as const;
  readonly calls: { op: string; info?: ConnectionInfo; secrets?: Record<string, string> }[] = [];
  connected = false;
  async connect(info: ConnectionInfo, opts: ConnectOptions): Promise<ConnectedDevice> {
    this.calls.push({ op: 'connect', info, ...(opts.secrets ? { secrets: opts.secrets } : {}) });
    this.connected = true;
    return {
      protocol: 'rbd',
      devicePath: '/dev/rbd-test-does-not-exist',
      details: { pool: 'volumes', image: 'v' },
    };
  }
  async disconnect(): Promise<void> {
    this.calls.push({ op: 'disconnect' });
    this.connected = false;
  }
  async rescan(): Promise<void> {}
  async isConnected(): Promise<boolean> {
    return this.connected;
  }
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(path.join(tmpdir(), 'node-unit-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const common = (dir: string, connector: StorageConnector) => ({
  nodeId: 'worker-1',
  connectors: () => connector,
  executor: new HostExecutor({ logger: silentLogger() }),
  paths: hostPaths('/'),
  stateDir: path.join(dir, 'state'),
  kubeletRoot: path.join(dir, 'kubelet'),
  logger: silentLogger(),
});

test('NodeGetInfo and NodeGetCapabilities', async () => {
  await withDir(async (dir) => {
    const svc = createNodeService({
      ...common(dir, new RecordingConnector()),
      nodeStageSecretsMode: true,
      topology: { key: 'topology.cinder.csi.openstack.org/zone', zone: 'az-1' },
    });
    assert.deepEqual(await svc.NodeGetInfo({}, ctx()), {
      node_id: 'worker-1',
      max_volumes_per_node: String(DEFAULT_MAX_VOLUMES_PER_NODE),
      accessible_topology: { segments: { 'topology.cinder.csi.openstack.org/zone': 'az-1' } },
    });
    const caps = (await svc.NodeGetCapabilities({}, ctx())).capabilities?.map((c) => c.rpc?.type);
    assert.deepEqual(caps, [
      'STAGE_UNSTAGE_VOLUME',
      'EXPAND_VOLUME',
      'GET_VOLUME_STATS',
      'VOLUME_CONDITION',
      'SINGLE_NODE_MULTI_WRITER',
    ]);
    const noZone = createNodeService({
      ...common(dir, new RecordingConnector()),
      nodeStageSecretsMode: true,
      maxVolumesPerNode: 16,
    });
    assert.deepEqual(await noZone.NodeGetInfo({}, ctx()), {
      node_id: 'worker-1',
      max_volumes_per_node: '16',
    });
    assert.throws(() =>
      createNodeService({
        ...common(dir, new RecordingConnector()),
        maxVolumesPerNode: 0,
        nodeStageSecretsMode: true,
      }),
    );
    assert.throws(() => createNodeService(common(dir, new RecordingConnector())), /Cinder client/);
  });
});

test('block stage/unstage in node-stage-secrets mode: secrets go to the connector, never to the state file', async () => {
  await withDir(async (dir) => {
    const connector = new RecordingConnector();
    const svc = createNodeService({ ...common(dir, connector), nodeStageSecretsMode: true });
    const staging = path.join(dir, 'kubelet/plugins/staging/v1');
    const request = {
      volume_id: 'v1',
      publish_context: {
        driver_volume_type: 'rbd',
        name: 'volumes/volume-v1',
        hosts: '10.0.0.5',
        ports: '6789',
      },
      staging_target_path: staging,
      volume_capability: {
        block: {},
        access_mode: { mode: 'SINGLE_NODE_WRITER' },
        access_type: 'block',
      } as never,
      secrets: { keyring: '[client.cinder]\n\tkey = AQBsecretsecret==\n' },
      volume_context: {},
    };
    await svc.NodeStageVolume(request, ctx());
    assert.equal(connector.calls[0]?.op, 'connect');
    assert.deepEqual(connector.calls[0]?.secrets, request.secrets);
    assert.equal(connector.calls[0]?.info?.name, 'volumes/volume-v1');
    const file = path.join(dir, 'state', 'v1.json');
    const text = await readFile(file, 'utf8');
    assert.ok(!text.includes('AQBsecretsecret'));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const st = JSON.parse(text);
    assert.equal(st.accessType, 'block');
    assert.equal(st.staged, true);

    await svc.NodeStageVolume(request, ctx()); // idempotent: still connected
    assert.equal(connector.calls.length, 1);

    await svc.NodeUnstageVolume({ volume_id: 'v1', staging_target_path: staging }, ctx());
    await svc.NodeUnstageVolume({ volume_id: 'v1', staging_target_path: staging }, ctx());
    assert.deepEqual(
      connector.calls.map((c) => c.op),
      ['connect', 'disconnect'],
    );
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });
});

test('StateStore: redacts secret-named details, rejects unsafe ids and foreign files', async () => {
  await withDir(async (dir) => {
    const store = new StateStore(path.join(dir, 's'));
    await store.put({
      version: 1,
      volumeId: 'v-1',
      attachmentCompleted: false,
      device: { protocol: 'iscsi', devicePath: '/dev/sdb', details: { iqn: 'iqn.x', auth_password: 'leak' } },
      accessType: 'mount',
      fsType: 'ext4',
      stagingPath: '/var/lib/kubelet/x',
      readOnly: false,
      accessMode: 'SINGLE_NODE_WRITER',
      targets: [],
      staged: true,
      updatedAt: '',
    });
    const got = await store.get('v-1');
    assert.equal(got?.device.details.auth_password, '[REDACTED]');
    assert.equal(got?.device.details.iqn, 'iqn.x');
    assert.deepEqual(await store.list(), ['v-1']);
    assert.equal(await store.get('missing'), undefined);
    await assert.rejects(store.get('../x'), /unsafe volume id/);
    await writeFile(path.join(dir, 's', 'v-2.json'), '{"version":1,"volumeId":"other"}');
    await assert.rejects(store.get('v-2'), /not in the expected format/);
  });
});
