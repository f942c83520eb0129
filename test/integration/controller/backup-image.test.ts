import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_IMAGE_NAME } from '../../support/lab.ts';
import { createReq, ctx, type Mode, openLab, purge, rand, settleLeftovers, skipReason } from './lab.ts';

// Backup-type VolumeSnapshotClass (`type: backup`) and volumes from Glance images, on the lab's
// real cinder-backup (posix driver) and Glance (file store).
describe('controller: backup-type snapshots and image volumes on the lab', () => {
  const cases: [Mode, string][] = [
    ['keystone', 'rbd'],
    ['noauth', 'tgt'],
  ];
  for (const [mode, type] of cases) {
    it(`${mode}/${type}: CreateSnapshot type=backup → restore into a new volume → delete, nothing left`, async (t) => {
      const why = await skipReason();
      if (why) return t.skip(why);
      const lab = await openLab(mode);
      try {
        const name = `ctl-bk-${type}-${rand()}`;
        const vol = await lab.svc.CreateVolume(createReq(name, { parameters: { type } }), ctx());
        const id = vol.volume?.volume_id ?? '';
        // As the snapshotter does: the same call until ready_to_use (a slow lab needs more than one).
        const snapReq = {
          name: `${name}-bk`,
          source_volume_id: id,
          secrets: {},
          parameters: { type: 'backup' },
        };
        let snap = await lab.svc.CreateSnapshot(snapReq, ctx(300_000));
        const snapId = snap.snapshot?.snapshot_id ?? '';
        for (let i = 0; i < 20 && !snap.snapshot?.ready_to_use; i++) {
          snap = await lab.svc.CreateSnapshot(snapReq, ctx(300_000));
          assert.equal(snap.snapshot?.snapshot_id, snapId, 'the same backup every time');
        }
        assert.match(snapId, /^backup:[0-9a-f-]{36}$/, 'backup snapshots carry the backup: prefix');
        assert.equal(snap.snapshot?.ready_to_use, true);
        assert.equal(snap.snapshot?.source_volume_id, id);
        // idempotent by name: the same call returns the same backup
        const again = await lab.svc.CreateSnapshot(
          { name: `${name}-bk`, source_volume_id: id, secrets: {}, parameters: { type: 'backup' } },
          ctx(300_000),
        );
        assert.equal(again.snapshot?.snapshot_id, snapId);
        const got = await lab.svc.GetSnapshot({ snapshot_id: snapId, secrets: {} }, ctx());
        assert.equal(got.snapshot?.snapshot_id, snapId);
        // the temporary Cinder snapshot the backup was taken from is gone
        const tmp = [];
        for await (const s of lab.cinder.listSnapshots({ volume_id: id })) tmp.push(s.id);
        assert.deepEqual(tmp, [], 'the temporary snapshot was cleaned up');

        const restored = await lab.svc.CreateVolume(
          createReq(`${name}-restored`, {
            parameters: { type },
            volume_content_source: { snapshot: { snapshot_id: snapId } },
          }),
          ctx(300_000),
        );
        const rid = restored.volume?.volume_id ?? '';
        assert.equal((await lab.cinder.getVolume(rid)).status, 'available');
        await lab.svc.DeleteVolume({ volume_id: rid, secrets: {} }, ctx());
        await lab.svc.DeleteSnapshot({ snapshot_id: snapId, secrets: {} }, ctx(300_000));
        await lab.svc.DeleteSnapshot({ snapshot_id: snapId, secrets: {} }, ctx());
        await lab.svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
        assert.deepEqual(await settleLeftovers(lab), []);
      } finally {
        await purge(lab).catch(() => undefined);
        await lab.close();
      }
    });
  }

  it('keystone/fake: CreateVolume with imageRef (a Glance image name) → volume holds the image', async (t) => {
    const why = await skipReason();
    if (why) return t.skip(why);
    const lab = await openLab('keystone');
    try {
      const name = `ctl-img-${rand()}`;
      const vol = await lab.svc.CreateVolume(
        createReq(name, { parameters: { type: 'fake', imageRef: LAB_IMAGE_NAME } }),
        ctx(300_000),
      );
      const v = await lab.cinder.getVolume(vol.volume?.volume_id ?? '');
      assert.equal(v.status, 'available');
      assert.equal(v.volume_image_metadata?.['image_name'], LAB_IMAGE_NAME);
      await assert.rejects(
        lab.svc.CreateVolume(
          createReq(`${name}-missing`, { parameters: { type: 'fake', imageRef: `no-such-image-${rand()}` } }),
          ctx(),
        ),
        (e: { code: number }) => e.code === 3 || e.code === 5,
      );
      await lab.svc.DeleteVolume({ volume_id: v.id, secrets: {} }, ctx());
      assert.deepEqual(await settleLeftovers(lab), []);
    } finally {
      await purge(lab).catch(() => undefined);
      await lab.close();
    }
  });
});
