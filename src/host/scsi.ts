/**
 * SCSI/iSCSI device discovery by sysfs, under HostPaths so tests can use a prepared tree:
 *   /sys/class/iscsi_session/sessionN/targetname                       → IQN
 *   /sys/class/iscsi_session/sessionN/device/targetH:C:T/H:C:T:L/block/sdX → the LUN's block device
 *   /sys/block/sdX/holders/dm-N                                        → multipath map over the path
 *   /dev/disk/by-path/ip-PORTAL-iscsi-IQN-lun-L                        → fallback link to the device
 * Writes to sysfs control files (scan, delete, rescan) go through the executor as `tee -a FILE`
 * like os-brick does, so they run in the host namespace (wrapper) and tests can observe them.
 */
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Executor } from './exec.ts';
import type { HostPaths } from './paths.ts';

export interface ScsiAddress {
  host: number;
  channel: number;
  target: number;
  lun: number;
}

export interface LunDevice extends ScsiAddress {
  /** Kernel block device name, e.g. sdb (loop3 under test). */
  name: string;
}

const HCTL = /^(\d+):(\d+):(\d+):(\d+)$/;

export function parseHctl(s: string): ScsiAddress | undefined {
  const m = HCTL.exec(s);
  if (!m) return undefined;
  return { host: Number(m[1]), channel: Number(m[2]), target: Number(m[3]), lun: Number(m[4]) };
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function readTrim(p: string): Promise<string | undefined> {
  try {
    return (await readFile(p, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export class Sysfs {
  readonly #paths: HostPaths;
  readonly #exec: Executor;

  constructor(paths: HostPaths, exec: Executor) {
    this.#paths = paths;
    this.#exec = exec;
  }

  get paths(): HostPaths {
    return this.#paths;
  }

  sessionDir(sid: number): string {
    return this.#paths.sys(`class/iscsi_session/session${sid}`);
  }

  async sessionTargetName(sid: number): Promise<string | undefined> {
    return readTrim(path.join(this.sessionDir(sid), 'targetname'));
  }

  /** Every LUN of the session that has a block device, from the session's SCSI targets. */
  async sessionLuns(sid: number): Promise<LunDevice[]> {
    const dev = path.join(this.sessionDir(sid), 'device');
    const out: LunDevice[] = [];
    for (const t of await list(dev)) {
      if (!t.startsWith('target')) continue;
      for (const l of await list(path.join(dev, t))) {
        const addr = parseHctl(l);
        if (!addr) continue;
        const blocks = await list(path.join(dev, t, l, 'block'));
        for (const name of blocks) out.push({ ...addr, name });
      }
    }
    return out.sort((a, b) => a.lun - b.lun || a.name.localeCompare(b.name));
  }

  async findLun(sid: number, lun: number): Promise<LunDevice | undefined> {
    return (await this.sessionLuns(sid)).find((d) => d.lun === lun);
  }

  /**
   * SCSI host number of a session: from its target directories, else (before the first scan)
   * from /sys/class/iscsi_host/hostH/device/sessionN, as os-brick does.
   */
  async sessionHost(sid: number): Promise<number | undefined> {
    for (const t of await list(path.join(this.sessionDir(sid), 'device'))) {
      const m = /^target(\d+):\d+:\d+$/.exec(t);
      if (m) return Number(m[1]);
    }
    const hostsDir = this.#paths.sys('class/iscsi_host');
    for (const h of await list(hostsDir)) {
      const m = /^host(\d+)$/.exec(h);
      if (m && (await exists(path.join(hostsDir, h, 'device', `session${sid}`)))) return Number(m[1]);
    }
    return undefined;
  }

  /** /dev/disk/by-path link for an iSCSI LUN, resolved to a host device path, if present. */
  async byPath(portal: string, iqn: string, lun: number): Promise<string | undefined> {
    const link = this.#paths.dev(`disk/by-path/ip-${portal}-iscsi-${iqn}-lun-${lun}`);
    try {
      const target = await readlink(link);
      const resolved = path.isAbsolute(target)
        ? target
        : this.#paths.toHost(path.resolve(path.dirname(link), target));
      return resolved;
    } catch {
      return undefined;
    }
  }

  /** Multipath holders (dm-N) of a block device. */
  async holders(name: string): Promise<string[]> {
    return (await list(this.#paths.sys(`block/${name}/holders`))).filter((h) => h.startsWith('dm-'));
  }

  /** The multipath map name of dm-N (/sys/block/dm-N/dm/name). */
  async dmName(dm: string): Promise<string | undefined> {
    return readTrim(this.#paths.sys(`block/${dm}/dm/name`));
  }

  /** Device present: its sysfs block dir and its /dev node exist. */
  async blockExists(name: string): Promise<boolean> {
    return (
      (await exists(this.#paths.sys(`block/${name}`))) && (await exists(this.#paths.dev(`/dev/${name}`)))
    );
  }

  async #write(file: string, value: string, signal?: AbortSignal): Promise<void> {
    await this.#exec.run('tee', ['-a', file], { input: value, timeoutMs: 30_000, signal });
  }

  /** Asks the SCSI host to scan one LUN: `echo 'C T L' > /sys/class/scsi_host/hostH/scan` ('-' = wildcard). */
  async scanHost(
    host: number,
    lun: number,
    ct: { channel?: number; target?: number } = {},
    signal?: AbortSignal,
  ) {
    const c = ct.channel ?? '-';
    const t = ct.target ?? '-';
    await this.#write(this.#paths.sys(`class/scsi_host/host${host}/scan`), `${c} ${t} ${lun}\n`, signal);
  }

  /** Removes a SCSI device from the kernel: `echo 1 > /sys/block/sdX/device/delete`. */
  async deleteDevice(name: string, signal?: AbortSignal): Promise<void> {
    await this.#write(this.#paths.sys(`block/${name}/device/delete`), '1\n', signal);
  }

  /** Re-reads the device's capacity: `echo 1 > /sys/block/sdX/device/rescan`. */
  async rescanDevice(name: string, signal?: AbortSignal): Promise<void> {
    await this.#write(this.#paths.sys(`block/${name}/device/rescan`), '1\n', signal);
  }
}
