/**
 * Shared fixtures for the node service tests on real loop devices, real mkfs and real mounts.
 *
 * `LoopConnector` is a stand-in for the iSCSI/RBD connectors (they have their own tests against the
 * iscsiadm/rbd doubles): on connect it attaches the volume's backing file as a loop device, on
 * disconnect it detaches it, so the device appears and vanishes like a real LUN/RBD map.
 * `FakeCinder` stands in for Cinder's attachments API (getAttachment/completeAttachment only).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  createNodeService,
  type NodeServiceImpl,
  type NodeServiceOptions,
} from '../../../src/csi/node/index.ts';
import type { RpcContext } from '../../../src/csi/rpc.ts';
import type { ConnectedDevice, ConnectOptions, StorageConnector } from '../../../src/host/connector.ts';
import { HostExecutor } from '../../../src/host/exec.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import type { CinderApi } from '../../../src/openstack/cinder-api.ts';
import type { Attachment, ConnectionInfo } from '../../../src/openstack/cinder-types.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { silentLogger } from '../../../src/util/logger.ts';

export const MiB = 1024 * 1024;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The same, without blocking the event loop (what the connectors do through the host executor). */
async function shAsync(cmd: string, args: string[]): Promise<string> {
  return (await promisify(execFile)(cmd, args, { encoding: 'utf8' })).stdout.trim();
}

/** Why these tests cannot run here, or undefined when they can. */
export function rootSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (loop devices, mkfs, mount)';
  for (const tool of ['losetup', 'mkfs.ext4', 'mkfs.xfs', 'blkid', 'mount']) {
    try {
      sh('which', [tool]);
    } catch {
      return `needs ${tool} on PATH`;
    }
  }
  if (!existsSync('/dev/loop-control')) return 'needs loop device support (/dev/loop-control)';
  return undefined;
}

export function ctx(): RpcContext {
  return {
    signal: new AbortController().signal,
    deadline: undefined,
    requestId: 'test',
    log: silentLogger(),
  };
}

/** Loop devices currently backed by `file`. */
export function loopsOf(file: string): string[] {
  const out = sh('losetup', ['-j', file, '-O', 'NAME', '-n']);
  return out === '' ? [] : out.split('\n').map((l) => l.trim());
}

/** Loop devices backed by `file`, found through sysfs like a real connector finds its devices (no spawn). */
export async function loopsBackingSysfs(file: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir('/sys/block')) {
    if (!name.startsWith('loop')) continue;
    const backing = await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => '');
    if (backing.trim() === file) out.push(`/dev/${name}`);
  }
  return out;
}

/**
 * Detaches a loop device after clearing a `blockdev --setro` mark: the mark stays with the loop
 * device node and would make it read-only for its next user (another test, another engineer).
 */
export function detachLoop(dev: string): void {
  try {
    sh('blockdev', ['--setrw', dev]);
  } catch {
    /* gone already */
  }
  sh('losetup', ['-d', dev]);
}

export class LoopConnector implements StorageConnector {
  readonly protocol = 'iscsi' as const;
  readonly calls: string[] = [];
  /** Resolves before connect proceeds (to hold a stage in flight). */
  gate: Promise<void> | undefined;
  readonly #files: Map<string, string>;

  constructor(files: Map<string, string>) {
    this.#files = files;
  }

  async connect(info: ConnectionInfo, opts: ConnectOptions): Promise<ConnectedDevice> {
    this.calls.push(`connect ${opts.volumeId}`);
    if (this.gate) await this.gate;
    const file = this.#files.get(String(info.target_iqn));
    if (!file) throw new Error(`no backing file for ${String(info.target_iqn)}`);
    const existing = (await loopsBackingSysfs(file))[0];
    const devicePath = existing ?? (await shAsync('losetup', ['-f', '--show', file]));
    return { protocol: 'iscsi', devicePath, details: { backingFile: file, iqn: info.target_iqn } };
  }

  async disconnect(dev: ConnectedDevice): Promise<void> {
    this.calls.push(`disconnect ${dev.devicePath}`);
    for (const l of await loopsBackingSysfs(String(dev.details.backingFile))) {
      // See detachLoop; the mark is read from sysfs, so a read-write device costs no command.
      const ro = await readFile(`/sys/block/${path.basename(l)}/ro`, 'utf8').catch(() => '0');
      if (ro.trim() === '1') await shAsync('blockdev', ['--setrw', l]).catch(() => undefined);
      await shAsync('losetup', ['-d', l]);
    }
  }

  async rescan(dev: ConnectedDevice): Promise<void> {
    this.calls.push(`rescan ${dev.devicePath}`);
    sh('losetup', ['-c', dev.devicePath]);
  }

  async isConnected(dev: ConnectedDevice): Promise<boolean> {
    return (await loopsBackingSysfs(String(dev.details.backingFile))).includes(dev.devicePath);
  }
}

export const CHAP_PASSWORD = 'chap-Secret-9f3e1c';

export class FakeCinder {
  readonly completed: string[] = [];
  readonly attachments = new Map<string, Attachment>();

  add(attachmentId: string, volumeId: string, iqn: string): void {
    this.attachments.set(attachmentId, {
      id: attachmentId,
      status: 'reserved',
      instance: null,
      volume_id: volumeId,
      attached_at: null,
      detached_at: null,
      attach_mode: 'rw',
      connection_info: {
        driver_volume_type: 'iscsi',
        target_portal: '127.0.0.1:3260',
        target_iqn: iqn,
        target_lun: 1,
        auth_method: 'CHAP',
        auth_username: 'chap-user',
        auth_password: CHAP_PASSWORD,
      },
    });
  }

