/**
 * iSCSI connector against the lab's real tgt backend. This machine has no kernel iSCSI initiator,
 * so iscsiadm and the sysfs writes are test doubles (test/doubles): login performs a real CHAP
 * login to tgtd (libiscsi) and exposes the volume's real sparse file as a loop device. Everything
 * above that (connector logic, sysfs discovery, executor, lock) is the production code.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ConnectError } from '../../../src/host/connector.ts';
import { IscsiConnector } from '../../../src/host/iscsi.ts';
import type { ConnectionInfo } from '../../../src/openstack/cinder-types.ts';
import {
  type Harness,
  harness,
  iscsiSkipReason,
  loopsBacking,
  pattern,
  readAt,
  writeAt,
} from '../../doubles/harness.ts';
import {
  cinder,
  cleanup,
  cleanupPrefix,
  createAttachment,
  createVolume,
  type LabSession,
  labConnector,
  labLogin,
  waitVolume,
} from '../../doubles/lab-cinder.ts';

const skip = await iscsiSkipReason();
const PREFIX = `hostlayer-iscsi-${randomBytes(3).toString('hex')}`;
const TGT_DIR = '/var/lib/cinder-lab/tgt-volumes';
const CONNECTOR = labConnector(PREFIX, 'iqn.2004-10.org.cinder-csi:hostlayer-test');

interface LabVolume {
  id: string;
  attachmentId: string;
  info: ConnectionInfo;
  file: string;
}

describe('IscsiConnector on the lab tgt backend (iscsiadm double)', { skip }, () => {
  let lab: LabSession;
  const created: LabVolume[] = [];

  async function labVolume(suffix: string): Promise<LabVolume> {
    const id = await createVolume(lab, `${PREFIX}-${suffix}`, 'tgt');
    const v: LabVolume = {
      id,
      attachmentId: '',
      info: { driver_volume_type: 'iscsi' },
      file: `${TGT_DIR}/volume-${id}`,
    };
    created.push(v);
    const a = await createAttachment(lab, id, CONNECTOR);
    v.attachmentId = a.id;
    v.info = a.connection_info as ConnectionInfo;
    return v;
  }

  // Two volumes for the whole file (the lab is shared and slow under load): A and B.
  let volA: LabVolume;
  let volB: LabVolume;
  before(async () => {
    lab = await labLogin();
    [volA, volB] = await Promise.all([labVolume('a'), labVolume('b')]);
  });
  after(async () => {
    for (const v of created) await cleanup(lab, v.id, v.attachmentId ? [v.attachmentId] : []);
    if (lab) await cleanupPrefix(lab, PREFIX); // a create whose answer never came
  });

  it('connects a real tgt volume as a loop device; data lands in the sparse file; disconnect undoes all', async () => {
    const h: Harness = harness(PREFIX);
    try {
      const v = volA;
      assert.equal(v.info.auth_method, 'CHAP');
      const password = String(v.info.auth_password);
      const username = String(v.info.auth_username);
      const c = new IscsiConnector({ ...h.deps, iscsi: { deviceWaitMs: 5000, pollMs: 50 } });

      // A wrong CHAP password is refused by tgtd itself (real login) and reported as such.
      const refused = await c
        .connect({ ...v.info, auth_password: 'not-the-password' }, { volumeId: v.id })
        .catch((x) => x);
      assert.ok(refused instanceof ConnectError, String(refused));
      assert.match(refused.message, /CHAP authentication refused/);
      assert.deepEqual(loopsBacking(v.file), []);

      const dev = await c.connect(v.info, { volumeId: v.id });
      assert.match(dev.devicePath, /^\/dev\/loop\d+$/);
      assert.deepEqual(loopsBacking(v.file), [dev.devicePath]);
      assert.equal(await c.isConnected(dev), true);

      // Bytes written through the device land in the tgt backend's file.
      const data = pattern(v.id);
      writeAt(dev.devicePath, 1024 * 1024, data);
      assert.deepEqual(readAt(v.file, 1024 * 1024, data.length), data);

      // Online extend in Cinder, then rescan: the device shows the new size.
      await cinder(lab, 'POST', `/attachments/${v.attachmentId}/action`, { 'os-complete': null });
      await waitVolume(lab, v.id, ['in-use']);
      await cinder(lab, 'POST', `/volumes/${v.id}/action`, { 'os-extend': { new_size: 2 } });
      const deadline = Date.now() + 30_000;
      while (statSync(v.file).size < 2 * 1024 ** 3 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 200));
      await c.rescan(dev);
      const size = spawnSync('blockdev', ['--getsize64', dev.devicePath], { encoding: 'utf8' }).stdout.trim();
      assert.equal(size, String(2 * 1024 ** 3));
      assert.deepEqual(readAt(dev.devicePath, 1024 * 1024, data.length), data, 'data survives the extend');

      await c.disconnect(dev);
      assert.deepEqual(loopsBacking(v.file), []);
      assert.equal(await c.isConnected(dev), false);
      await c.disconnect(dev); // idempotent

      const node = ['-m', 'node', '-T', v.info.target_iqn, '-p', '127.0.0.1:3260'];
      const iscsi = h.doubles
        .calls()
        .filter((x) => x.tool === 'iscsiadm')
        .map((x) => x.argv.join(' '));
      const n = node.join(' ');
      // After the refused attempt, the successful connect's sequence:
      const start = iscsi.lastIndexOf(`${n} --login`) - 6;
      assert.deepEqual(iscsi.slice(start, start + 8), [
        '-m session',
        `${n} --interface default --op new`,
        `${n} --op update -n node.startup -v manual`,
        `${n} --op update -n node.session.auth.authmethod -v CHAP`,
        `${n} --op update -n node.session.auth.username -v ***`,
        `${n} --op update -n node.session.auth.password -v ***`,
        `${n} --login`,
        '-m session',
      ]);
      assert.ok(iscsi.includes(`${n} --logout`));
      assert.equal(iscsi.at(-1), `${n} --op delete`);

      // The CHAP secrets never reach a log line or a call record.
      const calls = readFileSync(`${h.doubles.state}/calls.log`, 'utf8');
      for (const secret of [password, username]) {
        assert.ok(!calls.includes(secret), 'calls.log holds a CHAP value');
        assert.ok(!h.logLines.join('').includes(secret), 'a log line holds a CHAP value');
      }
      assert.ok(h.logLines.some((l) => l.includes('node.session.auth.password -v ***')));
    } finally {
      h.doubles.teardown();
    }
  });

  it('two volumes on one shared target session: disconnecting one keeps the other working', async () => {
    const h = harness(PREFIX);
    try {
      const a = volA;
      const b = volB;
      // The lab's tgt gives each volume its own target; the double bundles both as LUNs 1 and 2
      // of one virtual target, like an LVM/tgt backend with shared targets.
      const shared = `iqn.2010-10.org.openstack:${PREFIX}-shared`;
      mkdirSync(`${h.doubles.state}/iscsi`, { recursive: true });
      writeFileSync(
        `${h.doubles.state}/iscsi/targets.json`,
        JSON.stringify({ [shared]: { luns: { 1: a.info.target_iqn, 2: b.info.target_iqn } } }),
      );
      const infoA = { ...a.info, target_iqn: shared, target_lun: 1 };
      const infoB = { ...a.info, target_iqn: shared, target_lun: 2, volume_id: b.id };
      const c = new IscsiConnector({ ...h.deps, iscsi: { deviceWaitMs: 5000, pollMs: 50 } });
      const devA = await c.connect(infoA, { volumeId: a.id });
      const devB = await c.connect(infoB, { volumeId: b.id });
      assert.notEqual(devA.devicePath, devB.devicePath);
      assert.deepEqual(loopsBacking(b.file), [devB.devicePath]);
      const logins = h.doubles.calls().filter((x) => x.tool === 'iscsiadm' && x.argv.includes('--login'));
      assert.equal(logins.length, 1, 'the second volume reuses the session');

      await c.disconnect(devA);
      assert.deepEqual(loopsBacking(a.file), [], "A's SCSI device is removed");
      assert.equal(await c.isConnected(devB), true);
      const data = pattern(b.id);
      writeAt(devB.devicePath, 4096, data);
      assert.deepEqual(readAt(b.file, 4096, data.length), data, 'B still works');
      const afterA = h.doubles
        .calls()
        .filter((x) => x.tool === 'iscsiadm')
        .map((x) => x.argv.join(' '));
      assert.ok(!afterA.some((l) => l.includes('--logout')), 'no logout while B uses the session');

      await c.disconnect(devB);
      assert.deepEqual(loopsBacking(b.file), []);
      const all = h.doubles
        .calls()
        .filter((x) => x.tool === 'iscsiadm')
        .map((x) => x.argv.join(' '));
      assert.equal(all.filter((l) => l.includes('--logout')).length, 1);
    } finally {
      h.doubles.teardown();
    }
  });

  it('multipath: logs in over two portals, uses the dm map, flushes it on disconnect', async () => {
    const h = harness(PREFIX);
    try {
      const v = volB;
      mkdirSync(`${h.doubles.state}/multipath`, { recursive: true });
      writeFileSync(`${h.doubles.state}/multipath/enabled`, ''); // "multipathd is running"
      const iqn = String(v.info.target_iqn);
      // Two portal names for the one tgtd portal: two sessions, two paths to the same LUN.
      const info = {
        ...v.info,
        target_portals: ['127.0.0.1:3260', 'localhost:3260'],
        target_iqns: [iqn, iqn],
        target_luns: [1, 1],
      };
      const c = new IscsiConnector({ ...h.deps, iscsi: { deviceWaitMs: 5000, pollMs: 50, multipath: true } });
      const dev = await c.connect(info, { volumeId: v.id });
      assert.equal(dev.devicePath, '/dev/dm-0');
      const mp = (dev.details as { multipath: { dm: string; name: string } }).multipath;
      assert.equal(mp.dm, 'dm-0');
      assert.match(mp.name, /^36001405[0-9a-f]{24}$/);
      assert.equal(loopsBacking(v.file).length, 2, 'one device per path');

      const data = pattern(`mp-${v.id}`);
      writeAt(h.deps.paths.dev(dev.devicePath), 65536, data);
      assert.deepEqual(readAt(v.file, 65536, data.length), data);

      await c.rescan(dev);
      await c.disconnect(dev);
      assert.deepEqual(loopsBacking(v.file), []);
      const calls = h.doubles.calls().map((x) => `${x.tool} ${x.argv.join(' ')}`);
      assert.ok(calls.includes(`multipathd resize map ${mp.name}`));
      assert.ok(calls.includes(`multipath -f ${mp.name}`));
      assert.ok(
        calls.indexOf(`multipath -f ${mp.name}`) < calls.findIndex((l) => l.includes('/device/delete')),
      );
      assert.equal(calls.filter((l) => l.endsWith('--logout')).length, 2);
    } finally {
      h.doubles.teardown();
    }
  });
});
