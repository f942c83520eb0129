/**
 * Controller volume RPCs (capabilities, CreateVolume, DeleteVolume, ValidateVolumeCapabilities)
 * against the in-memory Cinder double (fake-cinder.ts); listing, capacity, expansion and
 * modification are in volume-info-and-changes.test.ts. The same behaviour runs against the real
 * lab Cinder in test/integration/controller/.
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
