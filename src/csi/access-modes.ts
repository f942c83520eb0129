/**
 * What each CSI access mode allows, shared by the Node and Controller services so both refuse the
 * same capabilities with the same reason. Pure data and functions (no I/O): any layer at or above
 * src/csi may import it.
 */

/** Every access mode this driver knows, with whether it only reads and whether it spans nodes. */
export const ACCESS_MODES = {
  SINGLE_NODE_WRITER: { readOnly: false, multiNode: false },
  SINGLE_NODE_SINGLE_WRITER: { readOnly: false, multiNode: false },
  SINGLE_NODE_MULTI_WRITER: { readOnly: false, multiNode: false },
  SINGLE_NODE_READER_ONLY: { readOnly: true, multiNode: false },
  MULTI_NODE_READER_ONLY: { readOnly: true, multiNode: true },
  MULTI_NODE_SINGLE_WRITER: { readOnly: false, multiNode: true },
  MULTI_NODE_MULTI_WRITER: { readOnly: false, multiNode: true },
} as const;

export type AccessModeName = keyof typeof ACCESS_MODES;

export function isAccessModeName(mode: string): mode is AccessModeName {
  return Object.hasOwn(ACCESS_MODES, mode);
}

/** The filesystem used when a mount capability names none (keep in sync with host/filesystem.ts). */
const DEFAULT_FS = 'ext4';

/**
 * Why a capability cannot be served because a filesystem would be written from several nodes
 * (ext4, xfs and btrfs are not cluster-aware: two writers corrupt them), or undefined when it can.
 * Only a writable multi-node mode with mount access is refused; block access is fine (the
 * application coordinates its writers). `fsType` is the capability's `mount.fs_type` ('' for the
 * default). The Node service answers INVALID_ARGUMENT with this text in NodeStage/NodePublish; the
 * Controller uses the same text to refuse the capability before anything is attached.
 */
export function multiNodeWriterMountProblem(
  mode: string,
  access: { mount?: { fs_type?: string } | null; block?: unknown } | null | undefined,
): string | undefined {
  if (!access?.mount || access.block) return undefined;
  if (!isAccessModeName(mode)) return undefined;
  const m = ACCESS_MODES[mode];
  if (!m.multiNode || m.readOnly) return undefined;
  const fs = (access.mount.fs_type || DEFAULT_FS).slice(0, 32);
  return `access mode ${mode} needs block access: a ${fs} filesystem cannot be written from several nodes`;
}
