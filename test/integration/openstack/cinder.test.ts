/**
 * CinderClient against the real lab Cinder (test/lab), in both auth modes (Keystone on :8776, noauth
 * on :8786) and on every backend (fake, rbd, tgt): version discovery, volume, snapshot and
 * attachment round trips, revert to snapshot, paging. Errors are in cinder-errors.test.ts; types,
 * limits, groups and backups in cinder-resources.test.ts; the fixture in cinder-fixture.ts. Every
 * resource is named with RUN (a per-run prefix) and carries RUN_META so concurrent engineers'
 * volumes never disturb the assertions, and everything created is deleted in `finally` blocks
 * (attachments before volumes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ignoreNotFound } from '../../../src/openstack/cinder.ts';
import type { Attachment, Volume } from '../../../src/openstack/cinder-types.ts';
import { BACKENDS, CONNECTOR, describeOnLab, RUN, RUN_META, wait, withCleanup } from './cinder-fixture.ts';

describeOnLab('CinderClient on the lab', ({ mode, cinder, volume, deleteVolumes }) => {
  it('negotiates the lab maximum 3.70 through version discovery', () => {
    assert.deepEqual(cinder.microversion, { major: 3, minor: 70 });
    assert.ok(cinder.supports('3.54'));
  });

  describe('round trips per backend (in parallel)', { concurrency: BACKENDS.length }, () => {
    for (const backend of BACKENDS) {
      it(`full volume, snapshot and attachment round trip on ${backend}`, () =>
        withCleanup(async (defer) => {
          const name = `${RUN}-${backend}`;
          const created = await volume(defer, {
            size: 1,
            name,
            volume_type: backend,
            description: 'round trip',
          });
          assert.equal(created.name, name);
          const vol = (await cinder.waitForVolume(created.id, { target: ['available'], signal: wait() }))!;
          assert.equal(vol.volume_type, backend);
          assert.equal((await cinder.getVolume(vol.id)).status, 'available');

          const listed: Volume[] = [];
          for await (const v of cinder.listVolumes({ name, metadata: RUN_META })) listed.push(v);
          assert.deepEqual(
            listed.map((v) => v.id),
            [vol.id],
          );

          const renamed = await cinder.updateVolume(vol.id, {
            name: `${name}-renamed`,
            description: 'updated',
          });
          assert.equal(renamed.name, `${name}-renamed`);
          // POST .../metadata adds/updates the given keys and keeps the others; PUT replaces all.
          await cinder.setVolumeMetadata(vol.id, { extra: 'yes' });
          const withMeta = await cinder.getVolume(vol.id);
          assert.deepEqual(withMeta.metadata, { ...RUN_META, extra: 'yes' });
          await cinder.setVolumeMetadata(vol.id, { extra: 'again' });
          assert.deepEqual((await cinder.getVolume(vol.id)).metadata, { ...RUN_META, extra: 'again' });
          await cinder.replaceVolumeMetadata(vol.id, { ...RUN_META, only: 'this' });
          assert.deepEqual((await cinder.getVolume(vol.id)).metadata, { ...RUN_META, only: 'this' });

          // snapshot (force: false, volume is available), its metadata and listing
          const snap = await cinder.createSnapshot({
            volume_id: vol.id,
            name: `${name}-snap`,
            force: false,
            metadata: { origin: 'round-trip' },
          });
          defer(async () => {
            await ignoreNotFound(cinder.deleteSnapshot(snap.id));
            await cinder.waitForSnapshot(snap.id, { target: [], gone: true, signal: wait() });
          });
          await cinder.waitForSnapshot(snap.id, { target: ['available'], signal: wait() });
          await cinder.setSnapshotMetadata(snap.id, { snapmeta: '1' });
          assert.deepEqual((await cinder.getSnapshot(snap.id)).metadata, {
            origin: 'round-trip',
            snapmeta: '1',
          });
          const snaps = [];
          for await (const s of cinder.listSnapshots({ volume_id: vol.id })) snaps.push(s.id);
          assert.deepEqual(snaps, [snap.id]);

          // extend (offline), then volume from snapshot and clone
          await cinder.extendVolume(vol.id, 2);
          const extended = await cinder.waitForVolume(vol.id, { target: ['available'], signal: wait() });
          assert.equal(extended?.size, 2);
          const fromSnap = await volume(defer, {
            size: 1,
            name: `${name}-fromsnap`,
            snapshot_id: snap.id,
            volume_type: backend,
          });
          const clone = await volume(defer, {
            size: 2,
            name: `${name}-clone`,
            source_volid: vol.id,
            volume_type: backend,
          });
          const [fs, cl] = await Promise.all([
            cinder.waitForVolume(fromSnap.id, { target: ['available'], signal: wait() }),
            cinder.waitForVolume(clone.id, { target: ['available'], signal: wait() }),
          ]);
          assert.equal(fs?.snapshot_id, snap.id);
          assert.equal(cl?.source_volid, vol.id);

          // attachment: create with connector -> get (connection_info) -> complete -> delete
          const att = await cinder.createAttachment({
            volume_uuid: vol.id,
            connector: CONNECTOR,
            mode: 'rw',
          });
          defer(() => ignoreNotFound(cinder.deleteAttachment(att.id)));
          assert.equal(att.status, 'reserved');
          const got: Attachment = await cinder.getAttachment(att.id);
          assert.equal(got.volume_id, vol.id);
          assert.equal(got.attach_mode, 'rw');
          assert.equal(got.connection_info?.driver_volume_type, backend === 'rbd' ? 'rbd' : 'iscsi');
          if (backend === 'tgt') assert.equal(got.connection_info?.auth_method, 'CHAP');
          const byVolume = await cinder.listAttachments({ volume_id: vol.id });
          assert.deepEqual(
            byVolume.map((a) => a.id),
            [att.id],
          );
          await cinder.completeAttachment(att.id);
          assert.equal((await cinder.getAttachment(att.id)).status, 'attached');
          assert.equal((await cinder.getVolume(vol.id)).status, 'in-use');
          await cinder.deleteAttachment(att.id);
          const detached = await cinder.waitForVolume(vol.id, { target: ['available'], signal: wait() });
          assert.deepEqual(detached?.attachments, []);

          // read-only flag round trip
          await cinder.setVolumeReadonly(vol.id, true);
          assert.equal((await cinder.getVolume(vol.id)).metadata['readonly'], 'True');
          await cinder.setVolumeReadonly(vol.id, false);
        }));
    }
  });

  it('revert to snapshot (3.40) on rbd', () =>
    withCleanup(async (defer) => {
      const v = await volume(defer, { size: 1, name: `${RUN}-revert`, volume_type: 'rbd' });
      await cinder.waitForVolume(v.id, { target: ['available'], signal: wait() });
      const snap = await cinder.createSnapshot({ volume_id: v.id, name: `${RUN}-revert-snap` });
      defer(async () => {
        await ignoreNotFound(cinder.deleteSnapshot(snap.id));
        await cinder.waitForSnapshot(snap.id, { target: [], gone: true, signal: wait() });
      });
      await cinder.waitForSnapshot(snap.id, { target: ['available'], signal: wait() });
      await cinder.revertVolumeToSnapshot(v.id, snap.id);
      const reverted = await cinder.waitForVolume(v.id, { target: ['available'], signal: wait() });
      assert.equal(reverted?.status, 'available');
    }));

  it('pages through volumes with limit + marker (metadata filter isolates this run)', () =>
    withCleanup(async (defer) => {
      const meta = { 'cinderclient-it-page': `${RUN}-${mode}` };
      const vols = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          cinder.createVolume({
            size: 1,
            name: `${RUN}-page-${i}`,
            volume_type: 'fake',
            metadata: { ...RUN_META, ...meta },
          }),
        ),
      );
      defer(() => deleteVolumes(vols.map((v) => v.id)));
      await Promise.all(
        vols.map((v) => cinder.waitForVolume(v.id, { target: ['available'], signal: wait() })),
      );
      const seen: string[] = [];
      for await (const v of cinder.listVolumes({ metadata: meta, limit: 2 })) seen.push(v.id);
      assert.deepEqual(seen.sort(), vols.map((v) => v.id).sort());
      const p1 = await cinder.listVolumesPage({ metadata: meta, limit: 2 });
      const p2 = await cinder.listVolumesPage({ metadata: meta, limit: 2, marker: p1.next });
      const p3 = await cinder.listVolumesPage({ metadata: meta, limit: 2, marker: p2.next });
      assert.deepEqual([p1.items.length, p2.items.length, p3.items.length, p3.next], [2, 2, 1, undefined]);
      assert.equal(new Set([...p1.items, ...p2.items, ...p3.items].map((v) => v.id)).size, 5);
    }));
});
