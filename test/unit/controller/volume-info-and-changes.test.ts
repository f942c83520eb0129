/**
 * Controller RPCs that report on volumes (ListVolumes, ControllerGetVolume, GetCapacity) or change
 * an existing one (ControllerExpandVolume, ControllerModifyVolume), against the in-memory Cinder
 * double (fake-cinder.ts); creation, deletion and validation are in volumes.test.ts. The same
 * behaviour runs against the real lab Cinder in test/integration/controller/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '../../../src/csi/errors.ts';
import { FakeCinder } from './fake-cinder.ts';
import { cap, createReq, ctx, GiB, pubReq, rejectsWith, service, TOPOLOGY_KEY } from './helpers.ts';

describe('ListVolumes / ControllerGetVolume', () => {
  it('pages this cluster only, next_token = marker, invalid token → ABORTED', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    for (let i = 0; i < 5; i++) await svc.CreateVolume(createReq(`l-${i}`), ctx());
    await service(cinder, { clusterId: 'other' }).CreateVolume(createReq('foreign'), ctx());
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const res = await svc.ListVolumes({ max_entries: 2, starting_token: token }, ctx());
      seen.push(...(res.entries ?? []).map((e) => e.volume?.volume_id ?? ''));
      token = res.next_token ?? '';
      pages++;
    } while (token && pages < 10);
    assert.equal(seen.length, 5);
    assert.equal(new Set(seen).size, 5);
    assert.ok(pages >= 3);
    await rejectsWith(svc.ListVolumes({ max_entries: 2, starting_token: 'garbage' }, ctx()), Code.ABORTED);
    await rejectsWith(
      svc.ListVolumes({ max_entries: 2, starting_token: '6a1e1b1e-0000-4000-8000-000000000000' }, ctx()),
      Code.ABORTED,
    );
  });

  it('reports published nodes and an abnormal condition for error volumes', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const v = await svc.CreateVolume(createReq('g'), ctx());
    const id = v.volume?.volume_id ?? '';
    await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    const got = await svc.ControllerGetVolume({ volume_id: id }, ctx());
    assert.deepEqual(got.status?.published_node_ids, ['node-1']);
    assert.equal(got.status?.volume_condition?.abnormal, false);
    const rec = cinder.volumes.get(id);
    if (rec) rec.status = 'error_extending';
    const bad = await svc.ControllerGetVolume({ volume_id: id }, ctx());
    assert.equal(bad.status?.volume_condition?.abnormal, true);
    assert.match(bad.status?.volume_condition?.message ?? '', /error_extending/);
    await rejectsWith(svc.ControllerGetVolume({ volume_id: 'missing' }, ctx()), Code.NOT_FOUND);
  });
});

describe('GetCapacity', () => {
  it('quota left (smallest of total and per-type), per-volume maximum, unknown zone → 0', async () => {
    const cinder = new FakeCinder({ gigabytesQuota: 50, perVolumeGigabytes: 20 });
    const svc = service(cinder);
    await svc.CreateVolume(
      createReq('cap1', { capacity_range: { required_bytes: String(4 * GiB), limit_bytes: '0' } }),
      ctx(),
    );
    const all = await svc.GetCapacity(
      { volume_capabilities: [], parameters: {}, accessible_topology: null },
      ctx(),
    );
    assert.equal(all.available_capacity, String(46 * GiB));
    assert.equal(all.maximum_volume_size?.value, String(20 * GiB));
    const typed = await svc.GetCapacity(
      { volume_capabilities: [], parameters: { type: 'fake' }, accessible_topology: null },
      ctx(),
    );
    assert.equal(typed.available_capacity, String(6 * GiB)); // gigabytes_fake limit 10, 4 used
    const zone = await svc.GetCapacity(
      {
        volume_capabilities: [],
        parameters: {},
        accessible_topology: { segments: { [TOPOLOGY_KEY]: 'mars' } },
      },
      ctx(),
    );
    assert.equal(zone.available_capacity, '0');
    const nova = await svc.GetCapacity(
      {
        volume_capabilities: [],
        parameters: {},
        accessible_topology: { segments: { [TOPOLOGY_KEY]: 'nova' } },
      },
      ctx(),
    );
    assert.equal(nova.available_capacity, String(46 * GiB));
    await rejectsWith(
      svc.GetCapacity(
        { volume_capabilities: [], parameters: { nope: '1' }, accessible_topology: null },
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
    );
  });
});

describe('ControllerExpandVolume', () => {
  it('offline and online extend, node expansion for mount only, 3.42 gate for in-use', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const v = await svc.CreateVolume(createReq('e'), ctx());
    const id = v.volume?.volume_id ?? '';
    const r1 = await svc.ControllerExpandVolume(
      {
        volume_id: id,
        capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
        secrets: {},
        volume_capability: cap(),
      },
      ctx(),
    );
    assert.deepEqual(r1, { capacity_bytes: String(2 * GiB), node_expansion_required: true });
    const pub = await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    await cinder.completeAttachment(pub.publish_context?.['attachment_id'] ?? '');
    const r2 = await svc.ControllerExpandVolume(
      {
        volume_id: id,
        capacity_range: { required_bytes: String(3 * GiB - 5), limit_bytes: '0' },
        secrets: {},
        volume_capability: cap('SINGLE_NODE_WRITER', 'block'),
      },
      ctx(),
    );
    assert.deepEqual(r2, { capacity_bytes: String(3 * GiB), node_expansion_required: false });
    assert.equal(cinder.volumes.get(id)?.status, 'in-use');
    // Already big enough: no call to Cinder's extend.
    const before = cinder.calls.filter((c) => c === 'extendVolume').length;
    await svc.ControllerExpandVolume(
      {
        volume_id: id,
        capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
        secrets: {},
        volume_capability: null,
      },
      ctx(),
    );
    assert.equal(cinder.calls.filter((c) => c === 'extendVolume').length, before);

    const old = new FakeCinder({ microversion: '3.40' });
    const svcOld = service(old);
    const ov = await svcOld.CreateVolume(createReq('e-old'), ctx());
    const oid = ov.volume?.volume_id ?? '';
    const op = await svcOld.ControllerPublishVolume(pubReq(oid, 'node-1'), ctx());
    await old.completeAttachment(op.publish_context?.['attachment_id'] ?? '');
    await rejectsWith(
      svcOld.ControllerExpandVolume(
        {
          volume_id: oid,
          capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
          secrets: {},
          volume_capability: null,
        },
        ctx(),
      ),
      Code.FAILED_PRECONDITION,
      /3\.42/,
    );
    await rejectsWith(
      svc.ControllerExpandVolume(
        {
          volume_id: 'missing',
          capacity_range: { required_bytes: '1', limit_bytes: '0' },
          secrets: {},
          volume_capability: null,
        },
        ctx(),
      ),
      Code.NOT_FOUND,
    );
  });
});

describe('ControllerModifyVolume', () => {
  it('retypes, refuses unknown keys and types, reports a refused migration', async () => {
    const cinder = new FakeCinder();
    cinder.types.push({
      id: 'type-other',
      name: 'other-backend',
      extra_specs: { volume_backend_name: 'rbd' },
    });
    const svc = service(cinder);
    const v = await svc.CreateVolume(createReq('mod', { parameters: { type: 'fake' } }), ctx());
    const id = v.volume?.volume_id ?? '';
    await rejectsWith(
      svc.ControllerModifyVolume({ volume_id: id, secrets: {}, mutable_parameters: { iops: '1' } }, ctx()),
      Code.INVALID_ARGUMENT,
    );
    await rejectsWith(
      svc.ControllerModifyVolume({ volume_id: id, secrets: {}, mutable_parameters: { type: 'nope' } }, ctx()),
      Code.INVALID_ARGUMENT,
      /does not exist/,
    );
    await svc.ControllerModifyVolume(
      { volume_id: id, secrets: {}, mutable_parameters: { type: 'fast' } },
      ctx(),
    );
    assert.equal(cinder.volumes.get(id)?.volume_type, 'fast');
    await rejectsWith(
      svc.ControllerModifyVolume(
        { volume_id: id, secrets: {}, mutable_parameters: { type: 'other-backend' } },
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
      /migration/,
    );
    await svc.ControllerModifyVolume(
      {
        volume_id: id,
        secrets: {},
        mutable_parameters: { type: 'other-backend', migrationPolicy: 'on-demand' },
      },
      ctx(),
    );
    assert.equal(cinder.volumes.get(id)?.volume_type, 'other-backend');
    await rejectsWith(
      svc.ControllerModifyVolume(
        { volume_id: 'missing', secrets: {}, mutable_parameters: { type: 'fast' } },
        ctx(),
      ),
      Code.NOT_FOUND,
    );
  });
});
