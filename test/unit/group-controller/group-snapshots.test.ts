/**
 * GroupController logic against the in-memory Cinder group double (fake-group-cinder.ts): the
 * factory, and CreateVolumeGroupSnapshot's error paths, idempotency, interrupted and slow creates,
 * failed group snapshots (deletes and gets: delete-get.test.ts). The lab test
 * (test/integration/group-controller) runs the same flows against the real Cinder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { META } from '../../../src/csi/controller/context.ts';
import { Code } from '../../../src/csi/errors.ts';
import {
  createGroupControllerService,
  DEFAULT_GROUP_TYPE,
  GROUP_MARKER,
} from '../../../src/csi/group-controller/index.ts';
import { updateOwnGroup } from '../../../src/csi/group-controller/own-group.ts';
import {
  LOOKUP_CONCURRENCY,
  MAX_GROUP_SNAPSHOT_VOLUMES,
} from '../../../src/csi/group-controller/source-volumes.ts';
import type { CinderApi } from '../../../src/openstack/cinder-api.ts';
import { rejectsWith } from '../../support/csi-errors.ts';
import { ctx, logger } from '../controller/helpers.ts';
import { CLUSTER, count, createReq, setup } from './helpers.ts';

describe('GroupController factory and capabilities', () => {
  it('advertises exactly CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT', async () => {
    const { svc } = setup();
    const res = await svc.GroupControllerGetCapabilities({}, ctx());
    assert.deepEqual(res.capabilities, [{ rpc: { type: 'CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT' } }]);
  });

  it('refuses a Cinder client without the group methods', () => {
    const partial = { getVolume: async () => ({}) } as unknown as CinderApi;
    assert.throws(
      () => createGroupControllerService({ cinder: partial, clusterId: 'x', driverName: 'd', logger }),
      /listGroupTypes.*waitForGroupSnapshot/,
    );
  });
});

describe('CreateVolumeGroupSnapshot', () => {
  it('INVALID_ARGUMENT for a missing name, no/empty/duplicate ids and bad parameters', async () => {
    const { cinder, svc } = setup();
    const v = cinder.addVolume();
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('', [v.id]), ctx()),
      Code.INVALID_ARGUMENT,
      /name/,
    );
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', []), ctx()),
      Code.INVALID_ARGUMENT,
      /source_volume_ids/,
    );
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [v.id, '']), ctx()),
      Code.INVALID_ARGUMENT,
      /empty/,
    );
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [v.id, v.id]), ctx()),
      Code.INVALID_ARGUMENT,
      /duplicates/,
    );
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [v.id], { bogus: '1' }), ctx()),
      Code.INVALID_ARGUMENT,
      /bogus/,
    );
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [v.id], { groupType: '' }), ctx()),
      Code.INVALID_ARGUMENT,
      /groupType/,
    );
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [v.id], { groupType: 'nope' }), ctx()),
      Code.INVALID_ARGUMENT,
      /no group type nope/,
    );
    assert.equal(cinder.groups.size, 0);
    assert.equal(cinder.groupTypes.length, 0);
  });

  it('NOT_FOUND names every missing volume; different zones, other groups and bad states are refused', async () => {
    const { cinder, svc } = setup();
    const a = cinder.addVolume();
    const missing = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];
    const err = await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [a.id, ...missing]), ctx()),
      Code.NOT_FOUND,
    );
    for (const id of missing) assert.match(err.message, new RegExp(id));

    const far = cinder.addVolume({ availability_zone: 'zone-b' });
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [a.id, far.id]), ctx()),
      Code.INVALID_ARGUMENT,
      /availability zones/,
    );
    const grouped = cinder.addVolume({ group_id: 'someone-elses-group' });
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [a.id, grouped.id]), ctx()),
      Code.FAILED_PRECONDITION,
      /member of Cinder group someone-elses-group/,
    );
    const broken = cinder.addVolume({ status: 'error' });
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [a.id, broken.id]), ctx()),
      Code.FAILED_PRECONDITION,
    );
    const creating = cinder.addVolume({ status: 'creating' });
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [a.id, creating.id]), ctx()),
      Code.UNAVAILABLE,
      /retry/,
    );
    assert.equal(cinder.groups.size, 0);
  });

  it('1,000 bogus ids → INVALID_ARGUMENT (documented cap) before any Cinder call; the message stays short', async () => {
    const { cinder, svc } = setup();
    const ids = Array.from(
      { length: 1000 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    const err = await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', ids), ctx()),
      Code.INVALID_ARGUMENT,
      new RegExp(`at most ${MAX_GROUP_SNAPSHOT_VOLUMES} volumes`),
    );
    assert.ok(err.message.length < 200, err.message);
    assert.equal(cinder.calls.length, 0);
    const dup = await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [...ids.slice(0, 50), ...ids.slice(0, 50)]), ctx()),
      Code.INVALID_ARGUMENT,
      /duplicates/,
    );
    assert.ok(dup.message.length < 400, dup.message);
  });

  it('bogus ids under the cap: bounded concurrent lookups, fail fast, NOT_FOUND quoting a few', async () => {
    const { cinder, svc } = setup({ getVolumeDelayMs: 5 });
    const a = cinder.addVolume();
    const ids = Array.from(
      { length: MAX_GROUP_SNAPSHOT_VOLUMES - 1 },
      (_, i) => `11111111-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    const err = await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('g', [a.id, ...ids]), ctx()),
      Code.NOT_FOUND,
    );
    assert.ok(
      cinder.lookups.max <= LOOKUP_CONCURRENCY,
      `at most ${LOOKUP_CONCURRENCY} at once: ${cinder.lookups.max}`,
    );
    const lookups = count(cinder.calls, 'getVolume');
    assert.ok(lookups <= 2 * LOOKUP_CONCURRENCY, `fails fast: ${lookups} lookups for ${ids.length + 1} ids`);
    assert.ok((err.message.match(/11111111-/g) ?? []).length <= 5, err.message);
    assert.equal(cinder.groups.size, 0);
  });

  it('creates the group type, the group and the group snapshot, then releases the volumes', async () => {
    const { cinder, svc } = setup();
    const a = cinder.addVolume();
    const b = cinder.addVolume({ status: 'in-use' });
    const res = await svc.CreateVolumeGroupSnapshot(
      createReq('gs-1', [a.id, b.id], { 'csi.storage.k8s.io/volumegroupsnapshot/name': 'x' }),
      ctx(),
    );
    const gs = res.group_snapshot;
    assert.ok(gs);
    assert.equal(gs.ready_to_use, true);
    assert.deepEqual(gs.snapshots?.map((s) => s.source_volume_id).sort(), [a.id, b.id].sort());
    for (const s of gs.snapshots ?? []) {
      assert.equal(s.group_snapshot_id, gs.group_snapshot_id);
      assert.equal(s.ready_to_use, true);
      assert.equal(s.size_bytes, String(1024 ** 3));
      // members are this cluster's snapshots (ListSnapshots shows them)
      assert.equal(cinder.snapshots.get(s.snapshot_id ?? '')?.metadata[META.cluster], CLUSTER);
    }
    assert.deepEqual(
      cinder.groupTypes.map((t) => t.name),
      [DEFAULT_GROUP_TYPE],
    );
    const [group] = [...cinder.groups.values()];
    assert.equal(group?.name, 'gs-1');
    assert.equal(group?.description, GROUP_MARKER.group(CLUSTER));
    assert.deepEqual(group?.volume_types, ['fake-type-id']);
    const cgs = cinder.groupSnapshots.get(gs.group_snapshot_id ?? '');
    assert.equal(cgs?.description, GROUP_MARKER.groupSnapshot(CLUSTER));
    assert.equal(cinder.volumes.get(a.id)?.group_id, null);
    assert.equal(cinder.volumes.get(b.id)?.group_id, null);

    // a second group snapshot reuses the group type and may take the same volumes
    const again = await svc.CreateVolumeGroupSnapshot(createReq('gs-2', [a.id]), ctx());
    assert.equal(again.group_snapshot?.ready_to_use, true);
    assert.equal(count(cinder.calls, 'createGroupType'), 1);
    assert.equal(count(cinder.calls, 'listGroupTypes'), 1, 'the resolved type is cached');
  });

  it('is idempotent by name; other volumes → ALREADY_EXISTS; another cluster is independent', async () => {
    const { cinder, svc } = setup();
    const a = cinder.addVolume();
    const b = cinder.addVolume();
    const first = await svc.CreateVolumeGroupSnapshot(createReq('gs', [a.id, b.id]), ctx());
    const second = await svc.CreateVolumeGroupSnapshot(createReq('gs', [b.id, a.id]), ctx());
    assert.deepEqual(second, first);
    assert.equal(count(cinder.calls, 'createGroupSnapshot'), 1);
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('gs', [a.id]), ctx()),
      Code.ALREADY_EXISTS,
      /other volumes/,
    );

    const other = createGroupControllerService({
      cinder: cinder.api,
      clusterId: 'other',
      driverName: 'd',
      logger,
    });
    const theirs = await other.CreateVolumeGroupSnapshot(createReq('gs', [a.id]), ctx());
    assert.notEqual(theirs.group_snapshot?.group_snapshot_id, first.group_snapshot?.group_snapshot_id);
  });

  it('uses the groupType parameter (name or id) and never creates it', async () => {
    const { cinder, svc } = setup();
    cinder.groupTypes.push({ id: 'gt-1', name: 'replicated', group_specs: {} });
    const a = cinder.addVolume();
    await svc.CreateVolumeGroupSnapshot(createReq('gs', [a.id], { groupType: 'replicated' }), ctx());
    assert.equal([...cinder.groups.values()][0]?.group_type, 'gt-1');
    assert.equal(count(cinder.calls, 'createGroupType'), 0);
  });

  it('FAILED_PRECONDITION asking an administrator when the default type is missing and may not be created', async () => {
    const { cinder, svc } = setup({ forbidGroupTypes: true }, { defaultGroupType: 'csi-groups' });
    const a = cinder.addVolume();
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('gs', [a.id]), ctx()),
      Code.FAILED_PRECONDITION,
      /csi-groups.*administrator/,
    );
    assert.equal(cinder.groups.size, 0);
  });

  it('answers ready_to_use=false while Cinder works; the retry releases the volumes', async () => {
    const { cinder, svc } = setup({ groupSnapshotDelayMs: 150 }, { groupSnapshotWaitMs: 20 });
    const a = cinder.addVolume();
    const first = await svc.CreateVolumeGroupSnapshot(createReq('slow', [a.id]), ctx());
    assert.equal(first.group_snapshot?.ready_to_use, false);
    assert.equal(first.group_snapshot?.snapshots?.[0]?.ready_to_use, false);
    assert.ok(cinder.volumes.get(a.id)?.group_id, 'still in the group while the snapshot is taken');
    // another group snapshot of the same volume meanwhile: transient, retry
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('other', [a.id]), ctx()),
      Code.UNAVAILABLE,
      /still being taken/,
    );
    await new Promise((r) => setTimeout(r, 200));
    const second = await svc.CreateVolumeGroupSnapshot(createReq('slow', [a.id]), ctx());
    assert.equal(second.group_snapshot?.group_snapshot_id, first.group_snapshot?.group_snapshot_id);
    assert.equal(second.group_snapshot?.ready_to_use, true);
    assert.equal(cinder.volumes.get(a.id)?.group_id, null);
  });

  it('a retry while Cinder has not listed the members yet is not ALREADY_EXISTS (crash suite)', async () => {
    const { cinder, svc } = setup(
      { groupSnapshotDelayMs: 150, groupSnapshotMembersLate: true },
      { groupSnapshotWaitMs: 20 },
    );
    const a = cinder.addVolume();
    const first = await svc.CreateVolumeGroupSnapshot(createReq('late', [a.id]), ctx());
    assert.equal(first.group_snapshot?.ready_to_use, false);
    const retry = await svc.CreateVolumeGroupSnapshot(createReq('late', [a.id]), ctx());
    assert.equal(retry.group_snapshot?.group_snapshot_id, first.group_snapshot?.group_snapshot_id);
    await new Promise((r) => setTimeout(r, 200));
    const done = await svc.CreateVolumeGroupSnapshot(createReq('late', [a.id]), ctx());
    assert.equal(done.group_snapshot?.ready_to_use, true);
    assert.deepEqual(
      done.group_snapshot?.snapshots?.map((s) => s.source_volume_id),
      [a.id],
    );
    // members of other volumes are still refused once listed
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('late', [cinder.addVolume().id]), ctx()),
      Code.ALREADY_EXISTS,
    );
  });

  it('a group snapshot that goes to error is deleted, the error classified; the retry reuses the group', async () => {
    const { cinder, svc } = setup({
      groupSnapshotError: 'No valid backend was found. Insufficient free space',
    });
    const a = cinder.addVolume();
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('bad', [a.id]), ctx()),
      Code.RESOURCE_EXHAUSTED,
      /Insufficient free space/,
    );
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(cinder.groupSnapshots.size, 0);
    const ok = await svc.CreateVolumeGroupSnapshot(createReq('bad', [a.id]), ctx());
    assert.equal(ok.group_snapshot?.ready_to_use, true);
    assert.equal(count(cinder.calls, 'createGroup'), 1, 'the group of the failed attempt is reused');
  });

  it('an interrupted earlier call: its group is reused and its membership corrected', async () => {
    const { cinder, svc } = setup();
    const a = cinder.addVolume();
    const b = cinder.addVolume();
    const stray = cinder.addVolume();
    cinder.groupTypes.push({ id: 'gt', name: DEFAULT_GROUP_TYPE });
    cinder.groups.set('g-old', {
      id: 'g-old',
      name: 'gs',
      status: 'available',
      group_type: 'gt',
      description: GROUP_MARKER.group(CLUSTER),
    });
    cinder.volumes.get(a.id)!.group_id = 'g-old';
    cinder.volumes.get(stray.id)!.group_id = 'g-old';
    const res = await svc.CreateVolumeGroupSnapshot(createReq('gs', [a.id, b.id]), ctx());
    assert.deepEqual(
      res.group_snapshot?.snapshots?.map((s) => s.source_volume_id).sort(),
      [a.id, b.id].sort(),
    );
    assert.equal(count(cinder.calls, 'createGroup'), 0);
    assert.equal(cinder.groupSnapshots.get(res.group_snapshot?.group_snapshot_id ?? '')?.group_id, 'g-old');
    assert.equal(cinder.volumes.get(stray.id)?.group_id, null);
  });

  it('a retry after a lost PUT /groups answer, while Cinder still adds the volumes, is not INVALID_ARGUMENT', async () => {
    // The chaos bench saw INVALID_ARGUMENT here: the retry read the volumes before waiting for the
    // group, and asked Cinder to add a volume its earlier update had added meanwhile.
    const { cinder, svc } = setup({ delayMs: 40, loseAnswers: { updateGroup: 1 } });
    const a = cinder.addVolume();
    const b = cinder.addVolume();
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('lost', [a.id, b.id]), ctx()),
      Code.UNAVAILABLE,
    );
    const group = [...cinder.groups.values()][0];
    assert.equal(group?.status, 'updating', 'Cinder is still carrying out the lost update');
    const res = await svc.CreateVolumeGroupSnapshot(createReq('lost', [a.id, b.id]), ctx());
    assert.equal(res.group_snapshot?.ready_to_use, true);
    assert.equal(count(cinder.calls, 'updateGroup'), 2, 'the lost add, then the release; no second add');
    assert.equal(cinder.groups.size, 1);
  });

  it("Cinder's refusal of a membership change on its own group (view changed underneath) is UNAVAILABLE", async () => {
    const { cinder, svc } = setup();
    const a = cinder.addVolume();
    await svc.CreateVolumeGroupSnapshot(createReq('own', [a.id]), ctx());
    const group = [...cinder.groups.values()][0];
    const c = { cinder: cinder.api } as unknown as Parameters<typeof updateOwnGroup>[0];
    const signal = AbortSignal.timeout(5_000);
    // The volumes were released already: an earlier try's update that landed meanwhile.
    await rejectsWith(
      updateOwnGroup(c, group?.id ?? '', { remove_volumes: [a.id] }, signal),
      Code.UNAVAILABLE,
      /not in the group.*retry/,
    );
    cinder.volumes.get(a.id)!.group_id = 'someone-elses';
    await rejectsWith(
      updateOwnGroup(c, group?.id ?? '', { add_volumes: [a.id] }, signal),
      Code.UNAVAILABLE,
      /already in group/,
    );
    assert.ok(svc);
  });

  it('ABORTED for a concurrent call on the same name or on overlapping volumes', async () => {
    const { cinder, svc } = setup({ groupSnapshotDelayMs: 50 });
    const a = cinder.addVolume();
    const b = cinder.addVolume();
    const first = svc.CreateVolumeGroupSnapshot(createReq('one', [a.id]), ctx());
    await rejectsWith(svc.CreateVolumeGroupSnapshot(createReq('one', [b.id]), ctx()), Code.ABORTED);
    await rejectsWith(svc.CreateVolumeGroupSnapshot(createReq('two', [b.id, a.id]), ctx()), Code.ABORTED);
    assert.equal((await first).group_snapshot?.ready_to_use, true);
  });

  it('DEADLINE_EXCEEDED when the call deadline passes while waiting for the group', async () => {
    const { cinder, svc } = setup({ delayMs: 500 });
    const a = cinder.addVolume();
    await rejectsWith(
      svc.CreateVolumeGroupSnapshot(createReq('late', [a.id]), ctx(50)),
      Code.DEADLINE_EXCEEDED,
      /retry/,
    );
  });
});
