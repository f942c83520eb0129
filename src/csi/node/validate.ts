/**
 * Request validation for the Node service: ids, paths (inside the kubelet root, no symlink
 * escapes) and volume capabilities. Everything here throws INVALID_ARGUMENT.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_FS_TYPE,
  type FsType,
  isSupportedFsType,
  SUPPORTED_FS_TYPES,
} from '../../host/filesystem.ts';
import {
  ACCESS_MODES,
  type AccessModeName,
  isAccessModeName,
  multiNodeWriterMountProblem,
} from '../access-modes.ts';
import { invalidArgument, notFound } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { quotePath } from './errors.ts';
import { VOLUME_ID_PATTERN } from './state.ts';

export function requireVolumeId(id: string | undefined): string {
  if (!id) throw invalidArgument('volume_id is required');
  if (!VOLUME_ID_PATTERN.test(id)) {
    throw invalidArgument('volume_id must be 1-128 characters of letters, digits, ".", "_" or "-"');
  }
  return id;
}

/** Real path of the longest existing prefix of `p`, joined with the rest. */
async function resolveExisting(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      const real = await realpath(cur);
      return rest.length === 0 ? real : path.join(real, ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return p;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

/** Linux limits: PATH_MAX is 4096 bytes with the terminating NUL, NAME_MAX 255 bytes. */
export const PATH_MAX_BYTES = 4095;
export const NAME_MAX_BYTES = 255;

/** INVALID_ARGUMENT for what no path can be: empty, a NUL byte, longer than Linux allows. */
function checkPathShape(field: string, p: string | undefined): string {
  if (!p) throw invalidArgument(`${field} is required`);
  if (p.includes('\0')) throw invalidArgument(`${field} contains a NUL byte`);
  const bytes = Buffer.byteLength(p);
  if (bytes > PATH_MAX_BYTES) {
    throw invalidArgument(`${field} is ${bytes} bytes long; a path has at most ${PATH_MAX_BYTES}`);
  }
  for (const part of p.split('/')) {
    if (Buffer.byteLength(part) > NAME_MAX_BYTES) {
      throw invalidArgument(
        `${field} ${quotePath(p)} has a component longer than ${NAME_MAX_BYTES} bytes (${quotePath(part)})`,
      );
    }
  }
  return p;
}

const inside = (x: string, r: string) => x.startsWith(`${r}/`) && x !== r;

/**
 * Checks that `p` is an absolute path strictly inside `kubeletRoot`, also after resolving
 * symlinks of its existing part. Returns the normalized path (as the CO gave it, normalized).
 */
export async function requirePathUnder(
  field: string,
  p: string | undefined,
  kubeletRoot: string,
): Promise<string> {
  checkPathShape(field, p);
  const given = p as string;
  if (!path.isAbsolute(given)) throw invalidArgument(`${field} must be an absolute path`);
  const norm = path.resolve(given);
  const root = path.resolve(kubeletRoot);
  if (!inside(norm, root)) {
    throw invalidArgument(`${field} ${quotePath(norm)} is outside the kubelet root ${quotePath(root)}`);
  }
  const realRoot = await resolveExisting(root);
  const real = await resolveExisting(norm);
  if (!inside(real, realRoot)) {
    throw invalidArgument(
      `${field} ${quotePath(norm)} resolves to ${quotePath(real)}, outside the kubelet root ${quotePath(root)}`,
    );
  }
  return norm;
}

/**
 * The `volume_path` of NodeGetVolumeStats / NodeExpandVolume: a path where the volume was staged
 * or published. A path that cannot be one (relative, outside the kubelet root, also through a
 * symlink) or that does not exist is NOT_FOUND, as the spec asks ("volume does not exist on the
 * specified path"); nothing outside the root is ever looked at. Malformed input (empty, NUL, too
 * long) stays INVALID_ARGUMENT. Returns the normalized path; the caller stats it.
 */
export async function requireVolumePath(
  field: string,
  p: string | undefined,
  kubeletRoot: string,
): Promise<string> {
  checkPathShape(field, p);
  const given = p as string;
  const absent = () =>
    notFound(`no volume at ${field} ${quotePath(given)}: no such path under the kubelet root`);
  if (!path.isAbsolute(given)) throw absent();
  const norm = path.resolve(given);
  const root = path.resolve(kubeletRoot);
  if (!inside(norm, root)) throw absent();
  const real = await resolveExisting(norm);
  if (!inside(real, await resolveExisting(root))) throw absent();
  return norm;
}

export type { AccessModeName } from '../access-modes.ts';

export interface ParsedCapability {
  accessType: 'mount' | 'block';
  accessMode: AccessModeName;
  /** The access mode only allows reading. */
  readOnly: boolean;
  /** Mount access only. */
  fsType?: FsType;
  mountFlags: string[];
}

/**
 * Validates a capability for this node. Filesystems (ext4, xfs, btrfs) are not cluster-aware, so
 * a writable multi-node mode is only accepted for block access (multiattach volumes).
 */
export function parseCapability(cap: csi.VolumeCapability__Output | null | undefined): ParsedCapability {
  if (!cap) throw invalidArgument('volume_capability is required');
  const modeName = String(cap.access_mode?.mode ?? 'UNKNOWN');
  if (!isAccessModeName(modeName)) {
    throw invalidArgument(`access mode ${modeName.slice(0, 40)} is not supported`);
  }
  const accessMode: AccessModeName = modeName;
  const mode = ACCESS_MODES[accessMode];
  if (cap.block) {
    return { accessType: 'block', accessMode, readOnly: mode.readOnly, mountFlags: [] };
  }
  if (!cap.mount) throw invalidArgument('volume_capability needs an access type (mount or block)');
  const multiWriter = multiNodeWriterMountProblem(accessMode, cap);
  if (multiWriter) throw invalidArgument(multiWriter);
  const fsType = (cap.mount.fs_type || DEFAULT_FS_TYPE).toLowerCase();
  if (!isSupportedFsType(fsType)) {
    throw invalidArgument(
      `fs_type ${fsType.slice(0, 32)} is not supported (supported: ${SUPPORTED_FS_TYPES.join(', ')})`,
    );
  }
  const mountFlags = parseMountFlags(cap.mount.mount_flags ?? []);
  if (cap.mount.volume_mount_group) {
    throw invalidArgument(
      'volume_mount_group is not supported by this driver (the node does not advertise VOLUME_MOUNT_GROUP); let the kubelet apply fsGroup',
    );
  }
  return { accessType: 'mount', accessMode, readOnly: mode.readOnly, fsType, mountFlags };
}

/** Bounds on mount flags (a StorageClass's mountOptions): more is a mistake or an attack. */
const MAX_MOUNT_FLAGS = 64;
const MAX_MOUNT_FLAG_BYTES = 256;

/**
 * Options that change what is mounted, where, or how mount(8) behaves rather than how the
 * filesystem behaves: bind/move/remount, propagation changes, loop set-up, external helpers and
 * libmount's userspace `X-`/`x-` options (X-mount.mkdir creates directories, X-mount.owner
 * chowns). The driver sets `ro` and the journal options itself.
 */
const DENIED_MOUNT_FLAG =
  /^(bind|rbind|remount|move|r?(shared|slave|private|unbindable)|loop|offset|sizelimit|encryption|helper|[xX]-.*)$/;

const quoteFlag = (f: string) => (f.length > 40 ? `${f.slice(0, 40)}...` : f);

/**
 * Splits one mount flag into the options mount(8) sees: at commas, except inside a double-quoted
 * value (`context="a:b:c0,c1"`). Undefined when the quotes do not balance.
 */
function splitOptions(flag: string): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of flag) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) return undefined;
  out.push(cur);
  return out;
}

