import type protobuf from 'protobufjs';
import { invalidArgument } from '../csi/errors.ts';

/**
 * The CSI spec's size limits, enforced for every request in one place (the gRPC wrapper) before any
 * handler runs, so no handler sees — or echoes into a message, a log line or a Cinder URL — an
 * oversized field. Driven by csi.proto's own reflection: every string, repeated string and
 * map<string, string> field of every request message (nested ones too) has a limit, the general one
 * unless LIMIT_OVERRIDES names the field. A field added to a future csi.proto is covered without a
 * code change.
 *
 * spec "Size Limits": string 128 bytes, map<string, string> 4 KiB; per-field overrides stated in
 * csi.proto: paths ("SP SHOULD support the maximum path length allowed by the operating system" →
 * PATH_MAX), node_id 256 bytes, mount_flags 4 KiB in total. Secrets (csi_secret fields) have no
 * limit in the spec; 128 KiB bounds them here (a CHAP secret or a keyring is far smaller).
 */
export const LIMITS = {
  /** General CSI limit for a string (ids, names, fs_type, tokens, each element of a list). */
  string: 128,
  /** General CSI limit for a map<string, string>: keys and values together. */
  map: 4 * 1024,
  /** A csi_secret map (not in the spec; our bound). */
  secrets: 128 * 1024,
  /** Paths: Linux PATH_MAX. */
  path: 4096,
  /** node_id: csi.proto overrides the general limit with 256 bytes. */
  nodeId: 256,
  /** mount_flags: "The total size of this repeated field SHALL NOT exceed 4 KiB." */
  mountFlags: 4 * 1024,
  /** Entries of any repeated field (not in the spec): every loop over a caller's list is bounded. */
  listEntries: 1024,
} as const;

/**
 * Fields whose limit is not the general one, by `message full name.field`. A unit test checks that
 * every field csi.proto says "overrides the general CSI size limit" is listed here.
 */
export const LIMIT_OVERRIDES: Record<string, { bytes: number; total?: boolean }> = {
  'csi.v1.NodeStageVolumeRequest.staging_target_path': { bytes: LIMITS.path },
  'csi.v1.NodeUnstageVolumeRequest.staging_target_path': { bytes: LIMITS.path },
  'csi.v1.NodePublishVolumeRequest.staging_target_path': { bytes: LIMITS.path },
  'csi.v1.NodePublishVolumeRequest.target_path': { bytes: LIMITS.path },
  'csi.v1.NodeUnpublishVolumeRequest.target_path': { bytes: LIMITS.path },
  'csi.v1.NodeGetVolumeStatsRequest.volume_path': { bytes: LIMITS.path },
  'csi.v1.NodeGetVolumeStatsRequest.staging_target_path': { bytes: LIMITS.path },
  'csi.v1.NodeExpandVolumeRequest.volume_path': { bytes: LIMITS.path },
  'csi.v1.NodeExpandVolumeRequest.staging_target_path': { bytes: LIMITS.path },
  'csi.v1.ControllerPublishVolumeRequest.node_id': { bytes: LIMITS.nodeId },
  'csi.v1.ControllerUnpublishVolumeRequest.node_id': { bytes: LIMITS.nodeId },
  'csi.v1.VolumeCapability.MountVolume.mount_flags': { bytes: LIMITS.mountFlags, total: true },
};

type Check =
  | { kind: 'string'; field: string; bytes: number; secret: boolean }
  | { kind: 'strings'; field: string; bytes: number; total: boolean }
  | { kind: 'map'; field: string; bytes: number; secret: boolean }
  | { kind: 'message'; field: string; type: string; repeated: boolean }
  | { kind: 'list'; field: string };

/** Checks requests against LIMITS; throws INVALID_ARGUMENT naming the field (never quoting it). */
export class RequestLimits {
  readonly #plans = new Map<string, Check[]>();
  readonly #load: () => protobuf.Root;
  #root: protobuf.Root | undefined;

  /** `root` may be a function: the reflection root is then built on first use. */
  constructor(root: protobuf.Root | (() => protobuf.Root)) {
    this.#load = typeof root === 'function' ? root : () => root;
  }

  /** Builds the plans of the given request types now (off the first call's latency). */
  warm(typeNames: string[]): void {
    for (const t of typeNames) this.#plan(t);
  }

  /** Throws a CsiError (INVALID_ARGUMENT) when `message` of proto type `typeName` breaks a limit. */
  check(typeName: string, message: unknown): void {
    this.#check(typeName, message, '', 0);
  }

