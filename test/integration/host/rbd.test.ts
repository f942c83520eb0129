/**
 * RBD connector against the lab's real Ceph (rbd backend). This kernel has no krbd/nbd, so `rbd`
 * is a test double (test/doubles): `map` checks the caller's cephx credentials for real (the real
 * `rbd info` with the same --id/-m/--keyring) and exposes the image through rbd-fuse as a loop
 * device, with /dev/rbd/<pool>/<image> under the test host root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ConnectError } from '../../../src/host/connector.ts';
import { RbdConnector } from '../../../src/host/rbd.ts';
import type { ConnectionInfo } from '../../../src/openstack/cinder-types.ts';
import { harness, pattern, rbdSkipReason, readAt, writeAt } from '../../doubles/harness.ts';
import {
  cleanup,
  cleanupPrefix,
  createAttachment,
  createVolume,
  type LabSession,
  labLogin,
} from '../../doubles/lab-cinder.ts';

const skip = await rbdSkipReason();
const PREFIX = `hostlayer-rbd-${randomBytes(3).toString('hex')}`;
const KEYRING = '/etc/ceph/ceph.client.cinder.keyring';

/** The cephx key an operator would put in the node-stage Secret. */
function cinderKey(): string {
  const m = /key\s*=\s*(\S+)/.exec(readFileSync(KEYRING, 'utf8'));
  if (!m) throw new Error(`no key in ${KEYRING}`);
  return m[1] as string;
}

describe('RbdConnector on the lab Ceph (rbd double over rbd-fuse)', { skip }, () => {
  let lab: LabSession;
  let volumeId = '';
  let attachmentId = '';

  before(async () => {
    lab = await labLogin();
  });
  after(async () => {
    if (volumeId) await cleanup(lab, volumeId, attachmentId ? [attachmentId] : []);
    if (lab) await cleanupPrefix(lab, PREFIX); // a create whose answer never came
  });

  it('maps with a node-stage key, writes reach the image, unmaps idempotently', async () => {
    const h = harness(PREFIX);
    try {
      volumeId = await createVolume(lab, `${PREFIX}-a`, 'rbd');
      const a = await createAttachment(lab, volumeId, {
        ip: '127.0.0.1',
        host: PREFIX,
        initiator: 'iqn.x:y',
      });
      attachmentId = a.id;
      const info = a.connection_info as ConnectionInfo;
      assert.equal(info.driver_volume_type, 'rbd');
      assert.equal(info.keyring, undefined, 'Cinder sends no key');
      const key = cinderKey();
      const c = new RbdConnector({ ...h.deps, rbd: { tmpDir: h.doubles.state } });

      // A wrong key is refused by the real cephx check.
      const wrong = await c
        .connect(info, { volumeId, secrets: { key: 'AQAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAA==' } })
        .catch((x) => x);
      assert.ok(wrong instanceof ConnectError, String(wrong));
      assert.match(wrong.message, /couldn't connect to the cluster/);

      const dev = await c.connect(info, { volumeId, secrets: { key } });
      assert.match(dev.devicePath, /^\/dev\/loop\d+$/);
      assert.deepEqual(dev.details, {
        pool: 'volumes',
        image: `volume-${volumeId}`,
        mapper: 'krbd',
        monitors: '127.0.0.1:6789',
        id: 'cinder',
      });
      const map = h.doubles
        .calls()
        .filter((x) => x.tool === 'rbd' && x.argv[0] === 'map')
        .at(-1);
      assert.deepEqual(map?.argv.slice(0, 6), [
        'map',
        `volumes/volume-${volumeId}`,
        '--id',
        'cinder',
        '-m',
        '127.0.0.1:6789',
      ]);
      assert.equal(map?.argv[6], '--keyring');
      assert.equal(existsSync(map?.argv[7] as string), false, 'temporary keyring removed after map');

      const data = pattern(volumeId);
      writeAt(dev.devicePath, 8192, data);
      // Read the bytes back through Ceph itself (the image's first data object), not the mapping.
      const imageInfo = JSON.parse(
        spawnSync('rbd', ['info', `volumes/volume-${volumeId}`, '--format', 'json'], { encoding: 'utf8' })
          .stdout,
      ) as { block_name_prefix: string };
      const obj = `${h.doubles.state}/object0`;
      const got = spawnSync(
        'rados',
        ['-p', 'volumes', 'get', `${imageInfo.block_name_prefix}.0000000000000000`, obj],
        {
          timeout: 30_000,
        },
      );
      assert.equal(got.status, 0, String(got.stderr));
      assert.deepEqual(readAt(obj, 8192, data.length), data);

      assert.equal(await c.isConnected(dev), true);
      await c.disconnect(dev);
      assert.equal(await c.isConnected(dev), false);
      assert.equal(existsSync(`${h.doubles.root}/dev/rbd/volumes/volume-${volumeId}`), false);
      await c.disconnect(dev); // idempotent
      assert.equal(h.doubles.calls().filter((x) => x.argv[0] === 'unmap').length, 1);

      // rbd-nbd as the configured alternative: found through list-mapped (no /dev/rbd link).
      const nbd = new RbdConnector({ ...h.deps, rbd: { mapper: 'nbd', tmpDir: h.doubles.state } });
      const ndev = await nbd.connect(info, { volumeId, secrets: { key } });
      assert.equal((ndev.details as { mapper: string }).mapper, 'nbd');
      assert.deepEqual(readAt(ndev.devicePath, 8192, data.length), data);
      await nbd.disconnect(ndev);
      assert.equal(await nbd.isConnected(ndev), false);
      assert.ok(h.doubles.calls().some((x) => x.tool === 'rbd-nbd' && x.argv[0] === 'list-mapped'));

      const logs = h.logLines.join('');
      assert.ok(!logs.includes(key), 'the key never reaches a log line');
      assert.ok(!readFileSync(`${h.doubles.state}/calls.log`, 'utf8').includes(key));
    } finally {
      h.doubles.teardown();
    }
  });
});
