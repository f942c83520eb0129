/**
 * Filesystems on block devices: probe what a device holds (blkid), format only a blank device,
 * check ext filesystems before mounting, and grow a mounted filesystem after an expansion.
 * The rule that protects user data: a device that holds anything (another filesystem, a partition
 * table, a RAID/LVM signature) is never formatted.
 */
import type { Logger } from '../util/logger.ts';
import { CommandError, type Executor } from './exec.ts';

/** Filesystems this driver creates and grows. */
export const SUPPORTED_FS_TYPES = ['ext4', 'ext3', 'xfs', 'btrfs'] as const;
export type FsType = (typeof SUPPORTED_FS_TYPES)[number];
export const DEFAULT_FS_TYPE: FsType = 'ext4';

export function isSupportedFsType(t: string): t is FsType {
  return (SUPPORTED_FS_TYPES as readonly string[]).includes(t);
}

/** What blkid found on a device. `undefined` fields: not present. */
export interface DeviceContent {
  /** Filesystem or other signature type (ext4, xfs, LVM2_member, swap, ...). */
  type?: string;
  /** Partition table type (dos, gpt). */
  ptType?: string;
  uuid?: string;
  label?: string;
}

/** The device holds something other than the requested filesystem; formatting it would lose data. */
export class FilesystemMismatchError extends Error {
  override name = 'FilesystemMismatchError';
  readonly device: string;
  readonly found: string;
  readonly wanted: string;
  constructor(device: string, found: string, wanted: string) {
    super(
      `${device} already holds ${found}, not ${wanted}; refusing to format it (data would be lost). ` +
        `Use fs_type ${found} or a blank volume.`,
    );
    this.device = device;
    this.found = found;
    this.wanted = wanted;
  }
}

/** fsck found errors it could not repair. */
export class FilesystemCorruptError extends Error {
  override name = 'FilesystemCorruptError';
}

/** Parses `blkid -o export` output (KEY=value lines). */
export function parseBlkidExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i <= 0) continue;
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

export interface FilesystemsOptions {
  executor: Executor;
  logger?: Logger;
  /** Timeout for mkfs and fsck (default 0: none; they scale with the device size). */
  longTimeoutMs?: number;
}

export class Filesystems {
  readonly #exec: Executor;
  readonly #log: Logger | undefined;
  readonly #longTimeoutMs: number;

  constructor(opts: FilesystemsOptions) {
    this.#exec = opts.executor;
    this.#log = opts.logger;
    this.#longTimeoutMs = opts.longTimeoutMs ?? 0;
  }

