/**
 * GlanceClient on the lab's real Glance (keystone mode; test/lab uploads the image
 * `cinder-csi-lab-raw`). Where a catalog has no image service this suite skips with that reason;
 * edge cases (ambiguous names, other versions) are covered by test/unit/openstack/cinder-glance.test.ts
 * against an emulated Glance v2.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { GlanceClient } from '../../../src/openstack/glance.ts';
import { OpenStackSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { labCloudConfig, labSession } from './cinder-lab-session.ts';

describe('GlanceClient on the lab (keystone)', async () => {
  const lab = await labSession('keystone');
  await lab.close();
  let reason = lab.reason;
  const os = new OpenStackSession({ config: labCloudConfig('keystone'), logger: silentLogger() });
  if (!reason) {
    try {
      await os.service('image').endpoint(AbortSignal.timeout(30_000));
    } catch (err) {
      reason = `the lab's catalog has no image service (${(err as Error).message})`;
    }
  }
  it('an unknown image name is a not-found error', { skip: reason }, async () => {
    const glance = new GlanceClient({ session: os.service('image'), logger: silentLogger() });
    await assert.rejects(
      glance.resolveImage(`cinderclient-it-${randomBytes(4).toString('hex')}`),
      (err: unknown) => {
        assert.equal((err as { notFound?: boolean }).notFound, true);
        return true;
      },
    );
  });
  it('closes the session', () => os.close());
});
