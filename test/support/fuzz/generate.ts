/**
 * Hostile CSI requests, generated from csi.proto's own reflection with a seeded PRNG: every
 * Identity, Controller, GroupController and Node RPC, every field of its request (nested ones too)
 * either left out, filled plausibly (so requests also reach deep code) or filled with a hostile
 * value chosen by what the field is (id, name, path, map, capacity, enum...). A few requests are raw
 * frames: garbage bytes, truncated encodings, invalid UTF-8 in a string field.
 */
import type protobuf from 'protobufjs';
import {
  hostileKeyValue,
  hostileMountFlags,
  hostileStrings,
  INT64_MAX,
  INT64_MIN,
  PATH_IDS,
  URL_IDS,
} from './hostile-values.ts';
import type { Prng } from './prng.ts';

const GiB = 1024 ** 3;

export interface FuzzEnv {
  kubeletRoot: string;
  hostRoot: string;
  stateDir: string;
  /** A directory next to the roots the driver must never write into. */
  outside: string;
  /** A regular file inside the kubelet root (paths through it: ENOTDIR). */
  regularFile: string;
  /** A symlink inside the kubelet root pointing at `outside`. */
  escapeLink: string;
  /** Absolute paths outside every root; none may exist after the run. */
  markers: string[];
  nodeId: string;
  /** Planted secret: in secrets fields here and in the cloud config password. */
  secret: string;
  /** CreateVolume/CreateSnapshot names of this run (a small pool: bounded resources). */
  names: string[];
}

/** Ids learned from successful replies (used in later requests; also for clean-up). */
export interface Learned {
  volumes: Set<string>;
  snapshots: Set<string>;
  groupSnapshots: Set<string>;
}

export class RequestGenerator {
  readonly #root: protobuf.Root;
  readonly #env: FuzzEnv;
  readonly #learned: Learned;
  #r: Prng;
  /** Per request: probability that a field gets a hostile value. */
  #hostility = 0.3;
  #type = '';

  constructor(root: protobuf.Root, env: FuzzEnv, learned: Learned, rng: Prng) {
    this.#root = root;
    this.#env = env;
    this.#learned = learned;
    this.#r = rng;
  }

  /** A request object of `typeName` (proto-loader's JS form: snake_case, int64 as strings). */
  request(typeName: string): Record<string, unknown> {
    this.#type = typeName;
    this.#hostility = this.#r.pick([0.03, 0.1, 0.25, 0.5]);
    return this.#message(this.#root.lookupType(typeName), 0, '');
  }