  /**
   * Low-level probe of the device itself (no cache): `{}` for a blank device. blkid exits 2 when it
   * finds nothing; an ambivalent result (exit 8, several signatures) is reported as not blank.
   */
  async probe(device: string, signal?: AbortSignal): Promise<DeviceContent> {
    const r = await this.#exec.run('blkid', ['-p', '-o', 'export', device], {
      okCodes: [0, 2, 8],
      timeoutMs: 60_000,
      signal,
    });
    if (r.code === 2) return {};
    if (r.code === 8) return { type: 'ambivalent (several signatures)' };
    const kv = parseBlkidExport(r.stdout);
    const content: DeviceContent = {};
    if (kv.TYPE) content.type = kv.TYPE;
    if (kv.PTTYPE) content.ptType = kv.PTTYPE;
    if (kv.UUID) content.uuid = kv.UUID;
    if (kv.LABEL) content.label = kv.LABEL;
    return content;
  }

  /**
   * Makes sure `device` holds a `fsType` filesystem: formats it only when blank; does nothing when
   * it already holds that type; throws FilesystemMismatchError when it holds anything else.
   * Returns whether it formatted.
   */
  async ensureFilesystem(
    device: string,
    fsType: FsType,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ formatted: boolean }> {
    const content = await this.probe(device, opts.signal);
    if (content.ptType)
      throw new FilesystemMismatchError(device, `a ${content.ptType} partition table`, fsType);
    if (content.type) {
      if (content.type === fsType) return { formatted: false };
      throw new FilesystemMismatchError(device, content.type, fsType);
    }
    await this.format(device, fsType, opts.signal);
    return { formatted: true };
  }

  /** Creates a filesystem. Callers must have checked the device is blank (ensureFilesystem does). */
  async format(device: string, fsType: FsType, signal?: AbortSignal): Promise<void> {
    const [cmd, args] = mkfsCommand(device, fsType);
    this.#log?.info({ device, fsType }, 'formatting blank device');
    await this.#exec.run(cmd, args, { timeoutMs: this.#longTimeoutMs, signal });
  }

  /**
   * `fsck -a` on an unmounted ext filesystem before mounting it, as Kubernetes' mount-utils does:
   * exit 1 (errors corrected) is fine, 4 and above (left uncorrected, operational error) fails.
   * Other filesystems check themselves at mount time (xfs log replay, btrfs).
   */
  async check(device: string, fsType: string, signal?: AbortSignal): Promise<void> {
    if (fsType !== 'ext4' && fsType !== 'ext3') return;
    try {
      const r = await this.#exec.run('fsck', ['-a', device], {
        okCodes: [0, 1],
        timeoutMs: this.#longTimeoutMs,
        signal,
      });
      if (r.code === 1) this.#log?.warn({ device }, 'fsck corrected filesystem errors');
    } catch (e) {
      if (e instanceof CommandError && e.code !== null && e.code >= 4) {
        throw new FilesystemCorruptError(
          `fsck found errors on ${device} it could not repair (exit ${e.code}); repair the volume manually`,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /**
   * Grows the filesystem on `device` mounted at `mountPoint` to fill the device (online):
   * resize2fs for ext, xfs_growfs on the mount point for xfs, `btrfs filesystem resize max`.
   */
  async grow(device: string, mountPoint: string, fsType: string, signal?: AbortSignal): Promise<void> {
    const opts = { timeoutMs: this.#longTimeoutMs, signal };
    switch (fsType) {
      case 'ext4':
      case 'ext3':
        await this.#exec.run('resize2fs', [device], opts);
        return;
      case 'xfs':
        await this.#exec.run('xfs_growfs', ['-d', mountPoint], opts);
        return;
      case 'btrfs':
        await this.#exec.run('btrfs', ['filesystem', 'resize', 'max', mountPoint], opts);
        return;
      default:
        throw new Error(`cannot grow a ${fsType} filesystem`);
    }
  }
}

/** The mkfs command line for a blank device: no discard pass (slow on thin storage), lazy init. */
export function mkfsCommand(device: string, fsType: FsType): [string, string[]] {
  switch (fsType) {
    case 'ext4':
    case 'ext3':
      return [
        `mkfs.${fsType}`,
        ['-F', '-m0', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', device],
      ];
    case 'xfs':
      return ['mkfs.xfs', ['-K', device]];
    case 'btrfs':
      return ['mkfs.btrfs', ['-K', device]];
  }
}

/**
 * The option that mounts a filesystem without replaying its journal/log, so a read-only mount
 * writes nothing to the device (another node may be writing it; a replay would also destroy that
 * writer's journal). ext3/4 `noload`, xfs `norecovery`, btrfs `rescue=nologreplay` (Linux 5.9+).
 */
export const NO_JOURNAL_REPLAY: Record<FsType, string> = {
  ext4: 'noload',
  ext3: 'noload',
  xfs: 'norecovery',
  btrfs: 'rescue=nologreplay',
};

/**
 * Mount options for staging a filesystem: the caller's flags, `nouuid` for xfs (clones and
 * snapshots of a volume share its UUID and must mount side by side), and for a read-only mount
 * `ro` plus no journal replay. The driver's own options come last, so a caller's `rw` cannot
 * override them (mount(8) lets the last one win).
 */
export function stagingMountOptions(fsType: string, flags: readonly string[], readOnly: boolean): string[] {
  const out = readOnly ? flags.filter((f) => f !== 'rw' && f !== 'ro') : [...flags];
  if (fsType === 'xfs' && !out.includes('nouuid')) out.push('nouuid');
  if (readOnly) {
    out.push('ro');
    const noReplay = isSupportedFsType(fsType) ? NO_JOURNAL_REPLAY[fsType] : undefined;
    if (noReplay && !out.includes(noReplay)) out.push(noReplay);
  }
  return out;
}