/** One option: printable ASCII, no blanks, quotes only around a whole `name="value"` value. */
const OPTION = /^[\x21\x23-\x26\x28-\x5b\x5d-\x7e]+(="[\x20\x21\x23-\x26\x28-\x5b\x5d-\x7e]*")?$/;

/**
 * Splits each mount flag at commas (`"defaults,bind"` is two options to mount(8)) and checks every
 * option on its own. Returns the individual options.
 */
export function parseMountFlags(flags: readonly string[]): string[] {
  if (flags.length > MAX_MOUNT_FLAGS) {
    throw invalidArgument(`too many mount flags (${flags.length}; at most ${MAX_MOUNT_FLAGS})`);
  }
  const out: string[] = [];
  for (const raw of flags) {
    if (Buffer.byteLength(raw) > MAX_MOUNT_FLAG_BYTES) {
      throw invalidArgument(`mount flag '${quoteFlag(raw)}' is longer than ${MAX_MOUNT_FLAG_BYTES} bytes`);
    }
    const parts = splitOptions(raw.trim());
    if (!parts) throw invalidArgument(`mount flag '${quoteFlag(raw)}' has an unbalanced quote`);
    for (const part of parts) {
      const f = part.trim();
      if (!OPTION.test(f)) throw invalidArgument(`invalid mount flag '${quoteFlag(raw)}'`);
      const name = (f.split('=')[0] as string).toLowerCase();
      if (DENIED_MOUNT_FLAG.test(name)) throw invalidArgument(`mount flag '${quoteFlag(f)}' is not allowed`);
      out.push(f);
    }
  }
  if (out.length > MAX_MOUNT_FLAGS) {
    throw invalidArgument(`too many mount options (${out.length}; at most ${MAX_MOUNT_FLAGS})`);
  }
  return out;
}