  /** A raw request frame that is not a valid encoding of its type (or has invalid UTF-8). */
  rawFrame(typeName: string): Buffer {
    const r = this.#r;
    const type = this.#root.lookupType(typeName);
    switch (r.int(5)) {
      case 0:
        return Buffer.from(Array.from({ length: 1 + r.int(64) }, () => r.int(256)));
      case 1: {
        // A valid encoding cut short.
        const buf = Buffer.from(type.encode(type.fromObject(this.request(typeName))).finish());
        return buf.subarray(0, Math.max(1, r.int(buf.length)));
      }
      case 2:
        // Field 1, wire type 2 (length-delimited) declaring 2^35 bytes.
        return Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
      case 3:
        // An unknown field (15) with a wire type that does not exist (7).
        return Buffer.from([0x7f, 0x01, 0x0f]);
      default: {
        // Invalid UTF-8 in the first string field.
        const f = type.fieldsArray.find((x) => x.type === 'string' && !x.repeated && !x.map);
        const bad = Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]);
        if (!f) return Buffer.concat([Buffer.from([0x0a, bad.length]), bad]);
        return Buffer.concat([Buffer.from([(f.id << 3) | 2, bad.length]), bad]);
      }
    }
  }

  get #hostile(): boolean {
    return this.#r.chance(this.#hostility);
  }

  #message(type: protobuf.Type, depth: number, path: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (depth > 6) return out;
    const oneofFields = new Set<string>();
    for (const o of type.oneofsArray) {
      // Usually one member of a oneof, sometimes none or all (the decoder keeps the last).
      const members = o.fieldsArray;
      const pick = this.#r.chance(0.1) ? members : this.#r.chance(0.1) ? [] : [this.#r.pick(members)];
      for (const m of members) if (!pick.includes(m)) oneofFields.add(m.name);
    }
    for (const field of type.fieldsArray) {
      if (oneofFields.has(field.name)) continue;
      if (this.#r.chance(this.#hostility / 2)) continue; // missing
      out[field.name] = this.#field(field, depth, `${path}${field.name}`);
    }
    return out;
  }

  #field(field: protobuf.Field, depth: number, path: string): unknown {
    const r = this.#r;
    if (field.map) return this.#map(field.name);
    const resolved = field.resolve().resolvedType;
    const one = (): unknown => {
      if (resolved && 'fieldsArray' in resolved) {
        if (this.#hostile && r.chance(0.3)) return {};
        return this.#message(resolved as protobuf.Type, depth + 1, `${path}.`);
      }
      if (resolved && 'values' in resolved) return this.#enum(resolved as protobuf.Enum);
      return this.#scalar(field, path);
    };
    if (field.repeated) {
      if (this.#hostile && r.chance(0.2)) {
        // Over the list bound, but never a long list of messages that hold long lists themselves:
        // 3,000 × 3,000 entries take the *client* a minute to encode (and exceed 4 MiB anyway).
        const big = resolved && 'fieldsArray' in resolved ? {} : depth > 0 ? 'x' : one();
        return Array.from({ length: r.pick([0, 1025, 3000]) }, () => big);
      }
      if (field.name === 'mount_flags') return this.#mountFlags();
      return Array.from({ length: r.pick([0, 1, 1, 2, 3]) }, one);
    }
    return one();
  }

  #enum(e: protobuf.Enum): unknown {
    const r = this.#r;
    const names = Object.keys(e.values);
    if (this.#hostile) return r.pick([99, -1, 2 ** 31 - 1, names[0]!]);
    const known = names.filter((n) => !/UNKNOWN$/.test(n));
    return r.pick(known.length > 0 ? known : names);
  }

  #scalar(field: protobuf.Field, path: string): unknown {
    const r = this.#r;
    const name = field.name;
    switch (field.type) {
      case 'bool':
        return r.chance(0.5);
      case 'int64':
        if (this.#hostile)
          return r.pick([INT64_MIN, INT64_MAX, '-1', '9007199254740993', '-9223372036854775807']);
        return r.pick(['0', String(GiB), String(GiB + 1), String(2 * GiB), '1']);
      case 'int32':
        if (this.#hostile) return r.pick([-1, -(2 ** 31), 2 ** 31 - 1]);
        return r.pick([0, 1, 2, 10, 100]);
      case 'string':
        return this.#string(name, path);
      default:
        return undefined;
    }
  }

  #id(kind: 'volume' | 'snapshot' | 'group'): string {
    const r = this.#r;
    if (this.#hostile) {
      return r.pick([() => r.pick(URL_IDS), () => r.pick(PATH_IDS), () => hostileStrings(r)])();
    }
    const pool = [
      ...(kind === 'volume'
        ? this.#learned.volumes
        : kind === 'snapshot'
          ? this.#learned.snapshots
          : this.#learned.groupSnapshots),
    ];
    // Draw the same numbers whether or not the pool (filled by replies) is empty, so a seed
    // replays the same sequence of choices.
    const useLearned = r.chance(0.6);
    const index = r.int(1 << 30);
    if (pool.length > 0 && useLearned) return pool[index % pool.length]!;
    if (kind === 'snapshot' && r.chance(0.3)) return `backup:${r.uuid()}`;
    return r.uuid();
  }

  #string(name: string, path: string): string {
    const r = this.#r;
    const env = this.#env;
    if (/(^|_)(target_path|staging_target_path|volume_path)$/.test(name)) return this.#path(name);
    if (name === 'node_id') {
      if (this.#hostile) return r.pick(['x'.repeat(256), 'x'.repeat(257), 'other-node', hostileStrings(r)]);
      return env.nodeId;
    }
    if (name === 'name') {
      if (this.#hostile) return hostileStrings(r);
      return r.pick(env.names);
    }
    if (name === 'snapshot_id' || name === 'snapshot_ids') return this.#id('snapshot');
    if (name === 'group_snapshot_id') return this.#id('group');
    if (/volume_id/.test(name)) return this.#id('volume');
    if (name === 'starting_token') {
      if (this.#hostile) return hostileStrings(r);
      return r.pick(['', r.uuid(), ...this.#learned.volumes]);
    }
    if (name === 'fs_type') {
      if (this.#hostile) return r.pick(['ntfs', 'EXT4', 'ext4 -F', '../xfs', hostileStrings(r)]);
      return r.pick(['', 'ext4', 'xfs']);
    }
    if (this.#hostile) return hostileStrings(r);
    void path;
    return r.pick(['', 'a', r.uuid().slice(0, 8)]);
  }

  #path(name: string): string {
    const r = this.#r;
    const env = this.#env;
    const k = env.kubeletRoot;
    if (this.#hostile) {
      return r.pick([
        () => r.pick(env.markers),
        () => `${k}/../${env.outside.split('/').pop()}/x`,
        () => `${env.escapeLink}/x`,
        () => `${env.escapeLink}`,
        () => `${env.regularFile}/x`,
        () => env.regularFile,
        () => k,
        () => `${k}/`,
        () => `${k}/pods/${'n'.repeat(256)}`,
        () => `${k}/${'d/'.repeat(2100)}x`,
        () => `${k}/pods/a\0b`,
        () => 'relative/path',
        () => 'escape-relative',
        () => '',
        () => `${k}/pods/${r.pick(URL_IDS)}`,
        () => `${env.hostRoot}/dev/null`,
        () => `${env.stateDir}/x`,
        () => hostileStrings(r),
      ])();
    }
    const uid = r.uuid();
    if (name === 'staging_target_path') {
      return `${k}/plugins/kubernetes.io/csi/cinder.csi.dev/${uid.slice(0, 12)}/globalmount`;
    }
    return `${k}/pods/${uid}/volumes/kubernetes.io~csi/pvc-${uid.slice(0, 8)}/mount`;
  }

  #mountFlags(): string[] {
    const r = this.#r;
    if (this.#hostile) return hostileMountFlags(r);
    return r.pick([[], ['noatime'], ['discard', 'nodev'], ['ro']]);
  }

  #map(name: string): Record<string, string> {
    const r = this.#r;
    const env = this.#env;
    const out: Record<string, string> = {};
    if (name === 'secrets') {
      const n = r.int(4);
      for (let i = 0; i < n; i++) {
        const key = r.pick(['password', 'chap-secret', 'node.session.auth.password', 'key', 'token', 'x']);
        out[key] = r.pick([env.secret, `pre-${env.secret}-post`, `${env.secret}\0`]);
      }
      if (this.#hostile) out['huge'] = `${env.secret}${'s'.repeat(r.pick([10, 200 * 1024]))}`;
      return out;
    }
    if (name === 'publish_context') {
      if (!this.#hostile) {
        out['attachment_id'] = r.uuid();
        out['driver_volume_type'] = r.pick(['iscsi', 'rbd', 'fake']);
        return out;
      }
    } else if (name === 'parameters' || name === 'mutable_parameters') {
      if (!this.#hostile) {
        // Volumes on the lab's fake backend (cheap); snapshots mostly plain, rarely backups.
        if (this.#type.endsWith('SnapshotRequest')) {
          // Never 'backup': a real backup takes longer than the 5 s bound by design (it waits up to
          // the caller's deadline); test/integration/controller/backup-image.test.ts covers it.
          if (r.chance(0.3)) out['type'] = 'snapshot';
        } else if (r.chance(0.9)) {
          out['type'] = 'fake';
        }
        if (name === 'parameters' && r.chance(0.3)) out['csi.storage.k8s.io/pvc/name'] = 'pvc-fuzz';
        return out;
      }
    } else if (name === 'segments') {
      if (!this.#hostile) return { 'topology.cinder.csi.dev/zone': r.pick(['nova', 'other']) };
    } else if (!this.#hostile) {
      return r.chance(0.5) ? {} : { k: 'v' };
    }
    const n = 1 + r.int(3);
    for (let i = 0; i < n; i++) {
      const [k, v] = hostileKeyValue(r);
      out[k] = v;
    }
    return out;
  }
}

/** A request for a violation report: long strings cut, so the line stays readable. */
export function describeRequest(req: unknown): string {
  const s = JSON.stringify(req, (_k, v) =>
    typeof v === 'string' && v.length > 80
      ? `${v.slice(0, 80)}…(${v.length})`
      : Array.isArray(v) && v.length > 8
        ? [...v.slice(0, 8), `…(${v.length} entries)`]
        : v,
  );
  return s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
}
