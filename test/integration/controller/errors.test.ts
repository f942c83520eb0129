/**
 * Every error code of the controller with the lab input that causes it, idempotency under
 * concurrency, deadlines, volumes that go to `error`, paging, topology, capacity and quota — on
 * the lab Cinder (fake backend), in Keystone and noauth mode. Ends by asserting nothing is left.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { META } from '../../../src/csi/controller/index.ts';
import { Code, type CsiError } from '../../../src/csi/errors.ts';
import { rejectsWith } from '../../support/csi-errors.ts';
import {
  closeLab,
  createReq,
  ctx,
  deadlineAfterCreate,
  GiB,
  type Lab,
  type Mode,
  mountCap,
  openLab,
  pubReq,
  quotaProject,
  rand,
  settleLeftovers,
  skipReason,
  TOPOLOGY_KEY,
} from './lab.ts';

const skip = await skipReason();

for (const mode of ['keystone', 'noauth'] as Mode[]) {
  describe(`controller errors, idempotency, paging, quota (${mode})`, { skip }, () => {
    let lab: Lab;
    const clusters: string[] = [];
    before(async () => {
      lab = await openLab(mode);
      clusters.push(lab.clusterId);
    });
    after(() => closeLab(lab, clusters));

    it('INVALID_ARGUMENT / OUT_OF_RANGE / NOT_FOUND / FAILED_PRECONDITION / ALREADY_EXISTS with the inputs that cause them', async () => {
      const { svc, nodes, cinder } = lab;
      const [n1, n2] = nodes as [string, string];
      await rejectsWith(svc.CreateVolume(createReq(''), ctx()), Code.INVALID_ARGUMENT, /name/);
      await rejectsWith(
        svc.CreateVolume(createReq('ctl-x', { parameters: { bogus: '1' } }), ctx()),
        Code.INVALID_ARGUMENT,
        /bogus/,
      );
      await rejectsWith(
        svc.CreateVolume(
          createReq('ctl-x', { capacity_range: { required_bytes: '0', limit_bytes: String(GiB / 2) } }),
          ctx(),
        ),
        Code.OUT_OF_RANGE,
      );
      await rejectsWith(
        svc.CreateVolume(
          createReq(`ctl-az-${rand()}`, { parameters: { type: 'fake', availability: 'mars' } }),
          ctx(),
        ),
        Code.INVALID_ARGUMENT, // the lab allows zone fallback: the misplaced volume is deleted
        /mars/,
      );
      await rejectsWith(
        svc.CreateVolume(createReq(`ctl-type-${rand()}`, { parameters: { type: 'no-such-type' } }), ctx()),
        Code.NOT_FOUND,
        /no-such-type/,
      );
      await rejectsWith(
        svc.CreateVolume(
          createReq(`ctl-r-${rand()}`, {
            volume_content_source: { snapshot: { snapshot_id: randomUUID() }, type: 'snapshot' },
          }),
          ctx(),
        ),
        Code.NOT_FOUND,
      );
      await rejectsWith(
        svc.ControllerPublishVolume(pubReq(randomUUID(), n1), ctx()),
        Code.NOT_FOUND,
        /volume/,
      );
      await rejectsWith(svc.ControllerGetVolume({ volume_id: randomUUID() }, ctx()), Code.NOT_FOUND);
      await rejectsWith(svc.GetSnapshot({ snapshot_id: randomUUID(), secrets: {} }, ctx()), Code.NOT_FOUND);

      const name = `ctl-err-${rand()}`;
      const v = await svc.CreateVolume(createReq(name, { parameters: { type: 'fake' } }), ctx());
      const id = v.volume?.volume_id ?? '';
      await rejectsWith(
        svc.ControllerPublishVolume(pubReq(id, 'ctl-no-such-node'), ctx()),
        Code.NOT_FOUND,
        /node/,
      );
      await rejectsWith(
        svc.ControllerPublishVolume(pubReq(id, 'ctl-node-without-connector'), ctx()),
        Code.FAILED_PRECONDITION,
        /connector/,
      );
      await rejectsWith(
        svc.CreateVolume(
          createReq(name, {
            parameters: { type: 'fake' },
            capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
          }),
          ctx(),
        ),
        Code.ALREADY_EXISTS,
      );
      const published = await svc.ControllerPublishVolume(pubReq(id, n1), ctx());
      await rejectsWith(
        svc.CreateSnapshot(
          { name: `${name}-early`, source_volume_id: id, secrets: {}, parameters: {} },
          ctx(),
        ),
        Code.UNAVAILABLE,
        /attaching|reserved/,
      );
      await cinder.completeAttachment(published.publish_context?.['attachment_id'] ?? ''); // as NodeStageVolume does
      await rejectsWith(
        svc.ControllerPublishVolume(pubReq(id, n2), ctx()),
        Code.FAILED_PRECONDITION,
        new RegExp(`attached to ${n1}`),
      );
      await rejectsWith(
        svc.ControllerPublishVolume(pubReq(id, n1, true), ctx()),
        Code.ALREADY_EXISTS,
        /mode rw/,
      );
      await rejectsWith(
        svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx()),
        Code.FAILED_PRECONDITION,
        new RegExp(n1),
      );
      await rejectsWith(
        svc.ControllerPublishVolume(
          { ...pubReq(id, n1), volume_capability: mountCap('MULTI_NODE_READER_ONLY') },
          ctx(),
        ),
        Code.INVALID_ARGUMENT,
        /multiattach/,
      );
      const snapName = `${name}-snap`;
      await svc.CreateSnapshot({ name: snapName, source_volume_id: id, secrets: {}, parameters: {} }, ctx());
      const other = await svc.CreateVolume(createReq(`${name}-2`, { parameters: { type: 'fake' } }), ctx());
      await rejectsWith(
        svc.CreateSnapshot(
          { name: snapName, source_volume_id: other.volume?.volume_id ?? '', secrets: {}, parameters: {} },
          ctx(),
        ),
        Code.ALREADY_EXISTS,
      );
      await rejectsWith(
        svc.ControllerModifyVolume(
          { volume_id: id, secrets: {}, mutable_parameters: { iops: '100' } },
          ctx(),
        ),
        Code.INVALID_ARGUMENT,
      );
      await rejectsWith(
        svc.ControllerModifyVolume(
          { volume_id: id, secrets: {}, mutable_parameters: { type: 'no-such-type' } },
          ctx(),
        ),
        Code.INVALID_ARGUMENT,
      );

      // read-only publish on a second volume → attachment mode ro
      const ro = await svc.ControllerPublishVolume(pubReq(other.volume?.volume_id ?? '', n2, true), ctx());
      const att = await cinder.getAttachment(ro.publish_context?.['attachment_id'] ?? '');
      assert.equal(att.attach_mode, 'ro');
      // Backups (VolumeSnapshotClass type: backup): backup-image.test.ts, on the lab's cinder-backup.
    });

    it('10 concurrent identical CreateVolume → exactly one Cinder volume; publish twice → one attachment', async () => {
      const { svc, cinder, nodes } = lab;
      const name = `ctl-conc-${rand()}`;
      const req = createReq(name, { parameters: { type: 'fake' } });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => svc.CreateVolume(req, ctx())),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const aborted = results.filter(
        (r) => r.status === 'rejected' && (r.reason as CsiError).code === Code.ABORTED,
      );
      assert.equal(ok.length + aborted.length, 10);
      assert.ok(ok.length >= 1);
      const again = await svc.CreateVolume(req, ctx());
      const page = await cinder.listVolumesPage({ name });
      assert.equal(page.items.length, 1, 'exactly one Cinder volume');
      assert.equal(page.items[0]?.id, again.volume?.volume_id);
      const id = again.volume?.volume_id ?? '';
      await Promise.allSettled([
        svc.ControllerPublishVolume(pubReq(id, nodes[0] as string), ctx()),
        svc.ControllerPublishVolume(pubReq(id, nodes[0] as string), ctx()),
      ]);
      await svc.ControllerPublishVolume(pubReq(id, nodes[0] as string), ctx());
      assert.equal((await cinder.listAttachments({ volume_id: id })).length, 1);
      await svc.ControllerUnpublishVolume({ volume_id: id, node_id: nodes[0] as string, secrets: {} }, ctx());
    });

    it('deadline while Cinder is creating → DEADLINE_EXCEEDED; the retry returns the same volume', async () => {
      // The deadline fires right after POST /volumes returned (deterministic, real Cinder).
      const ac = new AbortController();
      const real = lab.cinder;
      const svc = lab.service(lab.clusterId, deadlineAfterCreate(real, ac));
      const name = `ctl-dl-${rand()}`;
      const c = { ...ctx(), signal: ac.signal };
      await rejectsWith(
        svc.CreateVolume(createReq(name, { parameters: { type: 'fake' } }), c),
        Code.DEADLINE_EXCEEDED,
        /same name picks it up/,
      );
      const page = await real.listVolumesPage({ name });
      assert.equal(page.items.length, 1);
      const retry = await lab.svc.CreateVolume(createReq(name, { parameters: { type: 'fake' } }), ctx());
      assert.equal(retry.volume?.volume_id, page.items[0]?.id);
    });

    it('a volume that goes to error: Cinder message surfaced, code from the cause, nothing left behind', async () => {
      const type = await lab.createType({ volume_backend_name: `ctl-nowhere-${rand()}` });
      const name = `ctl-bad-${rand()}`;
      await rejectsWith(
        lab.svc.CreateVolume(createReq(name, { parameters: { type } }), ctx()),
        Code.RESOURCE_EXHAUSTED,
        /went to error: .*backend/i,
      );
      const end = Date.now() + 20_000;
      let left = (await lab.cinder.listVolumesPage({ name })).items;
      while (left.length > 0 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 300));
        left = (await lab.cinder.listVolumesPage({ name })).items;
      }
      assert.deepEqual(left, []);
    });

    it('paging across pages of this cluster only; invalid tokens → ABORTED', async () => {
      const cluster = `ctl-page-${rand()}`;
      clusters.push(cluster);
      const svc = lab.service(cluster);
      const made = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          svc.CreateVolume(createReq(`ctl-page-${i}-${rand()}`, { parameters: { type: 'fake' } }), ctx()),
        ),
      );
      const seen: string[] = [];
      let token = '';
      let pages = 0;
      do {
        const res = await svc.ListVolumes({ max_entries: 2, starting_token: token }, ctx());
        assert.ok((res.entries ?? []).length <= 2);
        seen.push(...(res.entries ?? []).map((e) => e.volume?.volume_id ?? ''));
        token = res.next_token ?? '';
        pages++;
      } while (token && pages < 10);
      assert.deepEqual([...seen].sort(), made.map((m) => m.volume?.volume_id ?? '').sort());
      assert.ok(pages >= 3, `pages: ${pages}`);
      await rejectsWith(
        svc.ListVolumes({ max_entries: 2, starting_token: 'not-a-token' }, ctx()),
        Code.ABORTED,
      );
      await rejectsWith(
        svc.ListVolumes({ max_entries: 2, starting_token: randomUUID() }, ctx()),
        Code.ABORTED,
      );
      for (const m of made)
        await svc.DeleteVolume({ volume_id: m.volume?.volume_id ?? '', secrets: {} }, ctx());
    });

    it('topology and capacity: zone nova, unknown zone → 0; quota exhaustion on a temporary project', async () => {
      const nova = await lab.svc.GetCapacity(
        {
          volume_capabilities: [],
          parameters: { type: 'fake' },
          accessible_topology: { segments: { [TOPOLOGY_KEY]: 'nova' } },
        },
        ctx(),
      );
      assert.ok(BigInt(String(nova.available_capacity ?? 0)) > 0n);
      const mars = await lab.svc.GetCapacity(
        {
          volume_capabilities: [],
          parameters: {},
          accessible_topology: { segments: { [TOPOLOGY_KEY]: 'mars' } },
        },
        ctx(),
      );
      assert.equal(mars.available_capacity, '0');

      const { lab: q, cleanup } = await quotaProject(lab, 2);
      try {
        const cap = await q.svc.GetCapacity(
          { volume_capabilities: [], parameters: {}, accessible_topology: null },
          ctx(),
        );
        assert.equal(cap.available_capacity, String(2 * GiB));
        const err = await rejectsWith(
          q.svc.CreateVolume(
            createReq(`ctl-quota-${rand()}`, {
              parameters: { type: 'fake' },
              capacity_range: { required_bytes: String(3 * GiB), limit_bytes: '0' },
            }),
            ctx(),
          ),
          Code.RESOURCE_EXHAUSTED,
          /quota/i,
        );
        assert.match(err.message, /gigabytes/i);
        const fits = await q.svc.CreateVolume(
          createReq(`ctl-quota-${rand()}`, {
            parameters: { type: 'fake' },
            capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
          }),
          ctx(),
        );
        const after = await q.svc.GetCapacity(
          { volume_capabilities: [], parameters: {}, accessible_topology: null },
          ctx(),
        );
        assert.equal(after.available_capacity, '0');
        await q.svc.DeleteVolume({ volume_id: fits.volume?.volume_id ?? '', secrets: {} }, ctx());
      } finally {
        await cleanup();
      }
    });

    it('leaves nothing behind', async () => {
      // Delete what the error test created (two volumes, a snapshot, an attachment).
      const vols: string[] = [];
      for await (const v of lab.cinder.listVolumes({ metadata: { [META.cluster]: lab.clusterId } }))
        vols.push(v.id);
      for (const id of vols)
        await lab.svc.ControllerUnpublishVolume({ volume_id: id, node_id: '', secrets: {} }, ctx());
      for await (const s of lab.cinder.listSnapshots({})) {
        if (s.metadata?.[META.cluster] === lab.clusterId)
          await lab.svc.DeleteSnapshot({ snapshot_id: s.id, secrets: {} }, ctx());
      }
      for (const id of vols) await lab.svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
      assert.deepEqual(await settleLeftovers(lab, clusters), []);
    });
  });
}
