/**
 * CreateVolume's validation, identity and failure memory against the in-memory Cinder double
 * (fake-cinder.ts): what the lab cannot provoke deterministically (a crash between steps, the
 * clock of the back-off). The same behaviour on the real lab: test/integration/controller/create.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureMemory } from '../../../src/csi/controller/failure-memory.ts';
import { cinderName, markerValue } from '../../../src/csi/controller/identity.ts';
import { META } from '../../../src/csi/controller/index.ts';
import { poolMaxGiB } from '../../../src/csi/controller/pool-fit.ts';
import { Code, CsiError } from '../../../src/csi/errors.ts';
import { FakeCinder } from './fake-cinder.ts';
import { createReq, ctx, GiB, rejectsWith, service, TOPOLOGY_KEY } from './helpers.ts';

describe('CreateVolume validates the whole request before any Cinder call', () => {
  it('bad capacity, content source, names and text Cinder cannot store → INVALID_ARGUMENT, no lookup', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    await svc.CreateVolume(createReq('pvc-v'), ctx());
    const before = cinder.calls.length;
    for (const required of ['-1', '-9223372036854775808']) {
      await rejectsWith(
        svc.CreateVolume(
          createReq('pvc-v', { capacity_range: { required_bytes: required, limit_bytes: '0' } }),
          ctx(),
        ),
        Code.INVALID_ARGUMENT,
        /negative/,
      );
    }
    await rejectsWith(
      svc.CreateVolume(
        createReq('pvc-v', { capacity_range: { required_bytes: '0', limit_bytes: '-5' } }),
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
    );
    await rejectsWith(svc.CreateVolume(createReq('x'.repeat(129)), ctx()), Code.INVALID_ARGUMENT, /128/);
    await rejectsWith(
      svc.CreateVolume(createReq('pvc-v', { parameters: { metadata: 'team=a\u{1F600}' } }), ctx()),
      Code.INVALID_ARGUMENT,
      /4-byte/,
    );
    await rejectsWith(
      svc.CreateVolume(createReq('pvc-v', { parameters: { type: 'fa\nke' } }), ctx()),
      Code.INVALID_ARGUMENT,
      /control character/,
    );
    await rejectsWith(
      svc.CreateVolume(
        createReq('pvc-v', {
          volume_content_source: { snapshot: { snapshot_id: '' }, type: 'snapshot' },
        }),
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
    );
    assert.equal(cinder.calls.length, before, 'no Cinder call for an invalid request');
  });

  it('accepts the provisioner keys fsType (any case) and the extra-create-metadata keys', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    for (const key of ['fsType', 'fstype', 'FSTYPE']) {
      const res = await svc.CreateVolume(
        createReq(`pvc-fs-${key}`, {
          parameters: {
            [key]: 'xfs',
            'csi.storage.k8s.io/pvc/name': 'data',
            'csi.storage.k8s.io/pvc/namespace': 'ns',
            'csi.storage.k8s.io/pv/name': `pvc-fs-${key}`,
          },
        }),
        ctx(),
      );
      const v = cinder.volumes.get(res.volume?.volume_id ?? '');
      assert.equal(v?.metadata[key], undefined, 'fsType is not stored');
      assert.equal(v?.metadata['csi.storage.k8s.io/pvc/name'], 'data');
    }
  });
});

describe('CreateVolume compares every shaping parameter on the idempotent path', () => {
  it('imageRef, schedulerHints, source, multi-node, size → ALREADY_EXISTS; the same request → same volume', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const req = createReq('pvc-s', { parameters: { imageRef: 'img-a', schedulerHints: 'same_host=x' } });
    const a = await svc.CreateVolume(req, ctx());
    const b = await svc.CreateVolume(req, ctx());
    assert.equal(b.volume?.volume_id, a.volume?.volume_id);
    await rejectsWith(
      svc.CreateVolume(
        createReq('pvc-s', { parameters: { imageRef: 'img-b', schedulerHints: 'same_host=x' } }),
        ctx(),
      ),
      Code.ALREADY_EXISTS,
      /image img-b/,
    );
    await rejectsWith(
      svc.CreateVolume(
        createReq('pvc-s', { parameters: { imageRef: 'img-a', schedulerHints: 'same_host=y' } }),
        ctx(),
      ),
      Code.ALREADY_EXISTS,
      /schedulerHints/,
    );
    await rejectsWith(
      svc.CreateVolume(createReq('pvc-s'), ctx()),
      Code.ALREADY_EXISTS,
      /image:img-a, not none/,
    );
    await rejectsWith(
      svc.CreateVolume(
        createReq('pvc-s', {
          parameters: { imageRef: 'img-a', schedulerHints: 'same_host=x' },
          capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
        }),
        ctx(),
      ),
      Code.ALREADY_EXISTS,
      /size/,
    );
    assert.equal(cinder.volumes.size, 1);
  });
});

describe('CreateVolume identity: the Cinder name and the marker', () => {
  it('a name Cinder cannot store (emoji) gets a safe Cinder name, the exact name in an encoded marker', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const name = 'data-\u{1F600}-äß';
    const a = await svc.CreateVolume(createReq(name), ctx());
    const v = cinder.volumes.get(a.volume?.volume_id ?? '');
    assert.match(v?.name ?? '', /^csi-data-[A-Za-z0-9._-]*-[0-9a-f]{16}$/);
    assert.ok(/^[\x20-\x7e]+$/.test(v?.name ?? ''), 'ASCII only');
    assert.equal(v?.metadata[META.csiName], markerValue(name));
    assert.equal(Buffer.from((v?.metadata[META.csiName] ?? '').slice(4), 'base64url').toString('utf8'), name);
    const b = await svc.CreateVolume(createReq(name), ctx());
    assert.equal(b.volume?.volume_id, a.volume?.volume_id);
    // Another name that only differs in the unsafe characters gets its own volume.
    const c = await svc.CreateVolume(createReq('data-\u{1F601}-äß'), ctx());
    assert.notEqual(c.volume?.volume_id, a.volume?.volume_id);
    assert.equal(cinder.volumes.size, 2);
  });

  it('plain names stay as they are (volumes of earlier versions keep matching); derived forms are not ambiguous', () => {
    assert.equal(
      cinderName('pvc-8a3f1c2e-1b2c-4d5e-8f90-123456789abc'),
      'pvc-8a3f1c2e-1b2c-4d5e-8f90-123456789abc',
    );
    assert.equal(markerValue('pvc-1'), 'pvc-1');
    const derived = cinderName('a\u{1F600}');
    assert.notEqual(cinderName(derived), derived, 'a CSI name that looks derived is derived itself');
    assert.notEqual(markerValue(markerValue('a\u{1F600}')), markerValue('a\u{1F600}'));
    assert.ok(cinderName('\u{1F600}'.repeat(32)).length <= 64);
  });

  it('a restored volume whose metadata names another CSI volume is found by its name and description, and repaired', async () => {
    const cinder = new FakeCinder({ delayMs: 5 });
    const svc = service(cinder);
    const first = await svc.CreateVolume(createReq('pvc-r'), ctx());
    const id = first.volume?.volume_id ?? '';
    // As Cinder's restore leaves it: another volume's marker, the name and description untouched.
    const v = cinder.volumes.get(id);
    assert.ok(v);
    v.metadata = {
      [META.csiName]: 'pvc-other',
      [META.cluster]: 'test-cluster',
      'cinder.csi.dev.attachment.x': 'n1',
    };
    const again = await svc.CreateVolume(createReq('pvc-r'), ctx());
    assert.equal(again.volume?.volume_id, id);
    assert.equal(cinder.volumes.size, 1);
    assert.equal(cinder.volumes.get(id)?.metadata[META.csiName], 'pvc-r');
    assert.equal(cinder.volumes.get(id)?.metadata['cinder.csi.dev.attachment.x'], undefined);
    // The other name does not find it.
    const other = await svc.CreateVolume(createReq('pvc-other'), ctx());
    assert.notEqual(other.volume?.volume_id, id);
  });
});

describe('CreateVolume: a step that died leaves nothing for ever', () => {
  it('zone fallback, the misplaced volume not deleted (crash/lost DELETE): the retry deletes it; then answered from memory', async () => {
    const cinder = new FakeCinder();
    cinder.zoneFallback = true;
    const req = createReq('zf-crash', {
      accessibility_requirements: { requisite: [{ segments: { [TOPOLOGY_KEY]: 'mars' } }], preferred: [] },
    });
    // The first controller's DELETE never reaches Cinder.
    const lossy = new Proxy(cinder, {
      get(target, prop, receiver) {
        if (prop === 'deleteVolume') return async () => Promise.reject(new Error('connection reset'));
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    await rejectsWith(service(lossy).CreateVolume(req, ctx()), Code.INVALID_ARGUMENT, /mars/);
    assert.equal(cinder.volumes.size, 1, 'the misplaced volume is still there');
    // A restarted controller (empty memory) gets the retry: it finds the volume and deletes it.
    const svc = service(cinder);
    await rejectsWith(svc.CreateVolume(req, ctx()), Code.INVALID_ARGUMENT, /mars/);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(cinder.volumes.size, 0);
    const creates = cinder.calls.filter((c) => c === 'createVolume').length;
    await rejectsWith(svc.CreateVolume(req, ctx()), Code.INVALID_ARGUMENT, /remembered/);
    assert.equal(cinder.calls.filter((c) => c === 'createVolume').length, creates);
  });
});

describe('CreateVolume remembers a scheduling failure of the same request', () => {
  it('the retry answers RESOURCE_EXHAUSTED from memory without creating another volume', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder);
    const req = createReq('pvc-huge', { parameters: { type: 'broken' } });
    await rejectsWith(svc.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /weighted backend/);
    const creates = cinder.calls.filter((c) => c === 'createVolume').length;
    for (let i = 0; i < 5; i++) {
      await rejectsWith(svc.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /remembered/);
    }
    assert.equal(cinder.calls.filter((c) => c === 'createVolume').length, creates, 'no volume created again');
    await new Promise((r) => setTimeout(r, 30)); // the failed volume is gone
    assert.equal(cinder.volumes.size, 0);
    // Another request (other size) is asked of Cinder.
    await rejectsWith(
      svc.CreateVolume(
        createReq('pvc-huge', {
          parameters: { type: 'broken' },
          capacity_range: { required_bytes: String(2 * GiB), limit_bytes: '0' },
        }),
        ctx(),
      ),
      Code.RESOURCE_EXHAUSTED,
      /weighted backend/,
    );
  });

  it('after the back-off, visible scheduler pools that cannot hold it answer again without a new volume', async () => {
    const cinder = new FakeCinder();
    const svc = service(cinder, { failureBackoffMs: 1 });
    const req = createReq('pvc-pools', { parameters: { type: 'broken' } });
    const creates = () => cinder.calls.filter((c) => c === 'createVolume').length;
    await rejectsWith(svc.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /weighted backend/);
    await new Promise((r) => setTimeout(r, 30));
    // Pools not visible (non-admin): Cinder is asked again.
    await rejectsWith(svc.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /weighted backend/);
    assert.equal(creates(), 2);
    await new Promise((r) => setTimeout(r, 30));
    cinder.pools = [
      {
        name: 'host@fake#fake',
        capabilities: {
          volume_backend_name: 'fake',
          total_capacity_gb: 100,
          free_capacity_gb: 80,
          thin_provisioning_support: false,
        },
      },
    ];
    await rejectsWith(
      svc.CreateVolume(req, ctx()),
      Code.RESOURCE_EXHAUSTED,
      /no Cinder scheduler pool of volume type broken/,
    );
    assert.equal(creates(), 2, 'no volume created');
    await rejectsWith(svc.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /remembered/);
  });

  it('pool bounds: thick free space, thin over-subscription, unknown capacity fits anything', () => {
    assert.equal(poolMaxGiB({ total_capacity_gb: 100, free_capacity_gb: 40, reserved_percentage: 10 }), 30);
    assert.equal(
      poolMaxGiB({
        total_capacity_gb: 100,
        free_capacity_gb: 40,
        thin_provisioning_support: true,
        max_over_subscription_ratio: '20.0',
        provisioned_capacity_gb: 500,
      }),
      1500,
    );
    assert.equal(
      poolMaxGiB({ total_capacity_gb: 'infinite', free_capacity_gb: 'infinite' }),
      Number.POSITIVE_INFINITY,
    );
    assert.equal(
      poolMaxGiB({
        total_capacity_gb: 10,
        free_capacity_gb: 5,
        thin_provisioning_support: true,
        max_over_subscription_ratio: 'auto',
      }),
      Number.POSITIVE_INFINITY,
    );
  });

  it('the memory is bounded, expires, and doubles its back-off per repeated failure', () => {
    let now = 0;
    const m = new FailureMemory({ baseMs: 1000, maxMs: 4000, maxEntries: 3, now: () => now });
    const err = new CsiError(Code.RESOURCE_EXHAUSTED, 'no capacity');
    m.remember('a', err);
    assert.throws(() => m.check('a'), /no capacity.*remembered/);
    now = 1001;
    m.check('a');
    m.remember('a', err); // 2 s
    now = 2900;
    assert.throws(() => m.check('a'));
    now = 3002;
    m.check('a');
    for (const k of ['b', 'c', 'd', 'e']) m.remember(k, err);
    assert.equal(m.size, 3);
    m.check('a'); // evicted
  });
});
