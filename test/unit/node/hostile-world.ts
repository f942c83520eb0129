/**
 * The world of the hostile-input node tests (hostile-paths.test.ts, hostile-targets.test.ts): a
 * node service on a temporary kubelet root with a recording connector that connects nothing
 * (block access only, device paths that do not exist), and the helpers to read its answers.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../../src/csi/errors.ts';
import { createNodeService, type NodeServiceImpl } from '../../../src/csi/node/index.ts';
import type { RpcContext } from '../../../src/csi/rpc.ts';
import type { ConnectedDevice, StorageConnector } from '../../../src/host/connector.ts';
import { HostExecutor } from '../../../src/host/exec.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import { silentLogger } from '../../../src/util/logger.ts';

export const ctx = (): RpcContext => ({
  signal: new AbortController().signal,
  deadline: undefined,
  requestId: 't',
  log: silentLogger(),
});

export class NullConnector implements StorageConnector {
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

export interface World {
  dir: string;
  root: string;
  svc: NodeServiceImpl;
  connector: NullConnector;
}

export async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
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
export async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return status.OK;
  } catch (e) {
    assert.ok(e instanceof CsiError, `not a CsiError (would be INTERNAL): ${String(e).slice(0, 300)}`);
    assert.ok(e.message.length <= 600, `message of ${e.message.length} chars: ${e.message.slice(0, 200)}`);
    return e.code;
  }
}

export const mountCap = {
  mount: { fs_type: 'ext4', mount_flags: [] },
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
};
export const blockCap = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

/** NodeStageVolume of `volumeId` for block access at `staging` (nothing is mounted for block). */
export function stageBlock(
  w: World,
  volumeId: string,
  staging: string,
  opts: { mode?: string; publish_context?: Record<string, string> } = {},
) {
  return w.svc.NodeStageVolume(
    {
      volume_id: volumeId,
      staging_target_path: staging,
      volume_capability: { block: {}, access_mode: { mode: opts.mode ?? 'SINGLE_NODE_WRITER' } } as never,
      publish_context: opts.publish_context ?? { driver_volume_type: 'rbd' },
      secrets: {},
      volume_context: {},
    },
    ctx(),
  );
}
