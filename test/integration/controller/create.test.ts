/**
 * CreateVolume strands and duplicates nothing, on the lab Cinder (issue 10 items 2-5, issue 11
 * items 4 and 11): restores from `type: backup` snapshots on the real cinder-backup (content
 * source, the metadata Cinder's restore replaces, a retry during the restore), names Cinder
 * cannot store, a volume Cinder cannot schedule, validation before lookup, and the number of
 * Cinder requests of a plain create.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StaticConnectorSource } from '../../../src/csi/connector-source.ts';
import { createControllerService, META } from '../../../src/csi/controller/index.ts';
import { Code, type CsiError } from '../../../src/csi/errors.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import type { ServiceRequest, ServiceSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { rejectsWith } from '../../support/csi-errors.ts';
import { LAB_IMAGE_NAME } from '../../support/lab.ts';
import {
  closeLab,
  createReq,
  ctx,
  deadlineAfterCreate,
  type Lab,
  openLab,
  rand,
  settleLeftovers,
  skipReason,
  TOPOLOGY_KEY,
} from './lab.ts';

const skip = await skipReason();

/** A CinderClient on the lab whose HTTP requests are counted (method + path). */
async function countingClient(lab: Lab) {
  const seen: string[] = [];
  const session: ServiceSession = {
    ...lab.block,
    request: <T>(req: ServiceRequest) => {
      seen.push(`${req.method} ${req.path}`);
      return lab.block.request<T>(req);
    },
  };
  const cinder = new CinderClient({ session, logger: silentLogger() });
  await cinder.negotiate({ signal: AbortSignal.timeout(30_000) });
  seen.length = 0;
  return { cinder, seen };
}

/** The volumes of the lab project with this Cinder name. */
async function named(lab: Lab, name: string) {
  return (await lab.cinder.listVolumesPage({ name })).items;
}

