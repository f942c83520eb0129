/**
 * The GroupController service on the lab Cinder (real CinderClient over an OpenStackSession, the
 * Controller service of openLab() in test/integration/controller/lab.ts; the services are called
 * directly, without gRPC): create → get → a member snapshot as a CreateVolume
 * content source through the Controller service → delete, idempotency, ALREADY_EXISTS, NOT_FOUND,
 * FAILED_PRECONDITION for mismatched snapshot_ids, and no leftovers. Keystone mode uses the `fake`
 * backend, noauth mode `rbd`. Every resource is named `grp-<rand>`; the default group type is a
 * per-run `grp-type-<rand>` that the driver creates on demand (the lab account is admin) and this
 * test deletes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { META } from '../../../src/csi/controller/index.ts';
import { Code, CsiError } from '../../../src/csi/errors.ts';
import { createGroupControllerService } from '../../../src/csi/group-controller/index.ts';
import { type CinderClient, ignoreNotFound } from '../../../src/openstack/cinder.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { rejectsWith } from '../../support/csi-errors.ts';
import { groupSnapshotIdReq, groupSnapshotReq } from '../../support/group-requests.ts';
import { createReq, ctx, type Lab, openLab, rand, skipReason } from '../controller/lab.ts';

const skip = await skipReason();

for (const [mode, backend] of [
  ['keystone', 'fake'],
  ['noauth', 'rbd'],
] as const) {
  describe(`group snapshots on the lab (${mode}, ${backend})`, { skip }, () => {
    const run = `grp-${rand()}`;
    const groupType = `grp-type-${rand()}`;
    let lab: Lab;
    let clusterId: string;
    let cinder: CinderClient;
    let svc: Lab['svc'];
    let groups: ReturnType<typeof createGroupControllerService>;

    before(async () => {
      lab = await openLab(mode);
      ({ cinder, svc, clusterId } = lab);
      groups = createGroupControllerService({
        cinder,
        clusterId,
        driverName: 'cinder.csi.dev',
        logger: silentLogger(),
        defaultGroupType: groupType,
      });
    });

    after(async () => {
      if (!cinder) return;
      // Best effort after a failure: group snapshots, groups, volumes, the group type of this run.
      const signal = AbortSignal.timeout(90_000);
      for await (const gs of cinder.listGroupSnapshots({}, { signal })) {
        if (gs.name?.startsWith(run)) {
          await ignoreNotFound(cinder.deleteGroupSnapshot(gs.id, { signal })).catch(() => {});
          await cinder.waitForGroupSnapshot(gs.id, { target: [], gone: true, signal }).catch(() => {});
        }
      }
      for await (const g of cinder.listGroups({}, { signal })) {
        if (g.name?.startsWith(run)) {
          const full = await cinder.getGroup(g.id, { signal }).catch(() => undefined);
          if (full?.volumes?.length) {
            await cinder.updateGroup(g.id, { remove_volumes: full.volumes }, { signal }).catch(() => {});
            await cinder.waitForGroup(g.id, { target: ['available'], signal }).catch(() => {});
          }
          await ignoreNotFound(cinder.deleteGroup(g.id, { signal })).catch(() => {});
          await cinder.waitForGroup(g.id, { target: [], gone: true, signal }).catch(() => {});
        }
      }
      const vols: string[] = [];
      for await (const v of cinder.listVolumes({}, { signal })) {
        if (v.metadata?.[META.cluster] === clusterId) vols.push(v.id);
      }
      // restored volumes first (they may depend on the members), then the sources
      for (const id of vols) await ignoreNotFound(cinder.deleteVolume(id, { signal })).catch(() => {});
      for (const id of vols)
        await cinder.waitForVolume(id, { target: [], gone: true, signal }).catch(() => {});
      const type = (await cinder.listGroupTypes({ signal }).catch(() => [])).find(
        (t) => t.name === groupType,
      );
      if (type) await ignoreNotFound(cinder.deleteGroupType(type.id, { signal })).catch(() => {});
      await lab.close();
    });

    it('bounded input: 1,000 bogus ids → INVALID_ARGUMENT; 100 → NOT_FOUND quoting a few; missing group snapshot with no snapshot_ids → deleted', async (t) => {
      const bogus = (n: number) =>
        Array.from({ length: n }, (_, i) => `0000dead-0000-4000-8000-${String(i).padStart(12, '0')}`);
      const req = (ids: string[]) => groupSnapshotReq(`${run}-bogus`, ids);
      let t0 = Date.now();
      await rejectsWith(
        groups.CreateVolumeGroupSnapshot(req(bogus(1000)), ctx()),
        Code.INVALID_ARGUMENT,
        /at most \d+ volumes/,
      );
      const capped = Date.now() - t0;
      t0 = Date.now();
      const err = await groups.CreateVolumeGroupSnapshot(req(bogus(100)), ctx()).catch((e: CsiError) => e);
      assert.ok(err instanceof CsiError && err.code === Code.NOT_FOUND, String(err));
      assert.ok((err.message.match(/0000dead-/g) ?? []).length <= 5, err.message);
      t.diagnostic(`1,000 ids refused in ${capped} ms; 100 bogus ids → NOT_FOUND in ${Date.now() - t0} ms`);
      await groups.DeleteVolumeGroupSnapshot(
        groupSnapshotIdReq('0000dead-0000-4000-8000-000000000000'),
        ctx(),
      );
    });

    it('create → get → restore a member → delete, with idempotency and every error path', async () => {
      const caps = await groups.GroupControllerGetCapabilities({}, ctx());
      assert.deepEqual(
        caps.capabilities?.map((c) => c.rpc?.type),
        ['CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT'],
      );
      const [a, b] = await Promise.all(
        ['a', 'b'].map((x) =>
          svc.CreateVolume(createReq(`${run}-${x}`, { parameters: { type: backend } }), ctx()),
        ),
      );
      const ids = [a?.volume?.volume_id ?? '', b?.volume?.volume_id ?? ''];
      const name = `${run}-gs`;
      const req = (volumes: string[], parameters: Record<string, string> = {}) =>
        groupSnapshotReq(name, volumes, {
          'csi.storage.k8s.io/volumegroupsnapshot/name': 'vgs',
          ...parameters,
        });

      // validation and NOT_FOUND before anything is created
      await rejectsWith(
        groups.CreateVolumeGroupSnapshot(req([]), ctx()),
        Code.INVALID_ARGUMENT,
        /source_volume_ids/,
      );
      await rejectsWith(
        groups.CreateVolumeGroupSnapshot(req(ids, { bogus: '1' }), ctx()),
        Code.INVALID_ARGUMENT,
        /bogus/,
      );
      await rejectsWith(
        groups.CreateVolumeGroupSnapshot(req(ids, { groupType: `${run}-no-such-type` }), ctx()),
        Code.INVALID_ARGUMENT,
        /no group type/,
      );
      const ghost = '00000000-0000-4000-8000-000000000000';
      await rejectsWith(
        groups.CreateVolumeGroupSnapshot(req([ids[0] ?? '', ghost]), ctx()),
        Code.NOT_FOUND,
        new RegExp(ghost),
      );

      const created = (await groups.CreateVolumeGroupSnapshot(req(ids), ctx())).group_snapshot;
      assert.ok(created?.group_snapshot_id);
      assert.equal(created.ready_to_use, true);
      assert.deepEqual(created.snapshots?.map((s) => s.source_volume_id).sort(), [...ids].sort());
      for (const s of created.snapshots ?? []) {
        assert.equal(s.group_snapshot_id, created.group_snapshot_id);
        assert.equal(s.ready_to_use, true);
        assert.equal(s.size_bytes, String(1024 ** 3));
      }
      const gsId = created.group_snapshot_id;
      const snapIds = (created.snapshots ?? []).map((s) => s.snapshot_id ?? '');

      // the volumes left the group again; the members are this cluster's snapshots
      for (const id of ids) assert.equal((await cinder.getVolume(id)).group_id ?? null, null);
      const member = await svc.GetSnapshot({ snapshot_id: snapIds[0] ?? '', secrets: {} }, ctx());
      assert.equal(member.snapshot?.group_snapshot_id, gsId);

      // idempotency: same name and volumes → same group snapshot; other volumes → ALREADY_EXISTS
      const again = (await groups.CreateVolumeGroupSnapshot(req([...ids].reverse()), ctx())).group_snapshot;
      assert.equal(again?.group_snapshot_id, gsId);
      assert.deepEqual(again?.snapshots?.map((s) => s.snapshot_id).sort(), [...snapIds].sort());
      await rejectsWith(
        groups.CreateVolumeGroupSnapshot(req([ids[0] ?? '']), ctx()),
        Code.ALREADY_EXISTS,
        /other volumes/,
      );

      const got = (await groups.GetVolumeGroupSnapshot(groupSnapshotIdReq(gsId), ctx())).group_snapshot;
      assert.equal(got?.group_snapshot_id, gsId);
      assert.equal(got?.ready_to_use, true);
      assert.deepEqual(got?.snapshots?.map((s) => s.snapshot_id).sort(), [...snapIds].sort());
      await rejectsWith(groups.GetVolumeGroupSnapshot(groupSnapshotIdReq(ghost), ctx()), Code.NOT_FOUND);

      // a member is a usable CreateVolume content source on its own
      const restored = await svc.CreateVolume(
        createReq(`${run}-restored`, {
          parameters: { type: backend },
          volume_content_source: { snapshot: { snapshot_id: snapIds[0] ?? '' }, type: 'snapshot' },
        }),
        ctx(),
      );
      const restoredId = restored.volume?.volume_id ?? '';
      assert.equal((await cinder.getVolume(restoredId)).status, 'available');
      assert.equal((await cinder.getVolume(restoredId)).snapshot_id, snapIds[0]);
      await svc.DeleteVolume({ volume_id: restoredId, secrets: {} }, ctx());
      await cinder.waitForVolume(restoredId, { target: [], gone: true, signal: AbortSignal.timeout(60_000) });

      // delete: the full list of members or FAILED_PRECONDITION
      const del = (snapshot_ids: string[]) =>
        groups.DeleteVolumeGroupSnapshot(groupSnapshotIdReq(gsId, snapshot_ids), ctx());
      await rejectsWith(del([snapIds[0] ?? '']), Code.FAILED_PRECONDITION, /do not match/);
      await rejectsWith(del([...snapIds, ghost]), Code.FAILED_PRECONDITION, /do not match/);
      await del(snapIds);
      await del(snapIds); // missing → success
      await rejectsWith(groups.GetVolumeGroupSnapshot(groupSnapshotIdReq(gsId), ctx()), Code.NOT_FOUND);
      for (const id of snapIds) assert.equal(await ignoreNotFound(cinder.getSnapshot(id)), undefined);

      // the source volumes are deletable through the Controller (not held by a group)
      for (const id of ids) await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());

      // nothing of this run is left
      const left: string[] = [];
      for await (const g of cinder.listGroups({})) if (g.name?.startsWith(run)) left.push(`group ${g.id}`);
      for await (const gs of cinder.listGroupSnapshots({}))
        if (gs.name?.startsWith(run)) left.push(`group snapshot ${gs.id}`);
      for await (const s of cinder.listSnapshots({}))
        if (s.name?.startsWith(run)) left.push(`snapshot ${s.id}`);
      const end = Date.now() + 30_000;
      let vols: string[] = [];
      do {
        vols = [];
        for await (const v of cinder.listVolumes({}))
          if (v.metadata?.[META.cluster] === clusterId) vols.push(v.id);
        if (vols.length > 0) await new Promise((r) => setTimeout(r, 500));
      } while (vols.length > 0 && Date.now() < end);
      assert.deepEqual([...left, ...vols.map((v) => `volume ${v}`)], []);
    });
  });
}
