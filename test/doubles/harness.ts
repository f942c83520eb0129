/**
 * Wiring for integration tests of the host connectors through the tool doubles: an executor with
 * the doubles first on PATH, a host root, a host lock, and a logger whose lines are captured so a
 * test can assert that no secret was ever logged.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { ConnectorDeps } from '../../src/host/connector-factory.ts';
import { HostExecutor } from '../../src/host/exec.ts';
import { HostLock } from '../../src/host/lock.ts';
import { hostPaths } from '../../src/host/paths.ts';
import { createLogger } from '../../src/util/logger.ts';
import { type DoublesEnv, loopSkipReason, setupDoubles } from './index.ts';
import { labAvailable } from './lab-cinder.ts';

export interface Harness {
  doubles: DoublesEnv;
  deps: ConnectorDeps;
  logLines: string[];
}

export function harness(prefix: string, extra: Partial<ConnectorDeps> = {}): Harness {
  const doubles = setupDoubles(prefix);
  const stream = new PassThrough();
  const logLines: string[] = [];
  stream.on('data', (b: Buffer) => logLines.push(b.toString()));
  const logger = createLogger({ level: 'debug', destination: stream });
  const executor = new HostExecutor({
    logger,
    pathPrepend: [doubles.bin],
    env: { ...process.env, ...doubles.env },
  });
  return {
    doubles,
    logLines,
    deps: {
      executor,
      paths: hostPaths(doubles.root),
      logger,
      lock: new HostLock({ dir: path.join(doubles.root, 'run/cinder-csi/locks') }),
      ...extra,
    },
  };
}

function ok(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** Why the iSCSI integration tests cannot run here, or undefined. */
export async function iscsiSkipReason(): Promise<string | undefined> {
  const loop = loopSkipReason();
  if (loop) return loop;
  if (!ok('tgtadm', ['--lld', 'iscsi', '--mode', 'target', '--op', 'show']))
    return 'tgtd not running (lab tgt backend)';
  if (!ok('which', ['iscsi-readcapacity16'])) return 'libiscsi-bin (iscsi-readcapacity16) not installed';
  if (!(await labAvailable())) return 'lab Cinder/Keystone not reachable on 127.0.0.1';
  return undefined;
}

/** Why the RBD integration tests cannot run here, or undefined. */
export async function rbdSkipReason(): Promise<string | undefined> {
  const loop = loopSkipReason();
  if (loop) return loop;
  if (!ok('which', ['rbd-fuse'])) return 'rbd-fuse not installed (apt-get install rbd-fuse)';
  if (!ok('which', ['fusermount'])) return 'fusermount not installed';
  if (!ok('rbd', ['ls', 'volumes'])) return 'lab Ceph (pool volumes) not reachable';
  if (!(await labAvailable())) return 'lab Cinder/Keystone not reachable on 127.0.0.1';
  return undefined;
}

/** The loop devices currently backed by `file` (losetup -j). */
export function loopsBacking(file: string): string[] {
  const r = spawnSync('losetup', ['-j', file, '-O', 'NAME', '-n'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Reads `len` bytes at `offset` of a file or device. */
export function readAt(file: string, offset: number, len: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` at `offset` of a block device and flushes it. */
export function writeAt(dev: string, offset: number, data: Buffer): void {
  const fd = openSync(dev, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function pattern(seed: string, len = 4096): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seed.charCodeAt(i % seed.length) + i) & 0xff;
  return b;
}
