/**
 * The chaos workload: volume lifecycles driven through the CSI gRPC API the way the Kubernetes
 * sidecars drive them, each call repeated with the same request until it answers OK (bounded
 * tries, exponential backoff), CreateSnapshot until ready_to_use.
 *
 * One lifecycle (17 operations; 13 for those without a backup, see `backupEvery`; 2 fewer without
 * a group type): create → publish → node-complete (os-complete on the attachment, as the node
 * plugin does after staging) → expand (online) → snapshot → restore from it → backup
 * (`type: backup` snapshot) → restore from it → unpublish → modify (retype) → group snapshot of
 * the volume (GroupController) → delete both restored volumes → delete snapshot, backup and group
 * snapshot → delete the volume.
 *
 * Every try is recorded (code, message prefix): the suites print the trace of the operations
 * involved in an invariant violation.
 */
import type { CinderApi } from '../../../src/openstack/cinder-api.ts';
import type { CsiTestClient } from '../csi-client.ts';
import { type OpRecord, retryOp } from './op-retry.ts';
import { BACKUP_OPS, CLEANUP, NEEDS, OP_KINDS, type OpKind } from './ops.ts';
import { createVolumeRequest, GiB, mountCapability } from './requests.ts';

export interface WorkloadOptions {
  /** The current driver's client (a new one after a restart). */
  client: () => CsiTestClient;
  /** The node's Cinder client (through its own proxy) for os-complete. */
  nodeCinder: CinderApi;
  /** Prefix of every CSI name of this run. */
  prefix: string;
  nodeId: string;
  volumeType: string;
  /** A second type of the same backend, for modify. */
  otherType: string;
  /** Cinder group type for the group snapshots (VolumeGroupSnapshotClass `groupType`); none: no group snapshots. */
  groupType?: string;
  /** Operations to run at least (whole lifecycles are started until this many are planned). */
  operations: number;
  /** Every n-th lifecycle (0, n, 2n, ...) also takes a backup and restores it (slow on the lab); default 3. */
  backupEvery?: number;
  /** Keeps starting lifecycles while this says so (crash suite: until the kill rounds are done). */
  more?: () => boolean;
  concurrency: number;
  /** Deadline of each CSI call (the sidecar's --timeout). */
  callTimeoutMs?: number;
  /** Error answers tolerated per operation (default 40). */
  maxTries?: number;
  /** Time bound of one operation, retries included (default 30 min, op-retry.ts). */
  opTimeoutMs?: number;
  /** Operation kinds not run (with their dependents). */
  exclude?: readonly OpKind[];
  rand: () => number;
}

export interface WorkloadResult {
  ops: OpRecord[];
  lifecycles: number;
  /** CSI name → the id the driver answered with (the last one). */
  volumes: Map<string, string>;
  snapshots: Map<string, string>;
  /** Group snapshot CSI name → the id the driver answered with (the last one). */
  groupSnapshots: Map<string, string>;
  /** Attachment ids seen for one volume and node after publish, when there was more than one. */
  duplicateAttachments: string[];
  ms: number;
}

export class Workload {
  readonly ops: OpRecord[] = [];
  readonly volumes = new Map<string, string>();
  readonly snapshots = new Map<string, string>();
  readonly groupSnapshots = new Map<string, string>();
  readonly duplicateAttachments: string[] = [];
  readonly #o: WorkloadOptions;
  readonly #start = Date.now();
  #next = 0;
  #planned = 0;

  constructor(opts: WorkloadOptions) {
    this.#o = opts;
  }

