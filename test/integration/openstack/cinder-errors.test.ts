/**
 * CinderClient's errors against the real lab Cinder, in both auth modes: a call above the negotiated
 * microversion refused locally, 404/400 and quota refusals mapped to OpenStackError with Cinder's
 * message, a volume gone to error explained with its user message. Fixture: cinder-fixture.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { it } from 'node:test';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { MicroversionError, OpenStackError } from '../../../src/openstack/errors.ts';
import { WaitFailedError } from '../../../src/openstack/waiter.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { CONNECTOR, describeOnLab, RUN, wait, withCleanup } from './cinder-fixture.ts';

describeOnLab('CinderClient errors on the lab', ({ lab, session, cinder, volume }) => {
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
});
