/**
 * In-memory double of the Cinder group surface the GroupController uses (the lab integration test
 * uses the real Cinder; this exists for fast, deterministic checks of every error path, e.g. a group
 * snapshot that goes to `error`, a group type the account may not create, slow snapshots).
 *
 * It keeps the Cinder (Zed) rules the service relies on, as observed on the lab: asynchronous
 * transitions (creating → available, updating → available, deleting → gone), `add_volumes` needs an
 * available group and volumes in no other group, a group with volumes or group snapshots cannot be
 * deleted, removing volumes from a group with group snapshots is allowed, member snapshots are named
 * after the group snapshot and listed by `group_snapshot_id`, deleting a group snapshot deletes its
 * members. Errors are real OpenStackError objects. Only the methods the service calls exist; the
 * object is cast to CinderApi.
 */
import { randomUUID } from 'node:crypto';
import type { CallOptions, CinderApi, WaitOptions } from '../../../src/openstack/cinder-api.ts';
import type {
  Group,
  GroupSnapshot,
  GroupType,
  Snapshot,
  UserMessage,
  Volume,
} from '../../../src/openstack/cinder-types.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { waitForObject } from '../../../src/openstack/waiter.ts';
import { throwIfAborted } from '../../../src/util/abort.ts';

const FAST = { firstMs: 2, factor: 1.5, capMs: 10 };
const NOW = '2026-11-23T10:00:00.000000';

function fail(status: number, message: string): OpenStackError {
  return new OpenStackError({ status, faultMessage: message, method: 'X', url: 'http://fake-cinder/v3' });
}

export interface FakeGroupCinderOptions {
  /** Delay of asynchronous transitions (ms). */
  delayMs?: number;
  /** Delay until a group snapshot (and its members) is available (ms); default `delayMs`. */
  groupSnapshotDelayMs?: number;
  /** The next group snapshot goes to `error` with this user message. */
  groupSnapshotError?: string;
  /** Member snapshots appear only when the group snapshot is done (as the real volume service makes them). */
  groupSnapshotMembersLate?: boolean;
  /** createGroupType answers 403 (a non-admin account). */
  forbidGroupTypes?: boolean;
  /** The backend refuses group snapshot deletes: deleting → available (like a busy snapshot). */
  refuseGroupSnapshotDelete?: boolean;
  /** Latency of `GET /volumes/{id}` (ms), to observe how many lookups run at once. */
  getVolumeDelayMs?: number;
  /** The next N calls of a method answer HTTP 503 (a lost or refused request), e.g. `{ listGroups: 1 }`. */
  failCalls?: Record<string, number>;
  /** The next N calls of a method are carried out, then their answer is lost, e.g. `{ updateGroup: 1 }`. */
  loseAnswers?: Record<string, number>;
}

export class FakeGroupCinder {
  readonly volumes = new Map<string, Volume>();
  readonly snapshots = new Map<string, Snapshot>();
  readonly groups = new Map<string, Group>();
  readonly groupSnapshots = new Map<string, GroupSnapshot>();
  readonly groupTypes: GroupType[] = [];
  readonly messages: UserMessage[] = [];
  readonly calls: string[] = [];
  readonly opts: FakeGroupCinderOptions;

  constructor(opts: FakeGroupCinderOptions = {}) {
    this.opts = opts;
  }

  /** The double as the CinderApi the service takes. */
  get api(): CinderApi {
    return this as unknown as CinderApi;
  }

  addVolume(extra: Partial<Volume> = {}): Volume {
    const v: Volume = {
      id: randomUUID(),
      name: 'v',
      status: 'available',
      size: 1,
      availability_zone: 'nova',
      volume_type: 'fake',
      volume_type_id: 'fake-type-id',
      snapshot_id: null,
      source_volid: null,
      description: null,
      metadata: {},
      multiattach: false,
      attachments: [],
      group_id: null,
      created_at: NOW,
      updated_at: null,
      ...extra,
    };
    this.volumes.set(v.id, v);
    return v;
  }

