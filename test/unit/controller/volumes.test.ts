/**
 * Controller volume RPCs against the in-memory Cinder double (fake-cinder.ts). The same behaviour
 * runs against the real lab Cinder in test/integration/controller/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONTROLLER_CAPABILITIES, META } from '../../../src/csi/controller/index.ts';
import { Code } from '../../../src/csi/errors.ts';
import { FakeCinder } from './fake-cinder.ts';
import { cap, createReq, ctx, GiB, pubReq, rejectsWith, service, TOPOLOGY_KEY } from './helpers.ts';

describe('ControllerGetCapabilities', () => {
  it('advertises exactly the implemented RPC capabilities', async () => {
    const svc = service(new FakeCinder());
    const res = await svc.ControllerGetCapabilities({}, ctx());
    const types = (res.capabilities ?? []).map((c) => c.rpc?.type);
    assert.deepEqual(types, [...CONTROLLER_CAPABILITIES]);
    assert.equal(new Set(types).size, 15);
  });
});

describe('CreateVolume', () => {
  it('validates name, capabilities, parameters and the capacity range', async () => {
    const svc = service(new FakeCinder());
    await rejectsWith(svc.CreateVolume(createReq(''), ctx()), Code.INVALID_ARGUMENT, /name is required/);
    await rejectsWith(
      svc.CreateVolume(createReq('a', { volume_capabilities: [] }), ctx()),
      Code.INVALID_ARGUMENT,
    );
    await rejectsWith(
      svc.CreateVolume(createReq('a', { parameters: { type: 'fake', fsType: 'xfs', bogus: '1' } }), ctx()),
      Code.INVALID_ARGUMENT,
      /parameter\(s\) "bogus"; supported/,
    );
    await rejectsWith(
      svc.CreateVolume(
        createReq('a', { capacity_range: { required_bytes: '1', limit_bytes: String(GiB / 2) } }),
        ctx(),
      ),
      Code.OUT_OF_RANGE,
    );
    await rejectsWith(
      svc.CreateVolume(createReq('a', { mutable_parameters: { iops: '3' } }), ctx()),
      Code.INVALID_ARGUMENT,
      /iops/,
    );
  });

  it('creates a volume with marker metadata, rounded size and its actual zone', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const res = await svc.CreateVolume(
      createReq('pvc-1', {
        capacity_range: { required_bytes: String(GiB + 1), limit_bytes: '0' },
        parameters: {
          type: 'fake',
          'csi.storage.k8s.io/pvc/name': 'data',
          'csi.storage.k8s.io/pvc/namespace': 'ns',
          'csi.storage.k8s.io/pv/name': 'pvc-1',
          metadata: 'team=storage',
        },
        accessibility_requirements: { requisite: [{ segments: { [TOPOLOGY_KEY]: 'nova' } }], preferred: [] },
      }),
      ctx(),
    );
    const v = cinder.volumes.get(res.volume?.volume_id ?? '');
    assert.ok(v);
    assert.equal(v.status, 'available');
    assert.equal(v.size, 2);
    assert.equal(res.volume?.capacity_bytes, String(2 * GiB));
    assert.deepEqual(res.volume?.accessible_topology, [{ segments: { [TOPOLOGY_KEY]: 'nova' } }]);
    assert.equal(v.metadata[META.csiName], 'pvc-1');
    assert.equal(v.metadata[META.cluster], 'test-cluster');
    assert.equal(v.metadata['csi.storage.k8s.io/pvc/name'], 'data');
    assert.equal(v.metadata['team'], 'storage');
    assert.equal(v.availability_zone, 'nova');
  });

  it('is idempotent by name and refuses incompatible re-creates', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const a = await svc.CreateVolume(createReq('pvc-2', { parameters: { type: 'fake' } }), ctx());
    const b = await svc.CreateVolume(createReq('pvc-2', { parameters: { type: 'fake' } }), ctx());
    assert.equal(a.volume?.volume_id, b.volume?.volume_id);
    assert.equal(cinder.volumes.size, 1);
    await rejectsWith(
      svc.CreateVolume(
        createReq('pvc-2', { capacity_range: { required_bytes: String(5 * GiB), limit_bytes: '0' } }),
        ctx(),
      ),
      Code.ALREADY_EXISTS,
      /size 1 GiB/,
    );
    await rejectsWith(
      svc.CreateVolume(createReq('pvc-2', { parameters: { type: 'fast' } }), ctx()),
      Code.ALREADY_EXISTS,
      /type/,
    );
    // Another cluster with the same name gets its own volume.
    const other = service(cinder, { clusterId: 'other' });
    const c = await other.CreateVolume(createReq('pvc-2'), ctx());
    assert.notEqual(c.volume?.volume_id, a.volume?.volume_id);
  });

  it('10 concurrent identical calls make exactly one Cinder volume; losers get ABORTED, a retry succeeds', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => svc.CreateVolume(createReq('pvc-c'), ctx())),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 1);
    assert.ok(failed.every((r) => r.reason.code === Code.ABORTED));
    assert.equal(cinder.volumes.size, 1);
    const retry = await svc.CreateVolume(createReq('pvc-c'), ctx());
    assert.equal(retry.volume?.volume_id, [...cinder.volumes.keys()][0]);
  });

  it('deadline while creating → DEADLINE_EXCEEDED, the retry picks the same volume up', async () => {
    const cinder = new FakeCinder();
    cinder.holdCreating = true;
    const svc = service(cinder);
    await rejectsWith(
      svc.CreateVolume(createReq('pvc-slow'), ctx(60)),
      Code.DEADLINE_EXCEEDED,
      /still creating/,
    );
    assert.equal(cinder.volumes.size, 1);
    const id = [...cinder.volumes.keys()][0] ?? '';
    cinder.holdCreating = false;
    setTimeout(() => cinder.finishCreating(id), 30);
    const res = await svc.CreateVolume(createReq('pvc-slow'), ctx());
    assert.equal(res.volume?.volume_id, id);
    assert.equal(cinder.volumes.size, 1);
  });

  it('a volume that goes to error: reason surfaced, code from the cause, volume deleted', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    await rejectsWith(
      svc.CreateVolume(createReq('pvc-err', { parameters: { type: 'broken' } }), ctx()),
      Code.RESOURCE_EXHAUSTED,
      /Could not find any available weighted backend/,
    );
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(cinder.volumes.size, 0);
  });

  it('quota → RESOURCE_EXHAUSTED with Cinder words; unknown type / zone → INVALID_ARGUMENT / NOT_FOUND', async () => {
    const cinder = new FakeCinder({ gigabytesQuota: 3 });
    const svc = service(cinder);
    await rejectsWith(
      svc.CreateVolume(
        createReq('big', { capacity_range: { required_bytes: String(4 * GiB), limit_bytes: '0' } }),
        ctx(),
      ),
      Code.RESOURCE_EXHAUSTED,
      /exceeds allowed gigabytes quota/,
    );
    await rejectsWith(
      svc.CreateVolume(createReq('z', { parameters: { availability: 'mars' } }), ctx()),
      Code.INVALID_ARGUMENT,
      /mars/,
    );
    assert.equal(cinder.volumes.size, 0);
  });

  it('a zone Cinder replaced by its fallback zone → INVALID_ARGUMENT and the misplaced volume deleted', async () => {
    const cinder = new FakeCinder();
    cinder.zoneFallback = true;
    const svc = service(cinder);
    await rejectsWith(
      svc.CreateVolume(
        createReq('zf', {
          accessibility_requirements: {
            requisite: [{ segments: { [TOPOLOGY_KEY]: 'mars' } }],
            preferred: [],
          },
        }),
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
      /mars.*nova/,
    );
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(cinder.volumes.size, 0);
  });

  it('content sources: missing → NOT_FOUND, size at least the source, clone and restore recorded', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    await rejectsWith(
      svc.CreateVolume(
        createReq('r', { volume_content_source: { snapshot: { snapshot_id: 'nope' }, type: 'snapshot' } }),
        ctx(),
      ),
      Code.NOT_FOUND,
    );
    await rejectsWith(
      svc.CreateVolume(
        createReq('r', { volume_content_source: { volume: { volume_id: 'nope' }, type: 'volume' } }),
        ctx(),
      ),
      Code.NOT_FOUND,
    );
    const src = await svc.CreateVolume(
      createReq('src', { capacity_range: { required_bytes: String(3 * GiB), limit_bytes: '0' } }),
      ctx(),
    );
    const srcId = src.volume?.volume_id ?? '';
    const clone = await svc.CreateVolume(
      createReq('clone', { volume_content_source: { volume: { volume_id: srcId }, type: 'volume' } }),
      ctx(),
    );
    assert.equal(clone.volume?.capacity_bytes, String(3 * GiB));
    assert.deepEqual(clone.volume?.content_source, { volume: { volume_id: srcId } });
    await rejectsWith(
      svc.CreateVolume(
        createReq('clone2', {
          capacity_range: { required_bytes: '0', limit_bytes: String(2 * GiB) },
          volume_content_source: { volume: { volume_id: srcId }, type: 'volume' },
        }),
        ctx(),
      ),
      Code.OUT_OF_RANGE,
    );
  });

  it('multi-node modes need a multiattach type', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    await rejectsWith(
      svc.CreateVolume(
        createReq('m', { volume_capabilities: [cap('MULTI_NODE_MULTI_WRITER', 'block')] }),
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
      /multiattach/,
    );
    const ok = await svc.CreateVolume(
      createReq('m', {
        volume_capabilities: [cap('MULTI_NODE_MULTI_WRITER', 'block')],
        parameters: { type: 'multi' },
      }),
      ctx(),
    );
    assert.equal(cinder.volumes.get(ok.volume?.volume_id ?? '')?.multiattach, true);
  });

  it('mutable_parameters type is used at creation', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const res = await svc.CreateVolume(
      createReq('mut', { parameters: { type: 'fake' }, mutable_parameters: { type: 'fast' } }),
      ctx(),
    );
    assert.equal(cinder.volumes.get(res.volume?.volume_id ?? '')?.volume_type, 'fast');
  });
});

describe('DeleteVolume', () => {
  it('missing → success; attached → FAILED_PRECONDITION; snapshots → FAILED_PRECONDITION naming them; waits until gone', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    await svc.DeleteVolume({ volume_id: '6a1e1b1e-0000-4000-8000-000000000000', secrets: {} }, ctx());
    const v = await svc.CreateVolume(createReq('d1'), ctx());
    const id = v.volume?.volume_id ?? '';
    const pub = await svc.ControllerPublishVolume(pubReq(id, 'node-1'), ctx());
    await rejectsWith(
      svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx()),
      Code.FAILED_PRECONDITION,
      /node-1/,
    );
    await cinder.completeAttachment(pub.publish_context?.['attachment_id'] ?? '');
    await rejectsWith(
      svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx()),
      Code.FAILED_PRECONDITION,
      /in-use/,
    );
    await svc.ControllerUnpublishVolume({ volume_id: id, node_id: 'node-1', secrets: {} }, ctx());
    const snap = await svc.CreateSnapshot(
      { name: 's1', source_volume_id: id, secrets: {}, parameters: {} },
      ctx(),
    );
    await rejectsWith(
      svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx()),
      Code.FAILED_PRECONDITION,
      new RegExp(snap.snapshot?.snapshot_id ?? 'x'),
    );
    await svc.DeleteSnapshot({ snapshot_id: snap.snapshot?.snapshot_id ?? '', secrets: {} }, ctx());
    await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
    assert.equal(cinder.volumes.size, 0);
    await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
  });
});

describe('ValidateVolumeCapabilities', () => {
  it('confirms single-node modes, refuses multi-node on a non-multiattach volume, NOT_FOUND for a missing one', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const v = await svc.CreateVolume(createReq('vv'), ctx());
    const base = {
      volume_id: v.volume?.volume_id ?? '',
      volume_context: {},
      parameters: {},
      secrets: {},
      mutable_parameters: {},
    };
    const ok = await svc.ValidateVolumeCapabilities(
      { ...base, volume_capabilities: [cap(), cap('SINGLE_NODE_MULTI_WRITER', 'block')] },
      ctx(),
    );
    assert.ok(ok.confirmed);
    const no = await svc.ValidateVolumeCapabilities(
      { ...base, volume_capabilities: [cap('MULTI_NODE_MULTI_WRITER', 'block')] },
      ctx(),
    );
    assert.equal(no.confirmed, undefined);
    assert.match(no.message ?? '', /multiattach/);
    await rejectsWith(
      svc.ValidateVolumeCapabilities({ ...base, volume_id: 'missing', volume_capabilities: [cap()] }, ctx()),
      Code.NOT_FOUND,
    );
    await rejectsWith(
      svc.ValidateVolumeCapabilities({ ...base, volume_capabilities: [] }, ctx()),
      Code.INVALID_ARGUMENT,
    );
  });
});

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
