/**
 * CinderClient against the real lab Cinder, in both auth modes: volume types, extra specs, limits,
 * quota usage, zones and pools; groups and group snapshots; backups. Fixture: cinder-fixture.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { it } from 'node:test';
import { ignoreNotFound } from '../../../src/openstack/cinder.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import {
  BACKENDS,
  backupWait,
  describeOnLab,
  listAll,
  RUN,
  RUN_META,
  wait,
  withCleanup,
} from './cinder-fixture.ts';

describeOnLab('CinderClient types, groups and backups on the lab', ({ mode, cinder, volume }) => {
  it('reads types, extra specs, limits, quota usage, zones and pools', async () => {
    const types = await cinder.listVolumeTypes();
    for (const b of BACKENDS)
      assert.ok(
        types.some((t) => t.name === b),
        `type ${b} listed`,
      );
    const fake = await cinder.getVolumeType('fake');
    assert.equal((await cinder.getVolumeType(fake.id)).name, 'fake');
    assert.equal((await cinder.getVolumeTypeExtraSpecs('fake'))['volume_backend_name'], 'fake');
    assert.ok((await cinder.getDefaultVolumeType()).name);
    const limits = await cinder.getAbsoluteLimits();
    assert.equal(typeof limits.maxTotalVolumes, 'number');
    const quota = await cinder.getQuotaUsage();
    assert.equal(typeof quota['volumes']?.in_use, 'number');
    assert.ok(quota['gigabytes_fake'], 'per-type quota keys');
    const zones = await cinder.listAvailabilityZones();
    assert.ok(zones.some((z) => z.zoneName === 'nova' && z.zoneState.available));
    const pools = await cinder.listSchedulerPools();
    for (const b of BACKENDS)
      assert.ok(
        pools.some((p) => p.name.includes(`@${b}#`)),
        `pool of ${b}`,
      );
  });

  it('groups and group snapshots (3.13/3.14) on fake', () =>
    withCleanup(async (defer) => {
      // The lab's only group type (default_cgsnapshot_type) is reserved for CG migration.
      const gtype = await cinder.createGroupType({ name: `${RUN}-${mode}-gtype`, is_public: false });
      defer(() => ignoreNotFound(cinder.deleteGroupType(gtype.id)));
      assert.equal((await cinder.getGroupType(gtype.id)).name, `${RUN}-${mode}-gtype`);
      const group = await cinder.createGroup({
        name: `${RUN}-group`,
        group_type: gtype.id,
        volume_types: ['fake'],
      });
      defer(async () => {
        await ignoreNotFound(cinder.deleteGroup(group.id, { deleteVolumes: true }));
        await cinder.waitForGroup(group.id, { target: [], gone: true, signal: wait() });
      });
      await cinder.waitForGroup(group.id, { target: ['available'], signal: wait() });
      const member = await cinder.createVolume({
        size: 1,
        name: `${RUN}-member`,
        volume_type: 'fake',
        group_id: group.id,
        metadata: RUN_META,
      });
      await cinder.waitForVolume(member.id, { target: ['available'], signal: wait() });
      assert.deepEqual((await cinder.getGroup(group.id)).volumes, [member.id]);
      const gs = await cinder.createGroupSnapshot({ group_id: group.id, name: `${RUN}-gsnap` });
      defer(async () => {
        await ignoreNotFound(cinder.deleteGroupSnapshot(gs.id));
        await cinder.waitForGroupSnapshot(gs.id, { target: [], gone: true, signal: wait() });
      });
      const done = await cinder.waitForGroupSnapshot(gs.id, { target: ['available'], signal: wait() });
      assert.equal(done?.group_id, group.id);
    }));

  it('backups: round trip when a cinder-backup service runs, else a clear refusal', async (t) => {
    const backupServices = (await cinder.listServices({ binary: 'cinder-backup' })).filter(
      (x) => x.state === 'up',
    );
    // Without the service nothing may be created: a backup made then goes to `error` and can
    // never be deleted again (DELETE -> 404 "Service cinder-backup could not be found").
    assert.deepEqual(await listAll(cinder.listBackups({ name: `${RUN}-none` })), []);
    await assert.rejects(
      cinder.getBackup(randomUUID()),
      (err: unknown) => err instanceof OpenStackError && err.notFound,
    );
    if (backupServices.length === 0) {
      t.skip('the lab runs no cinder-backup service: backup round trip not attempted');
      return;
    }
    await withCleanup(async (defer) => {
      const v = await volume(defer, { size: 1, name: `${RUN}-backup-src`, volume_type: 'fake' });
      await cinder.waitForVolume(v.id, { target: ['available'], signal: wait() });
      const b = await cinder.createBackup({ volume_id: v.id, name: `${RUN}-backup` });
      defer(async () => {
        await ignoreNotFound(cinder.deleteBackup(b.id));
        await cinder.waitForBackup(b.id, {
          target: [],
          gone: true,
          failOn: ['error_deleting'],
          signal: backupWait(),
        });
      });
      await cinder.waitForBackup(b.id, { target: ['available'], signal: backupWait() });
      const restored = await cinder.restoreBackup(b.id, { name: `${RUN}-restored` });
      defer(async () => {
        await cinder.waitForVolume(restored.volume_id, {
          target: ['available', 'error'],
          failOn: [],
          signal: backupWait(),
        });
        await ignoreNotFound(cinder.deleteVolume(restored.volume_id));
      });
      await cinder.waitForVolume(restored.volume_id, { target: ['available'], signal: backupWait() });
    });
  });
});