describe('CreateVolume on the lab: nothing stranded, nothing duplicated', { skip }, () => {
  let lab: Lab;
  const backups: string[] = [];
  before(async () => {
    lab = await openLab('keystone');
  });
  after(async () => {
    if (!lab) return;
    for (const id of backups)
      await lab.svc.DeleteSnapshot({ snapshot_id: id, secrets: {} }, ctx(300_000)).catch(() => {});
    await closeLab(lab);
  });

  it('restore from a type=backup snapshot: requested content_source, own identity, a retry during the restore finds it', async () => {
    const { svc, cinder } = lab;
    const name = `ctl-rs-${rand()}`;
    const src = await svc.CreateVolume(
      createReq(name, { parameters: { type: 'tgt', metadata: 'team=a' } }),
      ctx(),
    );
    const srcId = src.volume?.volume_id ?? '';
    // As the snapshotter does: the same CreateSnapshot until ready_to_use.
    const snapReq = {
      name: `${name}-bk`,
      source_volume_id: srcId,
      secrets: {},
      parameters: { type: 'backup' },
    };
    let snap = await svc.CreateSnapshot(snapReq, ctx(600_000));
    const snapId = snap.snapshot?.snapshot_id ?? '';
    backups.push(snapId);
    for (let i = 0; i < 20 && !snap.snapshot?.ready_to_use; i++)
      snap = await svc.CreateSnapshot(snapReq, ctx(600_000));
    assert.equal(snap.snapshot?.ready_to_use, true);
    assert.equal(snap.snapshot?.snapshot_id, snapId);
    const content = { snapshot: { snapshot_id: snapId } };
    const restoredName = `${name}-r`;
    const req = createReq(restoredName, { parameters: { type: 'tgt' }, volume_content_source: content });

    // The first try gives up right after POST /volumes (a provisioner timeout shorter than the restore).
    const ac = new AbortController();
    const impatient = deadlineAfterCreate(cinder, ac);
    await rejectsWith(
      lab.service(lab.clusterId, impatient).CreateVolume(req, { ...ctx(), signal: ac.signal }),
      Code.DEADLINE_EXCEEDED,
    );
    // The retries (as the provisioner makes them) find the volume being restored and wait for it.
    let res: Awaited<ReturnType<typeof svc.CreateVolume>> | undefined;
    for (let i = 0; i < 20 && !res; i++) {
      res = await svc.CreateVolume(req, ctx(60_000)).catch((e: CsiError) => {
        assert.ok([Code.DEADLINE_EXCEEDED, Code.ABORTED].includes(e.code), e.message);
        return undefined;
      });
    }
    assert.ok(res, 'a retry succeeded');
    const rid = res.volume?.volume_id ?? '';
    assert.deepEqual(res.volume?.content_source, content, 'the requested content_source comes back');
    assert.equal((await named(lab, restoredName)).length, 1, 'exactly one restored volume');

    // What Cinder's restore did to the metadata, and what the driver made of it.
    const rv = await cinder.getVolume(rid);
    assert.equal(rv.name, restoredName);
    assert.equal(rv.metadata[META.csiName], restoredName, 'the restored volume carries its own identity');
    assert.equal(rv.metadata[META.cluster], lab.clusterId);
    assert.equal(rv.metadata[META.source], snapId);
    assert.equal(rv.metadata['team'], undefined, 'nothing of the backed-up volume remains');
    assert.equal(rv.metadata['src_backup_id'], snapId.slice('backup:'.length), "Cinder's own record is kept");

    const again = await svc.CreateVolume(req, ctx());
    assert.equal(again.volume?.volume_id, rid);
    assert.deepEqual(again.volume?.content_source, content);
    const got = await svc.ControllerGetVolume({ volume_id: rid }, ctx());
    assert.deepEqual(got.volume?.content_source, content);
    // The backed-up volume's name still finds only the backed-up volume.
    const srcAgain = await svc.CreateVolume(
      createReq(name, { parameters: { type: 'tgt', metadata: 'team=a' } }),
      ctx(),
    );
    assert.equal(srcAgain.volume?.volume_id, srcId);
    // Another source under the same name → ALREADY_EXISTS.
    await rejectsWith(
      svc.CreateVolume(createReq(restoredName, { parameters: { type: 'tgt' } }), ctx()),
      Code.ALREADY_EXISTS,
      /content source/,
    );

    await svc.DeleteVolume({ volume_id: rid, secrets: {} }, ctx());
    await svc.DeleteSnapshot({ snapshot_id: snapId, secrets: {} }, ctx(300_000));
    await svc.DeleteVolume({ volume_id: srcId, secrets: {} }, ctx());
  });

  it('a name Cinder cannot store (emoji): created under a safe Cinder name, found again, deleted', async () => {
    const name = `ctl-\u{1F600}-${rand()}`;
    const a = await lab.svc.CreateVolume(createReq(name, { parameters: { type: 'fake' } }), ctx());
    const v = await lab.cinder.getVolume(a.volume?.volume_id ?? '');
    assert.match(v.name ?? '', /^csi-ctl-_-[0-9a-f]{6}-[0-9a-f]{16}$/);
    assert.equal(Buffer.from((v.metadata[META.csiName] ?? '').slice(4), 'base64url').toString('utf8'), name);
    const b = await lab.svc.CreateVolume(createReq(name, { parameters: { type: 'fake' } }), ctx());
    assert.equal(b.volume?.volume_id, v.id);
    await rejectsWith(
      lab.svc.CreateVolume(
        createReq(`ctl-${rand()}`, { parameters: { type: 'fake', metadata: 'x=\u{1F600}' } }),
        ctx(),
      ),
      Code.INVALID_ARGUMENT,
      /4-byte/,
    );
    await lab.svc.DeleteVolume({ volume_id: v.id, secrets: {} }, ctx());
  });

  it('a volume Cinder cannot schedule: RESOURCE_EXHAUSTED, and the retries create nothing more', async () => {
    const type = await lab.createType({ volume_backend_name: `ctl-nowhere-${rand()}` });
    const { cinder, seen } = await countingClient(lab);
    const svc = lab.service(lab.clusterId, cinder);
    const name = `ctl-nosched-${rand()}`;
    const req = createReq(name, { parameters: { type } });
    await rejectsWith(svc.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /backend/i);
    for (let i = 0; i < 5; i++)
      await rejectsWith(svc.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /remembered/);
    assert.equal(seen.filter((s) => s === 'POST /volumes').length, 1, 'one volume created in six calls');
    // After the back-off (1 ms here), the scheduler's pools (visible to the lab's admin) say no.
    const quick = createControllerService({
      cinder,
      connectors: new StaticConnectorSource({}),
      clusterId: lab.clusterId,
      driverName: 'cinder.csi.dev',
      topologyKey: TOPOLOGY_KEY,
      logger: silentLogger(),
      failureBackoffMs: 1,
    });
    await rejectsWith(quick.CreateVolume(req, ctx()), Code.RESOURCE_EXHAUSTED, /backend/i);
    await new Promise((r) => setTimeout(r, 50));
    await rejectsWith(
      quick.CreateVolume(req, ctx()),
      Code.RESOURCE_EXHAUSTED,
      /no Cinder scheduler pool of volume type/,
    );
    assert.equal(
      seen.filter((s) => s === 'POST /volumes').length,
      2,
      'the pools answered, no volume created',
    );
    const end = Date.now() + 20_000;
    while ((await named(lab, name)).length > 0 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await named(lab, name), [], 'the failed volume is gone');
  });

  it('validates the whole request before any lookup; every shaping parameter is compared', async () => {
    const { svc } = lab;
    const name = `ctl-val-${rand()}`;
    const req = createReq(name, { parameters: { type: 'fake', imageRef: LAB_IMAGE_NAME } });
    const v = await svc.CreateVolume(req, ctx(300_000));
    const id = v.volume?.volume_id ?? '';
    for (const required of ['-1', '-9223372036854775808']) {
      await rejectsWith(
        svc.CreateVolume({ ...req, capacity_range: { required_bytes: required, limit_bytes: '0' } }, ctx()),
        Code.INVALID_ARGUMENT,
      );
    }
    await rejectsWith(
      svc.CreateVolume(createReq(name, { parameters: { type: 'fake', imageRef: `other-${rand()}` } }), ctx()),
      Code.ALREADY_EXISTS,
      /image/,
    );
    await rejectsWith(
      svc.CreateVolume(createReq(name, { parameters: { type: 'fake' } }), ctx()),
      Code.ALREADY_EXISTS,
    );
    await rejectsWith(
      svc.CreateVolume(
        createReq(name, {
          parameters: { type: 'fake', imageRef: LAB_IMAGE_NAME, schedulerHints: 'same_host=' + id },
        }),
        ctx(),
      ),
      Code.ALREADY_EXISTS,
      /schedulerHints/,
    );
    // The provisioner's fsType key (any case) is accepted and changes nothing.
    const same = await svc.CreateVolume(
      createReq(name, { parameters: { type: 'fake', imageRef: LAB_IMAGE_NAME, fsType: 'xfs' } }),
      ctx(),
    );
    assert.equal(same.volume?.volume_id, id);
    await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx());
  });

  it('a plain create makes one lookup and one POST besides the status polls (printed)', async () => {
    const { cinder, seen } = await countingClient(lab);
    const svc = lab.service(lab.clusterId, cinder);
    const v = await svc.CreateVolume(
      createReq(`ctl-count-${rand()}`, { parameters: { type: 'fake' } }),
      ctx(),
    );
    const polls = seen.filter(
      (s) => s.startsWith('GET /volumes/') && !s.startsWith('GET /volumes/detail'),
    ).length;
    console.log(
      `# plain CreateVolume: ${seen.length} Cinder requests (${polls} status polls): ${seen.join(', ')}`,
    );
    assert.equal(seen.filter((s) => s.startsWith('GET /volumes/detail')).length, 1, 'one lookup by name');
    assert.equal(seen.filter((s) => s === 'POST /volumes').length, 1);
    assert.equal(seen.length - polls, 2, 'lookup + create, nothing else');
    await lab.svc.DeleteVolume({ volume_id: v.volume?.volume_id ?? '', secrets: {} }, ctx());
  });

  it('leaves nothing behind', async () => {
    assert.deepEqual(await settleLeftovers(lab, [lab.clusterId], 60_000), []);
  });
});
