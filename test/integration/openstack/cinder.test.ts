/**
 * CinderClient against the real lab Cinder (test/lab), in both auth modes (Keystone on :8776, noauth
 * on :8786) and on every backend (fake, rbd, tgt). Every resource is named with RUN (a per-run
 * prefix) and carries RUN_META so concurrent engineers' volumes never disturb the assertions, and
 * everything created is deleted in `finally` blocks (attachments before volumes).
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CinderClient, ignoreNotFound } from '../../../src/openstack/cinder.ts';
import type { Attachment, Volume } from '../../../src/openstack/cinder-types.ts';
import { MicroversionError, OpenStackError } from '../../../src/openstack/errors.ts';
import { WaitFailedError } from '../../../src/openstack/waiter.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { type LabMode, labSession } from './cinder-lab-session.ts';

const RUN = `cinderclient-it-${randomBytes(3).toString('hex')}`;
const RUN_META = { 'cinderclient-it': RUN };
const BACKENDS = ['fake', 'rbd', 'tgt'] as const;
const CONNECTOR = {
  host: `${RUN}-node`,
  initiator: 'iqn.1993-08.org.debian:01:cinderclientit',
  ip: '127.0.0.1',
  platform: 'x86_64',
  os_type: 'linux',
  multipath: false,
  do_local_attach: false,
};
/** Upper bound for one wait on the lab (create is ~0.5 s; rbd clones up to ~1.3 s). */
const WAIT_MS = 60_000;
const wait = () => AbortSignal.timeout(WAIT_MS);
/** cinder-backup reads and checksums the whole volume, one backup after another: give it room. */
const BACKUP_WAIT_MS = 300_000;
const backupWait = () => AbortSignal.timeout(BACKUP_WAIT_MS);

async function listAll<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Runs `fn` and collects cleanup steps that run in reverse order even when `fn` fails. */
async function withCleanup(
  fn: (defer: (step: () => Promise<unknown>) => void) => Promise<void>,
): Promise<void> {
  const steps: (() => Promise<unknown>)[] = [];
  try {
    await fn((s) => steps.push(s));
  } finally {
    for (const step of steps.reverse()) {
      await step().catch((err) => console.error(`cleanup failed: ${(err as Error).message}`));
    }
  }
}

for (const mode of ['keystone', 'noauth'] as LabMode[]) {
  describe(`CinderClient on the lab (${mode})`, async () => {
    const lab = await labSession(mode);
    if (!lab.session) {
      it('lab round trips', { skip: lab.reason }, () => {});
      return;
    }
    const session = lab.session;
    const cinder = new CinderClient({ session, logger: silentLogger() });

    /** Creates a volume and registers its deletion (after waiting for a settled state). */
    async function volume(
      defer: (s: () => Promise<unknown>) => void,
      req: Parameters<CinderClient['createVolume']>[0],
    ): Promise<Volume> {
      const v = await cinder.createVolume({ ...req, metadata: { ...RUN_META, ...req.metadata } });
      defer(async () => {
        await cinder
          .waitForVolume(v.id, { target: ['available', 'error', 'in-use'], failOn: [], signal: wait() })
          .catch(() => {});
        await ignoreNotFound(cinder.deleteVolume(v.id, { cascade: true }));
        await cinder.waitForVolume(v.id, { target: [], gone: true, signal: wait() });
      });
      return v;
    }

    /** Deletes volumes in parallel and waits until they are gone. */
    async function deleteVolumes(ids: string[]): Promise<void> {
      await Promise.all(
        ids.map(async (id) => {
          await cinder
            .waitForVolume(id, { target: ['available', 'error'], failOn: [], signal: wait() })
            .catch(() => {});
          await ignoreNotFound(cinder.deleteVolume(id, { cascade: true }));
          await cinder.waitForVolume(id, { target: [], gone: true, signal: wait() });
        }),
      );
    }

    before(() => cinder.negotiate());
    after(() => lab.close());

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

    it('refuses a call above the negotiated microversion locally', async () => {
      const capped = new CinderClient({ session, logger: silentLogger(), maxMicroversion: '3.20' });
      assert.deepEqual(await capped.negotiate(), { major: 3, minor: 20 });
      await assert.rejects(
        capped.createAttachment({ volume_uuid: randomUUID(), connector: CONNECTOR }),
        (err: unknown) =>
          err instanceof MicroversionError && /3\.27/.test(err.message) && /3\.20/.test(err.message),
      );
    });

    it("maps 404 and 400 to OpenStackError predicates with Cinder's message", async () => {
      await assert.rejects(cinder.getVolume(randomUUID()), (err: unknown) => {
        assert.ok(err instanceof OpenStackError);
        assert.ok(err.notFound);
        assert.match(err.faultMessage, /could not be found/);
        assert.ok(err.requestId?.startsWith('req-'));
        return true;
      });
      await assert.rejects(cinder.createVolume({ size: 0, name: `${RUN}-bad` }), (err: unknown) => {
        assert.ok(err instanceof OpenStackError);
        assert.ok(err.badRequest);
        return true;
      });
      await assert.rejects(
        cinder.createVolume({ size: 1, name: `${RUN}-badtype`, volume_type: `${RUN}-no-such-type` }),
        (err: unknown) => {
          assert.ok(err instanceof OpenStackError && err.notFound);
          return true;
        },
      );
    });

    it("maps a quota refusal to 413 / overQuota with Cinder's message (on a project of its own)", async () => {
      const isolated = await lab.isolatedProjectSession!();
      const project = await isolated.projectId();
      await session.request({
        method: 'PUT',
        path: `/os-quota-sets/${project}`,
        body: { quota_set: { volumes: 0 } },
        operation: 'test.quota.set',
      });
      try {
        const c = new CinderClient({ session: isolated, logger: silentLogger() });
        await assert.rejects(
          c.createVolume({ size: 1, name: `${RUN}-quota`, volume_type: 'fake' }),
          (err: unknown) => {
            assert.ok(err instanceof OpenStackError);
            assert.equal(err.status, 413);
            assert.ok(err.overQuota);
            assert.match(err.faultMessage, /VolumeLimitExceeded|quota/i);
            return true;
          },
        );
      } finally {
        await session.request({
          method: 'DELETE',
          path: `/os-quota-sets/${project}`,
          operation: 'test.quota.delete',
        });
      }
    });

    it('explains a volume that went to error with its user message', () =>
      withCleanup(async (defer) => {
        // No rbd pool of the lab (20 GiB) can hold 100 TiB: the scheduler sets `error` + a message.
        const v = await volume(defer, { size: 100_000, name: `${RUN}-toobig`, volume_type: 'rbd' });
        await assert.rejects(
          cinder.waitForVolume(v.id, { target: ['available'], signal: wait() }),
          (err: unknown) => {
            assert.ok(err instanceof WaitFailedError);
            assert.equal(err.status, 'error');
            assert.match(err.reason ?? '', /backend/i);
            assert.match(err.message, /went to status "error".*backend/);
            return true;
          },
        );
        const msg = await cinder.latestMessage(v.id);
        assert.equal(msg?.resource_type, 'VOLUME');
      }));

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
}