  async run(checkAttachments: (volumeId: string) => Promise<string[]>): Promise<WorkloadResult> {
    const worker = async () => {
      for (;;) {
        const i = this.#next;
        if (this.#planned >= this.#o.operations && !this.#o.more?.()) return;
        this.#next++;
        this.#planned += OP_KINDS.filter(
          (k) => this.#runs(k) && (this.#withBackup(i) || !BACKUP_OPS.includes(k)),
        ).length;
        await this.#lifecycle(i, checkAttachments);
      }
    };
    await Promise.all(Array.from({ length: this.#o.concurrency }, worker));
    return {
      ops: this.ops,
      lifecycles: this.#next,
      volumes: this.volumes,
      snapshots: this.snapshots,
      groupSnapshots: this.groupSnapshots,
      duplicateAttachments: this.duplicateAttachments,
      ms: Date.now() - this.#start,
    };
  }

  #withBackup(i: number): boolean {
    return i % (this.#o.backupEvery ?? 3) === 0;
  }

  #runs(kind: OpKind): boolean {
    const ex = this.#o.exclude ?? [];
    const noGroups = (k: OpKind) => k === 'group-snapshot' && !this.#o.groupType;
    const blocked = (k: OpKind): boolean => ex.includes(k) || noGroups(k) || NEEDS[k].some(blocked);
    return !blocked(kind);
  }

  async #lifecycle(i: number, checkAttachments: (volumeId: string) => Promise<string[]>): Promise<void> {
    const p = `${this.#o.prefix}-${i}`;
    const names = { v: `${p}-v`, s: `${p}-s`, r: `${p}-r`, b: `${p}-b`, rb: `${p}-rb`, g: `${p}-g` };
    let groupMembers: string[] = [];
    const node = this.#o.nodeId;
    const type = this.#o.volumeType;
    const ids: Record<string, string> = {};
    const createVol =
      (name: string, src?: Record<string, unknown>, key = name) =>
      async () => {
        const r = await this.#csi<{ volume: { volume_id: string } }>(
          'CreateVolume',
          createVolumeRequest(name, type, src),
        );
        ids[key] = r.volume.volume_id;
        this.volumes.set(name, r.volume.volume_id);
        return true;
      };
    const snap = (name: string, params: Record<string, string>) => async () => {
      const r = await this.#csi<{ snapshot: { snapshot_id: string; ready_to_use: boolean } }>(
        'CreateSnapshot',
        { name, source_volume_id: ids['v'], parameters: params },
      );
      ids[name] = r.snapshot.snapshot_id;
      this.snapshots.set(name, r.snapshot.snapshot_id);
      return r.snapshot.ready_to_use; // the snapshotter calls again until it is ready
    };
    const delVol = (key: string) => async () => {
      await this.#csi('DeleteVolume', { volume_id: ids[key] });
      return true;
    };
    const delSnap = (key: string) => async () => {
      await this.#csi('DeleteSnapshot', { snapshot_id: ids[key] });
      return true;
    };
    const steps: [OpKind, string, () => Promise<boolean>][] = [
      ['create', names.v, createVol(names.v, undefined, 'v')],
      [
        'publish',
        names.v,
        async () => {
          const r = await this.#csi<{ publish_context: Record<string, string> }>('ControllerPublishVolume', {
            volume_id: ids['v'],
            node_id: node,
            volume_capability: mountCapability(),
            readonly: false,
          });
          ids['att'] = r.publish_context['attachment_id'] ?? '';
          return true;
        },
      ],
      [
        'node-complete',
        names.v,
        async () => {
          await this.#o.nodeCinder.completeAttachment(ids['att'] ?? '', {
            signal: AbortSignal.timeout(this.#o.callTimeoutMs ?? 15_000),
          });
          const atts = await checkAttachments(ids['v'] ?? '');
          if (atts.length > 1) this.duplicateAttachments.push(`${names.v} (${ids['v']}): ${atts.join(', ')}`);
          return true;
        },
      ],
      [
        'expand',
        names.v,
        async () => {
          await this.#csi('ControllerExpandVolume', {
            volume_id: ids['v'],
            capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
            volume_capability: mountCapability(),
          });
          return true;
        },
      ],
      ['snapshot', names.s, snap(names.s, {})],
      [
        'restore-snapshot',
        names.r,
        async () => createVol(names.r, { snapshot: { snapshot_id: ids[names.s] } }, 'r')(),
      ],
      ['backup', names.b, snap(names.b, { type: 'backup' })],
      [
        'restore-backup',
        names.rb,
        async () => createVol(names.rb, { snapshot: { snapshot_id: ids[names.b] } }, 'rb')(),
      ],
      [
        'unpublish',
        names.v,
        async () => {
          await this.#csi('ControllerUnpublishVolume', { volume_id: ids['v'], node_id: node });
          return true;
        },
      ],
      [
        'modify',
        names.v,
        async () => {
          await this.#csi('ControllerModifyVolume', {
            volume_id: ids['v'],
            mutable_parameters: { type: this.#o.otherType },
          });
          return true;
        },
      ],
      [
        'group-snapshot',
        names.g,
        async () => {
          const r = await this.#csi<{
            group_snapshot: {
              group_snapshot_id: string;
              ready_to_use: boolean;
              snapshots: { snapshot_id: string }[];
            };
          }>(
            'CreateVolumeGroupSnapshot',
            { name: names.g, source_volume_ids: [ids['v']], parameters: { groupType: this.#o.groupType } },
            'GroupController',
          );
          ids['g'] = r.group_snapshot.group_snapshot_id;
          groupMembers = r.group_snapshot.snapshots.map((x) => x.snapshot_id);
          this.groupSnapshots.set(names.g, r.group_snapshot.group_snapshot_id);
          return r.group_snapshot.ready_to_use; // the snapshotter calls again until it is ready
        },
      ],
      ['delete-restored', names.r, delVol('r')],
      ['delete-restored-backup', names.rb, delVol('rb')],
      ['delete-snapshot', names.s, delSnap(names.s)],
      ['delete-backup', names.b, delSnap(names.b)],
      [
        'delete-group-snapshot',
        names.g,
        async () => {
          await this.#csi(
            'DeleteVolumeGroupSnapshot',
            { group_snapshot_id: ids['g'], snapshot_ids: groupMembers },
            'GroupController',
          );
          return true;
        },
      ],
      ['delete', names.v, delVol('v')],
    ];
    // As a CO would: after an operation that never succeeded, only the clean-up goes on
    // (unpublish even after a failed publish, as the attacher does when the pod goes away).
    const ok = new Set<OpKind>();
    const attempted = new Set<OpKind>();
    let failed = false;
    for (const [kind, target, fn] of steps) {
      if (!this.#runs(kind) || (BACKUP_OPS.includes(kind) && !this.#withBackup(i))) continue;
      if (failed && !CLEANUP.has(kind)) continue;
      const needs = kind === 'unpublish' ? ['create' as const] : NEEDS[kind];
      if (!needs.every((k) => ok.has(k)) || (kind === 'unpublish' && !attempted.has('publish'))) continue;
      attempted.add(kind);
      if (await this.#retry(i, kind, target, fn)) ok.add(kind);
      else failed = true;
    }
  }

  #retry(lifecycle: number, kind: OpKind, target: string, fn: () => Promise<boolean>): Promise<boolean> {
    const rec: OpRecord = { lifecycle, kind, target, tries: 0, ok: false, attempts: [], ms: 0 };
    this.ops.push(rec);
    const { maxTries, opTimeoutMs, rand } = this.#o;
    return retryOp(rec, fn, {
      ...(maxTries !== undefined ? { maxTries } : {}),
      ...(opTimeoutMs !== undefined ? { opTimeoutMs } : {}),
      rand,
      start: this.#start,
    });
  }

  #csi<T = Record<string, unknown>>(
    method: string,
    req: Record<string, unknown>,
    service: 'Controller' | 'GroupController' = 'Controller',
  ): Promise<T> {
    return this.#o
      .client()
      .call<T>(service, method, { secrets: {}, ...req }, this.#o.callTimeoutMs ?? 15_000);
  }
}
