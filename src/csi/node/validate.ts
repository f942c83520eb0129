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
import { invalidArgument } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
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

/**
 * Checks that `p` is an absolute path strictly inside `kubeletRoot`, also after resolving
 * symlinks of its existing part. Returns the normalized path (as the CO gave it, normalized).
 */
export async function requirePathUnder(
  field: string,
  p: string | undefined,
  kubeletRoot: string,
): Promise<string> {
  if (!p) throw invalidArgument(`${field} is required`);
  if (!path.isAbsolute(p)) throw invalidArgument(`${field} must be an absolute path`);
  if (p.includes('\0')) throw invalidArgument(`${field} contains a NUL byte`);
  const norm = path.resolve(p);
  const root = path.resolve(kubeletRoot);
  const inside = (x: string, r: string) => x.startsWith(`${r}/`) && x !== r;
  if (!inside(norm, root)) throw invalidArgument(`${field} ${norm} is outside the kubelet root ${root}`);
  const realRoot = await resolveExisting(root);
  const real = await resolveExisting(norm);
  if (!inside(real, realRoot)) {
    throw invalidArgument(`${field} ${norm} resolves to ${real}, outside the kubelet root ${root}`);
  }
  return norm;
}

const MODES = {
  SINGLE_NODE_WRITER: { readOnly: false, multiNode: false },
  SINGLE_NODE_SINGLE_WRITER: { readOnly: false, multiNode: false },
  SINGLE_NODE_MULTI_WRITER: { readOnly: false, multiNode: false },
  SINGLE_NODE_READER_ONLY: { readOnly: true, multiNode: false },
  MULTI_NODE_READER_ONLY: { readOnly: true, multiNode: true },
  MULTI_NODE_SINGLE_WRITER: { readOnly: false, multiNode: true },
  MULTI_NODE_MULTI_WRITER: { readOnly: false, multiNode: true },
} as const;

export type AccessModeName = keyof typeof MODES;

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
  if (!(modeName in MODES)) throw invalidArgument(`access mode ${modeName} is not supported`);
  const accessMode = modeName as AccessModeName;
  const mode = MODES[accessMode];
  if (cap.block) {
    return { accessType: 'block', accessMode, readOnly: mode.readOnly, mountFlags: [] };
  }
  if (!cap.mount) throw invalidArgument('volume_capability needs an access type (mount or block)');
  if (mode.multiNode && !mode.readOnly) {
    throw invalidArgument(
      `access mode ${accessMode} needs block access: a ${cap.mount.fs_type || DEFAULT_FS_TYPE} filesystem cannot be written from several nodes`,
    );
  }
  const fsType = (cap.mount.fs_type || DEFAULT_FS_TYPE).toLowerCase();
  if (!isSupportedFsType(fsType)) {
    throw invalidArgument(`fs_type ${fsType} is not supported (supported: ${SUPPORTED_FS_TYPES.join(', ')})`);
  }
  const mountFlags = (cap.mount.mount_flags ?? []).map((f) => f.trim());
  for (const f of mountFlags) {
    if (f === '' || /[\s\0]/.test(f)) throw invalidArgument(`invalid mount flag '${f}'`);
    if (/^(bind|rbind|remount|move)$/.test(f)) throw invalidArgument(`mount flag '${f}' is not allowed`);
  }
  if (cap.mount.volume_mount_group) {
    throw invalidArgument(
      'volume_mount_group is not supported by this driver (the node does not advertise VOLUME_MOUNT_GROUP); let the kubelet apply fsGroup',
    );
  }
  return { accessType: 'mount', accessMode, readOnly: mode.readOnly, fsType, mountFlags };
}