  api(): CinderApi {
    const self = this;
    const partial: Partial<CinderApi> = {
      async getAttachment(id) {
        const a = self.attachments.get(id);
        if (!a) {
          throw new OpenStackError({
            status: 404,
            faultMessage: `Attachment ${id} could not be found.`,
            method: 'GET',
            url: `http://cinder.test/v3/p/attachments/${id}`,
          });
        }
        return structuredClone(a);
      },
      async completeAttachment(id) {
        self.completed.push(id);
        const a = self.attachments.get(id);
        if (a) a.status = 'attached';
      },
    };
    return partial as CinderApi;
  }
}

/** A temp world: kubelet root, state dir, backing files, a connector, a Cinder double. */
export class World {
  readonly dir: string;
  readonly kubeletRoot: string;
  readonly stateDir: string;
  readonly files = new Map<string, string>();
  readonly connector: LoopConnector;
  readonly cinder = new FakeCinder();
  readonly executor = new HostExecutor({ logger: silentLogger() });
  #n = 0;

  private constructor(dir: string) {
    this.dir = dir;
    this.kubeletRoot = path.join(dir, 'kubelet');
    this.stateDir = path.join(dir, 'state');
    this.connector = new LoopConnector(this.files);
  }

  static async create(): Promise<World> {
    const w = new World(await mkdtemp(path.join(tmpdir(), 'node-csi-test-')));
    await mkdir(w.kubeletRoot, { recursive: true });
    return w;
  }

  service(extra: Partial<NodeServiceOptions> = {}): NodeServiceImpl {
    return createNodeService({
      nodeId: 'node-a',
      cinder: this.cinder.api(),
      connectors: () => this.connector,
      executor: this.executor,
      paths: hostPaths('/'),
      stateDir: this.stateDir,
      kubeletRoot: this.kubeletRoot,
      logger: silentLogger(),
      unmountBusyTimeoutMs: 2000,
      ...extra,
    });
  }

  /** A new sparse "volume": backing file + Cinder attachment. */
  async volume(sizeMiB: number): Promise<Vol> {
    const n = ++this.#n;
    const id = `vol-${n}-${process.pid}`;
    const file = path.join(this.dir, `${id}.img`);
    await mkdir(path.dirname(file), { recursive: true });
    sh('truncate', ['-s', `${sizeMiB}M`, file]);
    const iqn = `iqn.2010-10.org.openstack:${id}`;
    this.files.set(iqn, file);
    const attachmentId = `att-${n}`;
    this.cinder.add(attachmentId, id, iqn);
    return {
      id,
      file,
      attachmentId,
      staging: path.join(this.kubeletRoot, 'plugins/kubernetes.io/csi/cinder/staging', id, 'globalmount'),
      target: (pod = 'pod1') =>
        path.join(this.kubeletRoot, 'pods', pod, 'volumes/kubernetes.io~csi', id, 'mount'),
      publishContext: { attachment_id: attachmentId },
    };
  }

  /** Unmounts everything under the temp dir (deepest first) and detaches its loop devices. */
  async cleanup(): Promise<void> {
    const mounts = sh('findmnt', ['-rn', '-o', 'TARGET'])
      .split('\n')
      .map((m) => m.replace(/\\x20/g, ' '))
      .filter((m) => m.startsWith(`${this.dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) {
      try {
        sh('umount', ['-l', m]);
      } catch {
        /* already gone */
      }
    }
    for (const file of this.files.values()) {
      for (const l of loopsOf(file)) {
        try {
          detachLoop(l);
        } catch {
          /* already gone */
        }
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface Vol {
  id: string;
  file: string;
  attachmentId: string;
  staging: string;
  target: (pod?: string) => string;
  publishContext: Record<string, string>;
}

export function mountCap(fsType = 'ext4', mode = 'SINGLE_NODE_WRITER', flags: string[] = []) {
  return {
    mount: { fs_type: fsType, mount_flags: flags, volume_mount_group: '' },
    access_mode: { mode },
    access_type: 'mount',
  } as const;
}

export function blockCap(mode = 'SINGLE_NODE_WRITER') {
  return { block: {}, access_mode: { mode }, access_type: 'block' } as const;
}

export { sh, shAsync };

type Cap = ReturnType<typeof mountCap> | ReturnType<typeof blockCap>;

export const req = {
  stage: (v: Vol, cap: Cap) => ({
    volume_id: v.id,
    publish_context: v.publishContext,
    staging_target_path: v.staging,
    volume_capability: cap as never,
    secrets: {},
    volume_context: {},
  }),
  unstage: (v: Vol) => ({ volume_id: v.id, staging_target_path: v.staging }),
  publish: (v: Vol, cap: Cap, target: string, readonly = false) => ({
    volume_id: v.id,
    publish_context: v.publishContext,
    staging_target_path: v.staging,
    target_path: target,
    volume_capability: cap as never,
    readonly,
    secrets: {},
    volume_context: {},
  }),
  unpublish: (v: Vol, target: string) => ({ volume_id: v.id, target_path: target }),
  stats: (v: Vol, volumePath: string) => ({
    volume_id: v.id,
    volume_path: volumePath,
    staging_target_path: v.staging,
  }),
  expand: (v: Vol, volumePath: string, requiredBytes: number, cap?: Cap) => ({
    volume_id: v.id,
    volume_path: volumePath,
    capacity_range: { required_bytes: String(requiredBytes), limit_bytes: '0' },
    staging_target_path: v.staging,
    volume_capability: (cap ?? null) as never,
    secrets: {},
  }),
};
