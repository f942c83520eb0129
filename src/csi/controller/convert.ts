/**
 * Conversions between Cinder objects and CSI messages: sizes, topology, volume condition,
 * published nodes.
 */

import type { Backup, Snapshot, Volume } from '../../openstack/cinder-types.ts';
import { invalidArgument, outOfRange } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import type { Timestamp } from '../generated/google/protobuf/Timestamp.ts';
import { int64, toInt64 } from '../rpc.ts';
import { BACKUP_ID_PREFIX, type Controller, META } from './context.ts';

export const GiB = 1024n ** 3n;

/**
 * The size in whole GiB for a CSI capacity range: `required_bytes` rounded up, default 1 GiB;
 * OUT_OF_RANGE when that does not fit under `limit_bytes`. `minGiB` raises the result (a
 * source's size) when the limit allows.
 */
export function sizeGiB(range: csi.CapacityRange__Output | null | undefined, minGiB = 1): number {
  const required = int64(range?.required_bytes);
  const limit = int64(range?.limit_bytes);
  if (required < 0n || limit < 0n) throw invalidArgument('capacity_range: negative sizes are not allowed');
  if (limit > 0n && required > limit) {
    throw invalidArgument(`capacity_range: required_bytes ${required} exceeds limit_bytes ${limit}`);
  }
  let gib = required === 0n ? 1n : (required + GiB - 1n) / GiB;
  if (gib < BigInt(minGiB)) gib = BigInt(minGiB);
  if (limit > 0n && gib * GiB > limit) {
    throw outOfRange(
      `capacity_range: Cinder allocates whole GiB; ${gib} GiB (${gib * GiB} bytes) exceeds limit_bytes ${limit}`,
    );
  }
  return Number(gib);
}

/** True when a volume of `gib` satisfies the range (for idempotent re-creates). */
export function sizeFits(gib: number, range: csi.CapacityRange__Output | null | undefined): boolean {
  const bytes = BigInt(gib) * GiB;
  const required = int64(range?.required_bytes);
  const limit = int64(range?.limit_bytes);
  return bytes >= required && (limit === 0n || bytes <= limit);
}

export const bytesOf = (gib: number): string => toInt64(BigInt(gib) * GiB);

/** The zone a CreateVolume asks for: parameter `availability`, else preferred, else requisite. */
export function requestedZone(
  c: Controller,
  param: string | undefined,
  req: csi.TopologyRequirement__Output | null | undefined,
): string | undefined {
  if (param) return param;
  for (const t of [...(req?.preferred ?? []), ...(req?.requisite ?? [])]) {
    const zone = t.segments?.[c.topologyKey];
    if (zone) return zone;
  }
  return undefined;
}

/**
 * accessible_topology of a volume: its actual Cinder zone; with ignoreVolumeAZ (Cinder zones that
 * do not match the compute zones) the zone that was requested, if any.
 */
export function topologyOf(c: Controller, v: Volume, requested?: string): csi.Topology[] {
  const zone = c.ignoreVolumeAZ ? requested : (v.availability_zone ?? undefined);
  return zone ? [{ segments: { [c.topologyKey]: zone } }] : [];
}

/**
 * Cinder's view shows a volume's snapshot or source volume but not a backup it was restored from:
 * that comes from the driver's source record (metadata `cinder.csi.dev/source`).
 */
export function contentSourceOf(v: Volume): csi.VolumeContentSource | null {
  if (v.snapshot_id) return { snapshot: { snapshot_id: v.snapshot_id } };
  const recorded = v.metadata?.[META.source];
  if (recorded?.startsWith(BACKUP_ID_PREFIX)) return { snapshot: { snapshot_id: recorded } };
  if (v.backup_id) return { snapshot: { snapshot_id: `${BACKUP_ID_PREFIX}${v.backup_id}` } };
  if (v.source_volid) return { volume: { volume_id: v.source_volid } };
  return null;
}

export function toCsiVolume(c: Controller, v: Volume, requestedZone?: string): csi.Volume {
  return {
    volume_id: v.id,
    capacity_bytes: bytesOf(v.size),
    volume_context: {},
    content_source: contentSourceOf(v),
    accessible_topology: topologyOf(c, v, requestedZone),
  };
}

/** Nodes a volume is published to: completed attachments' hosts plus the controller's own records. */
export function publishedNodes(v: Volume): string[] {
  const nodes = new Set<string>();
  for (const a of v.attachments ?? []) if (a.host_name) nodes.add(a.host_name);
  for (const [k, node] of Object.entries(v.metadata ?? {})) {
    if (k.startsWith(META.attachmentPrefix) && node) nodes.add(node);
  }
  return [...nodes].sort();
}

const TRANSITIONAL = new Set([
  'creating',
  'attaching',
  'detaching',
  'reserved',
  'deleting',
  'extending',
  'retyping',
  'backing-up',
  'restoring-backup',
  'downloading',
  'uploading',
  'maintenance',
]);

/** A transitional status older than this is reported as stuck. */
export const STUCK_AFTER_MS = 15 * 60_000;

/** VOLUME_CONDITION: abnormal for error states and for transitional states that do not end. */
export function conditionOf(v: Volume, now = Date.now()): csi.VolumeCondition {
  const status = String(v.status);
  if (status.startsWith('error')) {
    return {
      abnormal: true,
      message: `Cinder volume status is ${status}; an operator must repair or delete it`,
    };
  }
  if (TRANSITIONAL.has(status)) {
    const since = parseCinderTime(v.updated_at ?? v.created_at);
    if (Number.isFinite(since) && now - since > STUCK_AFTER_MS) {
      const minutes = Math.round((now - since) / 60_000);
      return { abnormal: true, message: `Cinder volume has been ${status} for ${minutes} minutes (stuck)` };
    }
  }
  if (v.migration_status === 'error') {
    return { abnormal: true, message: 'the last migration of this volume failed' };
  }
  return { abnormal: false, message: `volume is ${status}` };
}

/** Cinder timestamps are UTC without a zone ("2026-11-22T15:28:12.000000"); NaN when unparsable. */
export function parseCinderTime(text: string | null | undefined): number {
  if (!text) return Number.NaN;
  return Date.parse(/(Z|[+-]\d\d:\d\d)$/.test(text) ? text : `${text}Z`);
}

export function timestampOf(created: string): Timestamp {
  const ms = parseCinderTime(created);
  const safe = Number.isFinite(ms) ? ms : 0;
  return { seconds: toInt64(Math.floor(safe / 1000)), nanos: (safe % 1000) * 1_000_000 };
}

export function toCsiSnapshot(s: Snapshot): csi.Snapshot {
  return {
    snapshot_id: s.id,
    source_volume_id: s.volume_id,
    size_bytes: bytesOf(s.size),
    creation_time: timestampOf(s.created_at),
    ready_to_use: s.status === 'available',
    group_snapshot_id: s.group_snapshot_id ?? '',
  };
}

export function backupToCsiSnapshot(b: Backup): csi.Snapshot {
  return {
    snapshot_id: `${BACKUP_ID_PREFIX}${b.id}`,
    source_volume_id: b.volume_id,
    size_bytes: bytesOf(b.size),
    creation_time: timestampOf(b.created_at),
    ready_to_use: b.status === 'available',
    group_snapshot_id: '',
  };
}
