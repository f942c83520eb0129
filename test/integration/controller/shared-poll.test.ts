/**
 * A burst of concurrent CreateVolume calls on the lab Cinder (noauth API, backend `fake`): their
 * waits share one volume listing per tick (src/openstack/volume-poller.ts) instead of each polling
 * its own volume. Cinder's requests are counted by the session's HTTP observer (as
 * bench/controller.ts does). Per-volume polling costs the name lookup, the POST and at least three
 * GETs per volume (the waiter's checks at 0.08, 0.19, 0.36 s... against a create of >= 0.3 s); the
 * shared poll costs the lookup, the POST and a share of the listings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { OpenStackSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { labConfig } from '../../support/lab.ts';
import { closeLab, createReq, ctx, type Lab, openLab, rand, settleLeftovers, skipReason } from './lab.ts';

const skip = await skipReason();
const N = 12;

describe('concurrent CreateVolume: one shared listing per tick (lab)', { skip }, () => {
  let lab: Lab;
  let os: OpenStackSession | undefined;
  const ops: string[] = [];
  let cinder: CinderClient;
  before(async () => {
    lab = await openLab('noauth');
    os = new OpenStackSession({
      config: labConfig('noauth'),
      logger: silentLogger(),
      observer: { onResponse: (r) => void ops.push(r.operation) },
    });
    cinder = new CinderClient({ session: os.service('block-storage'), logger: silentLogger() });
    await cinder.negotiate({ signal: AbortSignal.timeout(30_000) });
  });
  after(async () => {
    await os?.close();
    await closeLab(lab);
  });

  it(`${N} concurrent creates all succeed with fewer Cinder requests per volume than per-volume polling`, async () => {
    const svc = lab.service(lab.clusterId, cinder);
    const names = Array.from({ length: N }, (_, i) => `ctl-sp-${rand()}-${i}`);
    ops.length = 0;
    const results = await Promise.allSettled(
      names.map((name) => svc.CreateVolume(createReq(name, { parameters: { type: 'fake' } }), ctx(180_000))),
    );
    const made = ops.length;
    const ids = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.volume?.volume_id ?? ''] : []));
    try {
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.message)] : []));
      assert.deepEqual(failed, [], 'every CreateVolume succeeded');
      assert.equal(new Set(ids).size, N, 'distinct volumes');
      for (const id of ids) assert.equal((await lab.cinder.getVolume(id)).status, 'available');
      const perVolume = made / N;
      const count = (op: string) => ops.slice(0, made).filter((o) => o === op).length;
      console.log(
        `# ${N} concurrent creates: ${made} Cinder requests (${perVolume.toFixed(2)} per volume): ` +
          `${count('cinder.volume.list')} lookups, ${count('cinder.volume.create')} POSTs, ` +
          `${count('cinder.volume.get')} GETs, ${count('cinder.volume.list_changed')} shared listings`,
      );
      assert.equal(count('cinder.volume.create'), N);
      assert.ok(count('cinder.volume.list_changed') > 0, 'the waits shared listings');
      // Per-volume polling: lookup + POST + >= 3 GETs = 5 per volume.
      assert.ok(perVolume < 4.5, `${perVolume.toFixed(2)} requests per volume`);
    } finally {
      for (const id of ids) await svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx()).catch(() => {});
      assert.deepEqual(await settleLeftovers(lab, [lab.clusterId], 60_000), []);
    }
  });
});