  #check(typeName: string, message: unknown, prefix: string, depth: number): void {
    if (message === null || typeof message !== 'object' || depth > 16) return;
    const m = message as Record<string, unknown>;
    for (const c of this.#plan(typeName)) {
      const value = m[c.field];
      if (value === undefined || value === null) continue;
      const name = `${prefix}${c.field}`;
      if (Array.isArray(value) && value.length > LIMITS.listEntries) {
        throw invalidArgument(
          `${name} has ${value.length} entries; at most ${LIMITS.listEntries} are accepted`,
        );
      }
      switch (c.kind) {
        case 'string':
          if (typeof value === 'string') checkString(name, value, c.bytes, c.secret);
          break;
        case 'strings': {
          if (!Array.isArray(value)) break;
          let total = 0;
          for (const [i, v] of value.entries()) {
            if (typeof v !== 'string') continue;
            checkString(`${name}[${i}]`, v, c.bytes, false);
            total += Buffer.byteLength(v);
          }
          if (c.total && total > c.bytes) {
            throw invalidArgument(
              `${name} is ${total} bytes in total; the CSI size limit is ${c.bytes} bytes`,
            );
          }
          break;
        }
        case 'map': {
          if (typeof value !== 'object') break;
          let total = 0;
          const entries = Object.entries(value as Record<string, unknown>);
          if (entries.length > LIMITS.listEntries) {
            throw invalidArgument(
              `${name} has ${entries.length} entries; at most ${LIMITS.listEntries} are accepted`,
            );
          }
          for (const [k, v] of entries) {
            total += Buffer.byteLength(k) + (typeof v === 'string' ? Buffer.byteLength(v) : 0);
            if (!c.secret && (k.includes('\0') || (typeof v === 'string' && v.includes('\0')))) {
              throw invalidArgument(`${name} contains a NUL byte`);
            }
          }
          if (total > c.bytes) {
            throw invalidArgument(
              `${name} is ${total} bytes in total; the CSI size limit is ${c.bytes} bytes`,
            );
          }
          break;
        }
        case 'message':
          if (c.repeated && Array.isArray(value)) {
            for (const [i, v] of value.entries()) this.#check(c.type, v, `${name}[${i}].`, depth + 1);
          } else if (!c.repeated) {
            this.#check(c.type, value, `${name}.`, depth + 1);
          }
          break;
        case 'list':
          break;
      }
    }
  }

  #plan(typeName: string): Check[] {
    const cached = this.#plans.get(typeName);
    if (cached) return cached;
    this.#root ??= this.#load();
    const plan: Check[] = [];
    this.#plans.set(typeName, plan);
    const type = this.#root.lookupType(typeName);
    const full = type.fullName.replace(/^\./, '');
    for (const field of type.fieldsArray) {
      const override = LIMIT_OVERRIDES[`${full}.${field.name}`];
      const secret =
        field.options?.['(csi_secret)'] === true || field.options?.['(csi.v1.csi_secret)'] === true;
      if (field.map) {
        plan.push({ kind: 'map', field: field.name, bytes: secret ? LIMITS.secrets : LIMITS.map, secret });
        continue;
      }
      if (field.type === 'string') {
        const bytes = override?.bytes ?? (secret ? LIMITS.secrets : LIMITS.string);
        if (field.repeated) {
          plan.push({ kind: 'strings', field: field.name, bytes, total: override?.total ?? false });
        } else {
          plan.push({ kind: 'string', field: field.name, bytes, secret });
        }
        continue;
      }
      const resolved = field.resolve().resolvedType;
      if (resolved && 'fieldsArray' in resolved) {
        const nested = resolved.fullName.replace(/^\./, '');
        plan.push({ kind: 'message', field: field.name, type: nested, repeated: field.repeated });
      } else if (field.repeated) {
        plan.push({ kind: 'list', field: field.name });
      }
    }
    return plan;
  }
}

function checkString(name: string, value: string, bytes: number, secret: boolean): void {
  // Cheap first: a string of n UTF-16 units is at most 3n bytes.
  if (value.length > bytes || (value.length * 3 > bytes && Buffer.byteLength(value) > bytes)) {
    throw invalidArgument(
      `${name} is ${Buffer.byteLength(value)} bytes; the CSI size limit for it is ${bytes} bytes`,
    );
  }
  if (!secret && value.includes('\0')) throw invalidArgument(`${name} contains a NUL byte`);
}
