/**
 * Snapshot RPCs against the in-memory Cinder double. The backup path is only tested here: the
 * lab has no cinder-backup service (see the integration test for the mapped error there).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BACKUP_ID_PREFIX, META } from '../../../src/csi/controller/index.ts';
import { Code } from '../../../src/csi/errors.ts';
import { FakeCinder } from './fake-cinder.ts';
import { createReq, ctx, GiB, rejectsWith, service } from './helpers.ts';

async function setup(cinder = new FakeCinder()) {
  const svc = service(cinder);
  const v = await svc.CreateVolume(createReq('snap-src'), ctx());
  return { cinder, svc, id: v.volume?.volume_id ?? '' };
}

const snapReq = (name: string, source: string, parameters: Record<string, string> = {}) => ({
  name,
  source_volume_id: source,
  secrets: {},
  parameters,
});

describe('CreateSnapshot', () => {
  it('creates a ready snapshot, idempotent by name + source, other source → ALREADY_EXISTS', async () => {
    const { cinder, svc, id } = await setup();
    const a = await svc.CreateSnapshot(
      snapReq('snap-1', id, {
        'csi.storage.k8s.io/volumesnapshot/name': 'vs',
        'csi.storage.k8s.io/volumesnapshot/namespace': 'ns',
      }),
      ctx(),
    );
    assert.equal(a.snapshot?.ready_to_use, true);
    assert.equal(a.snapshot?.source_volume_id, id);
    assert.equal(a.snapshot?.size_bytes, String(GiB));
    assert.ok(Number(a.snapshot?.creation_time?.seconds) > 1_700_000_000);
    const s = cinder.snapshots.get(a.snapshot?.snapshot_id ?? '');
    assert.equal(s?.metadata[META.csiName], 'snap-1');
    assert.equal(s?.metadata['csi.storage.k8s.io/volumesnapshot/name'], 'vs');
    const b = await svc.CreateSnapshot(snapReq('snap-1', id), ctx());
    assert.equal(b.snapshot?.snapshot_id, a.snapshot?.snapshot_id);
    assert.equal(cinder.snapshots.size, 1);
    const other = await svc.CreateVolume(createReq('other-src'), ctx());
    await rejectsWith(
      svc.CreateSnapshot(snapReq('snap-1', other.volume?.volume_id ?? ''), ctx()),
      Code.ALREADY_EXISTS,
    );
  });

  it('validation: name, source, unknown parameter, missing source → NOT_FOUND', async () => {
    const { svc, id } = await setup();
    await rejectsWith(svc.CreateSnapshot(snapReq('', id), ctx()), Code.INVALID_ARGUMENT);
    await rejectsWith(svc.CreateSnapshot(snapReq('x', ''), ctx()), Code.INVALID_ARGUMENT);
    await rejectsWith(svc.CreateSnapshot(snapReq('x', id, { type: 'clone' }), ctx()), Code.INVALID_ARGUMENT);
    await rejectsWith(
      svc.CreateSnapshot(snapReq('x', id, { bogus: '1' }), ctx()),
      Code.INVALID_ARGUMENT,
      /bogus/,
    );
    await rejectsWith(svc.CreateSnapshot(snapReq('x', 'missing'), ctx()), Code.NOT_FOUND);
  });

  it('snapshots an in-use volume with force; force=false refuses', async () => {
    const { cinder, svc, id } = await setup();
    const pub = await svc
      .ControllerPublishVolume(
        {
          volume_id: id,
          node_id: 'node-1',
          volume_capability: null as never,
          readonly: false,
          secrets: {},
          volume_context: {},
        },
        ctx(),
      )
      .catch(() => undefined);
    assert.equal(pub, undefined, 'publish without a capability is refused');
    const att = await cinder.createAttachment({ volume_uuid: id, connector: { host: 'node-1' } });
    await cinder.completeAttachment(att.id);
    await rejectsWith(
      svc.CreateSnapshot(snapReq('s-in-use', id, { force: 'false' }), ctx()),
      Code.FAILED_PRECONDITION,
    );
    const s = await svc.CreateSnapshot(snapReq('s-in-use', id), ctx());
    assert.equal(s.snapshot?.ready_to_use, true);
  });

  it('returns ready_to_use=false when the snapshot is not ready in time; the next call completes it', async () => {
    const cinder = new FakeCinder({ delayMs: 400 });
    const svc = service(cinder);
    const v = await svc.CreateVolume(createReq('slow-src'), ctx());
    const first = await svc.CreateSnapshot(snapReq('slow', v.volume?.volume_id ?? ''), ctx(1200));
    assert.equal(first.snapshot?.ready_to_use, false);
    await new Promise((r) => setTimeout(r, 450));
    const second = await svc.CreateSnapshot(snapReq('slow', v.volume?.volume_id ?? ''), ctx());
    assert.equal(second.snapshot?.ready_to_use, true);
    assert.equal(second.snapshot?.snapshot_id, first.snapshot?.snapshot_id);
  });

  it('type backup: backup from a temporary snapshot that is then deleted; restore; delete', async () => {
    const { cinder, svc, id } = await setup();
    const res = await svc.CreateSnapshot(snapReq('bk-1', id, { type: 'backup' }), ctx());
    const sid = res.snapshot?.snapshot_id ?? '';
    assert.ok(sid.startsWith(BACKUP_ID_PREFIX));
    assert.equal(res.snapshot?.ready_to_use, true);
    assert.equal(cinder.backups.size, 1);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(cinder.snapshots.size, 0, 'temporary snapshot removed');
    const again = await svc.CreateSnapshot(snapReq('bk-1', id, { type: 'backup' }), ctx());
    assert.equal(again.snapshot?.snapshot_id, sid);
    assert.equal(cinder.backups.size, 1);
    const got = await svc.GetSnapshot({ snapshot_id: sid, secrets: {} }, ctx());
    assert.equal(got.snapshot?.source_volume_id, id);
    const restored = await svc.CreateVolume(
      createReq('from-backup', {
        volume_content_source: { snapshot: { snapshot_id: sid }, type: 'snapshot' },
      }),
      ctx(),
    );
    // Cinder's volume view shows no backup id: the requested source comes back all the same
    // (external-provisioner v5+ deletes a volume whose content_source differs from the request).
    assert.deepEqual(restored.volume?.content_source, { snapshot: { snapshot_id: sid } });
    const rv = cinder.volumes.get(restored.volume?.volume_id ?? '');
    // The restore replaced the metadata with the backed-up volume's (CSI name 'snap-src'); repaired.
    assert.equal(rv?.metadata[META.csiName], 'from-backup');
    assert.equal(rv?.metadata[META.source], sid);
    assert.equal(rv?.metadata['src_backup_id'], sid.slice(BACKUP_ID_PREFIX.length));
    const retry = await svc.CreateVolume(
      createReq('from-backup', {
        volume_content_source: { snapshot: { snapshot_id: sid }, type: 'snapshot' },
      }),
      ctx(),
    );
    assert.equal(retry.volume?.volume_id, rv?.id);
    assert.deepEqual(retry.volume?.content_source, { snapshot: { snapshot_id: sid } });
    const listed = await svc.ControllerGetVolume({ volume_id: rv?.id ?? '' }, ctx());
    assert.deepEqual(listed.volume?.content_source, { snapshot: { snapshot_id: sid } });
    await svc.DeleteVolume({ volume_id: rv?.id ?? '', secrets: {} }, ctx());
    await svc.DeleteSnapshot({ snapshot_id: sid, secrets: {} }, ctx());
    assert.equal(cinder.backups.size, 0);
    await svc.DeleteSnapshot({ snapshot_id: sid, secrets: {} }, ctx());
  });

  it('type backup without a backup service → FAILED_PRECONDITION saying so; backup and temporary snapshot removed', async () => {
    const { cinder, svc, id } = await setup(new FakeCinder({ backupService: false }));
    await rejectsWith(
      svc.CreateSnapshot(snapReq('bk-2', id, { type: 'backup' }), ctx()),
      Code.FAILED_PRECONDITION,
      /cinder-backup/,
    );
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(cinder.backups.size, 0);
    assert.equal(cinder.snapshots.size, 0);
  });
});

describe('DeleteSnapshot / ListSnapshots / GetSnapshot', () => {
  async function restoredFrom(svc: ReturnType<typeof service>, id: string) {
    const s = await svc.CreateSnapshot(snapReq('dep', id), ctx());
    const sid = s.snapshot?.snapshot_id ?? '';
    const restored = await svc.CreateVolume(
      createReq('restored', { volume_content_source: { snapshot: { snapshot_id: sid }, type: 'snapshot' } }),
      ctx(),
    );
    return { sid, rid: restored.volume?.volume_id ?? '' };
  }

  it('a snapshot with restored volumes: Cinder decides; independent copies → deleted, no volume listing', async () => {
    const { cinder, svc, id } = await setup();
    const { sid, rid } = await restoredFrom(svc, id);
    cinder.calls.length = 0;
    await svc.DeleteSnapshot({ snapshot_id: sid, secrets: {} }, ctx());
    assert.equal(cinder.snapshots.size, 0);
    assert.ok(cinder.volumes.has(rid), 'the restored volume is untouched');
    assert.ok(!cinder.calls.includes('listVolumes'), `no volume listing: ${cinder.calls.join(',')}`);
    await svc.DeleteSnapshot({ snapshot_id: sid, secrets: {} }, ctx());
    await rejectsWith(svc.DeleteSnapshot({ snapshot_id: '', secrets: {} }, ctx()), Code.INVALID_ARGUMENT);
  });

  it('copy-on-write backend refuses → FAILED_PRECONDITION with its reason and the dependents (one narrow query)', async () => {
    const { cinder, svc, id } = await setup(new FakeCinder({ cowSnapshots: true }));
    const { sid, rid } = await restoredFrom(svc, id);
    for (let i = 0; i < 3; i++) await cinder.createVolume({ size: 1, name: `unrelated-${i}` });
    cinder.calls.length = 0;
    await rejectsWith(
      svc.DeleteSnapshot({ snapshot_id: sid, secrets: {} }, ctx()),
      Code.FAILED_PRECONDITION,
      new RegExp(`Snapshot is busy.*${rid}`),
    );
    assert.equal(cinder.calls.filter((c) => c === 'listVolumes').length, 1);
    assert.equal(cinder.snapshots.get(sid)?.status, 'available');
    await svc.DeleteVolume({ volume_id: rid, secrets: {} }, ctx());
    await svc.DeleteSnapshot({ snapshot_id: sid, secrets: {} }, ctx());
    assert.equal(cinder.snapshots.size, 0);
  });

  it('copy-on-write refusal for a non-admin (snapshot_id filter refused) names no volumes and lists nothing else', async () => {
    const { svc, id } = await setup(new FakeCinder({ cowSnapshots: true, nonAdmin: true }));
    const { sid, rid } = await restoredFrom(svc, id);
    const err = await svc.DeleteSnapshot({ snapshot_id: sid, secrets: {} }, ctx()).catch((e) => e);
    assert.equal(err.code, Code.FAILED_PRECONDITION);
    assert.match(err.message, /Snapshot is busy.*copy-on-write/);
    assert.doesNotMatch(err.message, new RegExp(rid));
  });

  it('lists this cluster only with paging, by id and by source; GetSnapshot NOT_FOUND', async () => {
    const { cinder, svc, id } = await setup();
    for (let i = 0; i < 3; i++) await svc.CreateSnapshot(snapReq(`ls-${i}`, id), ctx());
    await cinder.createSnapshot({ volume_id: id, name: 'not-ours' });
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const r = await svc.ListSnapshots(
        { max_entries: 2, starting_token: token, source_volume_id: '', snapshot_id: '', secrets: {} },
        ctx(),
      );
      seen.push(...(r.entries ?? []).map((e) => e.snapshot?.snapshot_id ?? ''));
      token = r.next_token ?? '';
      pages++;
    } while (token && pages < 10);
    assert.equal(seen.length, 3);
    const one = await svc.ListSnapshots(
      { max_entries: 0, starting_token: '', source_volume_id: '', snapshot_id: seen[0] ?? '', secrets: {} },
      ctx(),
    );
    assert.equal(one.entries?.length, 1);
    const wrongSource = await svc.ListSnapshots(
      { max_entries: 0, starting_token: '', source_volume_id: 'x', snapshot_id: seen[0] ?? '', secrets: {} },
      ctx(),
    );
    assert.equal(wrongSource.entries?.length, 0);
    const none = await svc.ListSnapshots(
      { max_entries: 0, starting_token: '', source_volume_id: '', snapshot_id: 'missing', secrets: {} },
      ctx(),
    );
    assert.equal(none.entries?.length, 0);
    await rejectsWith(
      svc.ListSnapshots(
        { max_entries: 1, starting_token: 'bad', source_volume_id: '', snapshot_id: '', secrets: {} },
        ctx(),
      ),
      Code.ABORTED,
    );
    await rejectsWith(svc.GetSnapshot({ snapshot_id: 'missing', secrets: {} }, ctx()), Code.NOT_FOUND);
  });
});