  #call(name: string, opts?: CallOptions): void {
    throwIfAborted(opts?.signal);
    this.calls.push(name);
    const left = this.opts.failCalls?.[name] ?? 0;
    if (left > 0 && this.opts.failCalls) {
      this.opts.failCalls[name] = left - 1;
      throw fail(503, `injected: ${name} unavailable`);
    }
  }

  /** After Cinder acted: the answer is lost when `loseAnswers` names the method (a reset, no status). */
  #lose(name: string): void {
    const left = this.opts.loseAnswers?.[name] ?? 0;
    if (left > 0 && this.opts.loseAnswers) {
      this.opts.loseAnswers[name] = left - 1;
      throw new OpenStackError({
        status: undefined,
        faultMessage: `injected: ${name} answer lost after Cinder acted`,
        method: 'X',
        url: 'http://fake-cinder/v3',
      });
    }
  }

  #later(fn: () => void, ms = this.opts.delayMs ?? 5): void {
    setTimeout(fn, ms).unref();
  }

  // ------------------------------------------------------------ volumes and snapshots

  /** `getVolume` calls in flight now, and the most seen at once. */
  readonly lookups = { now: 0, max: 0 };

  async getVolume(id: string, opts?: CallOptions): Promise<Volume> {
    this.#call('getVolume', opts);
    this.lookups.now++;
    this.lookups.max = Math.max(this.lookups.max, this.lookups.now);
    try {
      if (this.opts.getVolumeDelayMs) await new Promise((r) => setTimeout(r, this.opts.getVolumeDelayMs));
    } finally {
      this.lookups.now--;
    }
    const v = this.volumes.get(id);
    if (!v) throw fail(404, `Volume ${id} could not be found.`);
    return structuredClone(v);
  }

  listSnapshots(filters: { group_snapshot_id?: string } = {}, opts?: CallOptions): AsyncIterable<Snapshot> {
    this.#call('listSnapshots', opts);
    const items = [...this.snapshots.values()].filter(
      (s) => !filters.group_snapshot_id || s.group_snapshot_id === filters.group_snapshot_id,
    );
    return (async function* () {
      yield* structuredClone(items);
    })();
  }

  async getSnapshot(id: string, opts?: CallOptions): Promise<Snapshot> {
    this.#call('getSnapshot', opts);
    const s = this.snapshots.get(id);
    if (!s) throw fail(404, `Snapshot ${id} could not be found.`);
    return structuredClone(s);
  }

  async setSnapshotMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void> {
    this.#call('setSnapshotMetadata', opts);
    const s = this.snapshots.get(id);
    if (!s) throw fail(404, `Snapshot ${id} could not be found.`);
    s.metadata = { ...s.metadata, ...metadata };
  }

  async listMessages(filters: { resource_uuid?: string } = {}, opts?: CallOptions): Promise<UserMessage[]> {
    this.#call('listMessages', opts);
    return this.messages.filter((m) => !filters.resource_uuid || m.resource_uuid === filters.resource_uuid);
  }

  // ------------------------------------------------------------ group types

  async listGroupTypes(opts?: CallOptions): Promise<GroupType[]> {
    this.#call('listGroupTypes', opts);
    return structuredClone(this.groupTypes);
  }

  async createGroupType(req: { name: string; description?: string }, opts?: CallOptions): Promise<GroupType> {
    this.#call('createGroupType', opts);
    if (this.opts.forbidGroupTypes) throw fail(403, 'Policy does not allow group:group_types:create.');
    if (this.groupTypes.some((t) => t.name === req.name)) throw fail(409, `Group Type ${req.name} exists.`);
    const t: GroupType = {
      id: randomUUID(),
      name: req.name,
      description: req.description ?? null,
      group_specs: {},
    };
    this.groupTypes.push(t);
    return structuredClone(t);
  }

  // ------------------------------------------------------------ groups

  async createGroup(
    req: {
      name: string;
      group_type: string;
      volume_types: string[];
      availability_zone?: string;
      description?: string;
    },
    opts?: CallOptions,
  ): Promise<Group> {
    this.#call('createGroup', opts);
    if (!this.groupTypes.some((t) => t.id === req.group_type)) {
      throw fail(404, `GroupType ${req.group_type} could not be found.`);
    }
    const g: Group = {
      id: randomUUID(),
      name: req.name,
      status: 'creating',
      group_type: req.group_type,
      volume_types: req.volume_types,
      availability_zone: req.availability_zone ?? 'nova',
      description: req.description ?? null,
      created_at: NOW,
    };
    this.groups.set(g.id, g);
    this.#later(() => {
      g.status = 'available';
    });
    return { id: g.id, name: g.name } as Group; // Cinder's POST answer is this short
  }

  async getGroup(id: string, opts?: CallOptions): Promise<Group> {
    this.#call('getGroup', opts);
    const g = this.groups.get(id);
    if (!g) throw fail(404, `Group ${id} could not be found.`);
    const volumes = [...this.volumes.values()].filter((v) => v.group_id === id).map((v) => v.id);
    return { ...structuredClone(g), volumes };
  }

  listGroups(filters: { name?: string } = {}, opts?: CallOptions): AsyncIterable<Group> {
    this.#call('listGroups', opts);
    const items = [...this.groups.values()].filter((g) => !filters.name || g.name === filters.name);
    return (async function* () {
      yield* structuredClone(items);
    })();
  }

  async updateGroup(
    id: string,
    patch: { add_volumes?: string[]; remove_volumes?: string[] },
    opts?: CallOptions,
  ): Promise<void> {
    this.#call('updateGroup', opts);
    const g = this.groups.get(id);
    if (!g) throw fail(404, `Group ${id} could not be found.`);
    // Cinder's API checks against the group's members now (cinder/group/api.py); the volume
    // service changes the membership later, while the group is `updating`.
    const members = new Set([...this.volumes.values()].filter((v) => v.group_id === id).map((v) => v.id));
    const add = (patch.add_volumes ?? []).filter((vid) => !members.has(vid));
    for (const vid of add) {
      const v = this.volumes.get(vid);
      if (!v) throw fail(404, `Volume ${vid} could not be found.`);
      if (v.group_id) {
        throw fail(
          400,
          `Invalid volume: Cannot add volume ${vid} to group ${id} because it is already in group ${v.group_id}.`,
        );
      }
    }
    const remove = patch.remove_volumes ?? [];
    for (const vid of remove) {
      if (!members.has(vid)) {
        throw fail(
          400,
          `Invalid volume: Cannot remove volume ${vid} from group ${id} because it is not in the group.`,
        );
      }
    }
    if (add.length === 0 && remove.length === 0) {
      throw fail(
        400,
        `Invalid group: Cannot update group ${id} because no valid name, description, add_volumes, or remove_volumes were provided.`,
      );
    }
    if (g.status !== 'available') {
      throw fail(400, 'Invalid group: Group status must be available.');
    }
    g.status = 'updating';
    this.#later(() => {
      for (const vid of add) (this.volumes.get(vid) as Volume).group_id = id;
      for (const vid of remove) {
        const v = this.volumes.get(vid);
        if (v?.group_id === id) v.group_id = null;
      }
      g.status = 'available';
    });
    this.#lose('updateGroup');
  }

  async deleteGroup(id: string, opts?: CallOptions): Promise<void> {
    this.#call('deleteGroup', opts);
    const g = this.groups.get(id);
    if (!g) throw fail(404, `Group ${id} could not be found.`);
    if ([...this.volumes.values()].some((v) => v.group_id === id)) {
      throw fail(400, 'Invalid group: Group still contains volumes. The delete-volumes flag is required.');
    }
    if ([...this.groupSnapshots.values()].some((s) => s.group_id === id)) {
      throw fail(400, 'Invalid group: Group has existing snapshots.');
    }
    g.status = 'deleting';
    this.#later(() => this.groups.delete(id));
  }

  waitForGroup(id: string, wait: WaitOptions): Promise<Group | undefined> {
    return waitForObject('group', id, () => this.getGroup(id), wait, { schedule: FAST });
  }

  // ------------------------------------------------------------ group snapshots

  async createGroupSnapshot(
    req: { group_id: string; name?: string; description?: string },
    opts?: CallOptions,
  ): Promise<GroupSnapshot> {
    this.#call('createGroupSnapshot', opts);
    const g = this.groups.get(req.group_id);
    if (!g) throw fail(404, `Group ${req.group_id} could not be found.`);
    const members = [...this.volumes.values()].filter((v) => v.group_id === g.id);
    if (g.status !== 'available' || members.length === 0) {
      throw fail(400, 'Invalid group: Group must be available and contain volumes.');
    }
    const gs: GroupSnapshot = {
      id: randomUUID(),
      name: req.name ?? null,
      description: req.description ?? null,
      status: 'creating',
      group_id: g.id,
      group_type_id: g.group_type,
      created_at: NOW,
    };
    this.groupSnapshots.set(gs.id, gs);
    const snaps = members.map(
      (v): Snapshot => ({
        id: randomUUID(),
        name: gs.name,
        description: null,
        volume_id: v.id,
        status: 'creating',
        size: v.size,
        metadata: {},
        created_at: NOW,
        updated_at: null,
        group_snapshot_id: gs.id,
      }),
    );
    const late = this.opts.groupSnapshotMembersLate === true;
    if (!late) for (const s of snaps) this.snapshots.set(s.id, s);
    const error = this.opts.groupSnapshotError;
    this.opts.groupSnapshotError = undefined;
    this.#later(
      () => {
        gs.status = error ? 'error' : 'available';
        for (const s of snaps) s.status = error ? 'error' : 'available';
        if (late) for (const s of snaps) this.snapshots.set(s.id, s);
        if (error) {
          this.messages.push({
            id: randomUUID(),
            resource_uuid: gs.id,
            user_message: error,
            created_at: NOW,
          } as UserMessage);
        }
      },
      this.opts.groupSnapshotDelayMs ?? this.opts.delayMs ?? 5,
    );
    return { id: gs.id, name: gs.name, group_type_id: gs.group_type_id } as GroupSnapshot;
  }

  async getGroupSnapshot(id: string, opts?: CallOptions): Promise<GroupSnapshot> {
    this.#call('getGroupSnapshot', opts);
    const gs = this.groupSnapshots.get(id);
    if (!gs) throw fail(404, `GroupSnapshot ${id} could not be found.`);
    return structuredClone(gs);
  }

  listGroupSnapshots(
    filters: { name?: string; group_id?: string } = {},
    opts?: CallOptions,
  ): AsyncIterable<GroupSnapshot> {
    this.#call('listGroupSnapshots', opts);
    const items = [...this.groupSnapshots.values()].filter(
      (s) =>
        (!filters.name || s.name === filters.name) && (!filters.group_id || s.group_id === filters.group_id),
    );
    return (async function* () {
      yield* structuredClone(items);
    })();
  }

  async deleteGroupSnapshot(id: string, opts?: CallOptions): Promise<void> {
    this.#call('deleteGroupSnapshot', opts);
    const gs = this.groupSnapshots.get(id);
    if (!gs) throw fail(404, `GroupSnapshot ${id} could not be found.`);
    gs.status = 'deleting';
    this.#later(() => {
      if (this.opts.refuseGroupSnapshotDelete) {
        gs.status = 'available';
        return;
      }
      this.groupSnapshots.delete(id);
      for (const s of [...this.snapshots.values()])
        if (s.group_snapshot_id === id) this.snapshots.delete(s.id);
    });
  }

  waitForGroupSnapshot(id: string, wait: WaitOptions): Promise<GroupSnapshot | undefined> {
    return waitForObject('group snapshot', id, () => this.getGroupSnapshot(id), wait, { schedule: FAST });
  }
}
