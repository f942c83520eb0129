/**
 * DeleteVolumeGroupSnapshot and GetVolumeGroupSnapshot against the in-memory Cinder group double
 * (fake-group-cinder.ts): exact snapshot_ids, idempotent deletes, orphan groups of an interrupted
 * delete, refusals by the backend, deadlines, groups the driver did not make. The lab test
 * (test/integration/group-controller) runs the same flows against the real Cinder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '../../../src/csi/errors.ts';
import type { CinderApi } from '../../../src/openstack/cinder-api.ts';
import { rejectsWith } from '../../support/csi-errors.ts';
import { ctx } from '../controller/helpers.ts';
import { count, createReq, idReq, setup } from './helpers.ts';

describe('DeleteVolumeGroupSnapshot and GetVolumeGroupSnapshot', () => {
  async function created() {
    const t = setup();
    const a = t.cinder.addVolume();
    const b = t.cinder.addVolume();
    const gs = (await t.svc.CreateVolumeGroupSnapshot(createReq('gs', [a.id, b.id]), ctx())).group_snapshot;
    assert.ok(gs?.group_snapshot_id);
    return { ...t, id: gs.group_snapshot_id, snapIds: (gs.snapshots ?? []).map((s) => s.snapshot_id ?? '') };
  }

  it('INVALID_ARGUMENT without ids; FAILED_PRECONDITION unless snapshot_ids are exactly the members', async () => {
    const { cinder, svc, id, snapIds } = await created();
    await rejectsWith(svc.DeleteVolumeGroupSnapshot(idReq('', snapIds), ctx()), Code.INVALID_ARGUMENT);
    await rejectsWith(
      svc.DeleteVolumeGroupSnapshot(idReq(id, []), ctx()),
      Code.INVALID_ARGUMENT,
      /snapshot_ids/,
    );
    await rejectsWith(
      svc.DeleteVolumeGroupSnapshot(
        idReq(
          id,
          Array.from({ length: 1000 }, (_, i) => `s-${i}`),
        ),
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
      /at most/,
    );
    await rejectsWith(
      svc.DeleteVolumeGroupSnapshot(idReq(id, [snapIds[0] ?? '']), ctx()),
      Code.FAILED_PRECONDITION,
    );
    await rejectsWith(
      svc.DeleteVolumeGroupSnapshot(idReq(id, [...snapIds, 'extra']), ctx()),
      Code.FAILED_PRECONDITION,
      /do not match/,
    );
    assert.equal(cinder.groupSnapshots.get(id)?.status, 'available');
  });

  it('a group snapshot that does not exist, with empty snapshot_ids → OK (deletes are idempotent)', async () => {
    const { svc } = setup();
    await svc.DeleteVolumeGroupSnapshot(idReq('33333333-3333-4333-8333-333333333333', []), ctx());
  });

  it('deletes the group snapshot, its members and the driver-made group; missing → success', async () => {
    const { cinder, svc, id, snapIds } = await created();
    await svc.DeleteVolumeGroupSnapshot(idReq(id, [...snapIds].reverse()), ctx());
    assert.equal(cinder.groupSnapshots.size, 0);
    assert.equal(cinder.snapshots.size, 0);
    assert.equal(cinder.groups.size, 0);
    await svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx());
  });

  it('died after Cinder deleted the group snapshot, before its group: the retry deletes the orphan group', async () => {
    const { cinder, svc, id, snapIds } = await created();
    const c = cinder.addVolume();
    const kept = (await svc.CreateVolumeGroupSnapshot(createReq('kept', [c.id]), ctx())).group_snapshot;
    assert.equal(cinder.groups.size, 2);
    const api = cinder.api as Required<CinderApi>;
    await api.deleteGroupSnapshot(id);
    await api.waitForGroupSnapshot(id, { target: [], gone: true });
    assert.equal(cinder.groups.size, 2, 'the group is left behind');
    await svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx());
    assert.equal(cinder.groups.size, 1, 'the orphan group is deleted');
    assert.ok(cinder.groupSnapshots.has(kept?.group_snapshot_id ?? ''), 'the other group snapshot stays');
  });

  it('the orphan-group sweep fails (lost request): UNAVAILABLE, not OK, so the retry deletes the group', async () => {
    const { cinder, svc, id, snapIds } = await created();
    const api = cinder.api as Required<CinderApi>;
    await api.deleteGroupSnapshot(id);
    await api.waitForGroupSnapshot(id, { target: [], gone: true });
    assert.equal(cinder.groups.size, 1, 'the group is left behind');
    cinder.opts.failCalls = { listGroups: 1 };
    await rejectsWith(svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx()), Code.UNAVAILABLE);
    assert.equal(cinder.groups.size, 1, 'still there: an OK now would leave it for ever');
    await svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx());
    assert.equal(cinder.groups.size, 0, 'the retry deletes it');
  });

  it('a retry while Cinder deletes (members vanishing one by one) is not FAILED_PRECONDITION', async () => {
    const { cinder, svc, id, snapIds } = await created();
    const gs = cinder.groupSnapshots.get(id);
    assert.ok(gs && snapIds.length === 2);
    // An earlier try's DELETE, its answer lost: Cinder has deleted one member so far.
    gs.status = 'deleting';
    cinder.snapshots.delete(snapIds[0] ?? '');
    setTimeout(() => {
      cinder.groupSnapshots.delete(id);
      for (const s of snapIds) cinder.snapshots.delete(s);
    }, 20).unref();
    await svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx());
    assert.equal(count(cinder.calls, 'deleteGroupSnapshot'), 0, 'Cinder is already deleting it');
    assert.equal(cinder.groups.size, 0);
  });

  it('while deleting, a member the request does not name is still a mismatch', async () => {
    const { cinder, svc, id, snapIds } = await created();
    (cinder.groupSnapshots.get(id) as { status: string }).status = 'deleting';
    await rejectsWith(
      svc.DeleteVolumeGroupSnapshot(idReq(id, [snapIds[0] ?? '']), ctx()),
      Code.FAILED_PRECONDITION,
      /members not given/,
    );
  });

  it('FAILED_PRECONDITION when the backend refuses the delete; the group stays', async () => {
    const { cinder, svc, id, snapIds } = await created();
    cinder.opts.refuseGroupSnapshotDelete = true;
    await rejectsWith(
      svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx()),
      Code.FAILED_PRECONDITION,
      /did not delete it.*status available/,
    );
    assert.equal(cinder.groupSnapshots.get(id)?.status, 'available');
    assert.equal(cinder.groups.size, 1);
    cinder.opts.refuseGroupSnapshotDelete = false;
    await svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx());
    assert.equal(cinder.groups.size, 0);
  });

  it('DEADLINE_EXCEEDED while Cinder is still deleting; the retry finishes', async () => {
    const { cinder, svc, id, snapIds } = await created();
    cinder.opts.delayMs = 200;
    await rejectsWith(
      svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx(30)),
      Code.DEADLINE_EXCEEDED,
      /retry/,
    );
    await svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx());
    assert.equal(cinder.groupSnapshots.size, 0);
    assert.equal(cinder.groups.size, 0);
  });

  it('keeps a group it did not make', async () => {
    const { cinder, svc, id, snapIds } = await created();
    const group = [...cinder.groups.values()][0];
    assert.ok(group);
    group.description = 'made by an operator';
    await svc.DeleteVolumeGroupSnapshot(idReq(id, snapIds), ctx());
    assert.equal(cinder.groupSnapshots.size, 0);
    assert.deepEqual([...cinder.groups.keys()], [group.id]);
  });

  it('Get: the group snapshot; NOT_FOUND for unknown ids; FAILED_PRECONDITION for wrong snapshot_ids', async () => {
    const { svc, id, snapIds } = await created();
    const got = await svc.GetVolumeGroupSnapshot(idReq(id), ctx());
    assert.equal(got.group_snapshot?.group_snapshot_id, id);
    assert.equal(got.group_snapshot?.ready_to_use, true);
    assert.deepEqual(got.group_snapshot?.snapshots?.map((s) => s.snapshot_id).sort(), [...snapIds].sort());
    assert.deepEqual(got.group_snapshot?.creation_time, { seconds: '1795428000', nanos: 0 });
    await svc.GetVolumeGroupSnapshot(idReq(id, snapIds), ctx());
    await rejectsWith(svc.GetVolumeGroupSnapshot(idReq('unknown'), ctx()), Code.NOT_FOUND, /unknown/);
    await rejectsWith(svc.GetVolumeGroupSnapshot(idReq(''), ctx()), Code.INVALID_ARGUMENT);
    await rejectsWith(svc.GetVolumeGroupSnapshot(idReq(id, ['x']), ctx()), Code.FAILED_PRECONDITION);
  });
});
