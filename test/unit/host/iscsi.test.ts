import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ConnectedDevice } from '../../../src/host/connector.ts';
import { ConnectError } from '../../../src/host/connector.ts';
import { IscsiConnector, targetsOf } from '../../../src/host/iscsi.ts';
import { normalizePortal, parseSessions } from '../../../src/host/iscsiadm.ts';
import { HostLock } from '../../../src/host/lock.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import { Sysfs } from '../../../src/host/scsi.ts';
import type { ConnectionInfo } from '../../../src/openstack/cinder-types.ts';
import { createLogger } from '../../../src/util/logger.ts';
import { FakeIscsiHost } from '../../doubles/fake-iscsi-host.ts';

const IQN = 'iqn.2010-10.org.openstack:volume-aaaa';
const PW = 'GKeXCEn2TGW67Cww';
const USER = '6Hm34dvcPxgGedP6JmD7';
const info: ConnectionInfo = {
  driver_volume_type: 'iscsi',
  target_portal: '127.0.0.1:3260',
  target_iqn: IQN,
  target_lun: 1,
  auth_method: 'CHAP',
  auth_username: USER,
  auth_password: PW,
};

/** A target with a logged-in session that two volumes' LUNs share (Cinder backends share targets). */
const SHARED_TARGET = {
  sid: 9,
  portal: '127.0.0.1:3260',
  iqn: IQN,
  host: 5,
  luns: [
    { lun: 1, name: 'sdb' },
    { lun: 2, name: 'sdc' },
  ],
};

describe('iscsiadm parsing', () => {
  it('parses session lines and skips noise', () => {
    const out = [
      'tcp: [3] 127.0.0.1:3260,1 iqn.2010-10.org.openstack:volume-1 (non-flash)',
      'tcp: [12] [fe80::1]:3260,2 iqn.x:y',
      'iscsiadm: something else',
      '',
    ].join('\n');
    assert.deepEqual(parseSessions(out), [
      {
        transport: 'tcp',
        sid: 3,
        portal: '127.0.0.1:3260',
        tpgt: 1,
        iqn: 'iqn.2010-10.org.openstack:volume-1',
      },
      { transport: 'tcp', sid: 12, portal: '[fe80::1]:3260', tpgt: 2, iqn: 'iqn.x:y' },
    ]);
  });

  it('normalises portals', () => {
    assert.equal(normalizePortal('10.0.0.1'), '10.0.0.1:3260');
    assert.equal(normalizePortal('10.0.0.1:3261'), '10.0.0.1:3261');
    assert.equal(normalizePortal('fe80::1'), '[fe80::1]:3260');
    assert.equal(normalizePortal('[fe80::1]'), '[fe80::1]:3260');
  });

  it('reads single and multipath targets from connection info', () => {
    assert.deepEqual(targetsOf(info), [{ portal: '127.0.0.1:3260', iqn: IQN, lun: 1 }]);
    assert.deepEqual(
      targetsOf({
        ...info,
        target_portals: ['10.0.0.1:3260', '10.0.0.2'],
        target_iqns: ['a', 'b'],
        target_luns: [1, 2],
      }),
      [
        { portal: '10.0.0.1:3260', iqn: 'a', lun: 1 },
        { portal: '10.0.0.2:3260', iqn: 'b', lun: 2 },
      ],
    );
    assert.throws(() => targetsOf({ driver_volume_type: 'iscsi' }), /target_portal/);
  });
});

describe('sysfs discovery on a prepared tree', () => {
  let host: FakeIscsiHost;
  beforeEach(() => {
    host = new FakeIscsiHost();
  });
  afterEach(() => host.cleanup());

  it('walks session → target → LUN → block, by-path and holders', async () => {
    host.addTarget(
      {
        sid: 4,
        portal: '127.0.0.1:3260',
        iqn: IQN,
        host: 7,
        luns: [
          { lun: 2, name: 'sdc' },
          { lun: 1, name: 'sdb' },
        ],
      },
      true,
    );
    mkdirSync(host.p('sys/block/sdb/holders/dm-3'), { recursive: true });
    mkdirSync(host.p('sys/block/dm-3/dm'), { recursive: true });
    writeFileSync(host.p('sys/block/dm-3/dm/name'), 'mpatha\n');
    mkdirSync(host.p('dev/disk/by-path'), { recursive: true });
    symlinkSync('../../sdd', host.p(`dev/disk/by-path/ip-10.0.0.9:3260-iscsi-${IQN}-lun-9`));
    const sys = new Sysfs(hostPaths(host.root), host);
    assert.equal(await sys.sessionTargetName(4), IQN);
    assert.deepEqual(
      (await sys.sessionLuns(4)).map((l) => [l.host, l.lun, l.name]),
      [
        [7, 1, 'sdb'],
        [7, 2, 'sdc'],
      ],
    );
    assert.equal((await sys.findLun(4, 2))?.name, 'sdc');
    assert.equal(await sys.findLun(4, 3), undefined);
    assert.equal(await sys.sessionHost(4), 7);
    assert.deepEqual(await sys.holders('sdb'), ['dm-3']);
    assert.equal(await sys.dmName('dm-3'), 'mpatha');
    assert.equal(await sys.byPath('10.0.0.9:3260', IQN, 9), '/dev/sdd');
    assert.equal(await sys.blockExists('sdb'), true);
    assert.equal(await sys.blockExists('sdz'), false);
  });
});

describe('IscsiConnector', () => {
  let host: FakeIscsiHost;
  let connector: IscsiConnector;
  let logLines: string[];

  function make(opts: { multipath?: boolean } = {}) {
    const stream = new PassThrough();
    logLines = [];
    stream.on('data', (b: Buffer) => logLines.push(b.toString()));
    const logger = createLogger({ level: 'debug', destination: stream });
    connector = new IscsiConnector({
      executor: host,
      paths: hostPaths(host.root),
      logger,
      lock: new HostLock({ dir: host.p('run/locks') }),
      iscsi: { deviceWaitMs: 600, pollMs: 20, rescans: 2, multipathWaitMs: 200, multipath: opts.multipath },
    });
  }

  beforeEach(() => {
    host = new FakeIscsiHost();
    make();
  });
  afterEach(() => host.cleanup());

  it('creates the node record, sets CHAP as secrets, logs in and finds the LUN by sysfs', async () => {
    host.addTarget({ sid: 1, portal: '127.0.0.1:3260', iqn: IQN, host: 5, luns: [{ lun: 1, name: 'sdb' }] });
    const dev = await connector.connect(info, { volumeId: 'aaaa' });
    assert.equal(dev.devicePath, '/dev/sdb');
    assert.deepEqual(dev.details, {
      targets: [{ portal: '127.0.0.1:3260', iqn: IQN, lun: 1, sessionId: 1, hostNumber: 5, device: 'sdb' }],
    });
    const node = `iscsiadm -m node -T ${IQN} -p 127.0.0.1:3260`;
    assert.deepEqual(host.lines(), [
      'iscsiadm -m session',
      `${node} --interface default --op new`,
      `${node} --op update -n node.startup -v manual`,
      `${node} --op update -n node.session.auth.authmethod -v CHAP`,
      `${node} --op update -n node.session.auth.username -v ${USER}`,
      `${node} --op update -n node.session.auth.password -v ${PW}`,
      `${node} --login`,
      'iscsiadm -m session',
    ]);
    // Every call carrying a CHAP value declares it secret, so the executor masks it.
    for (const c of host.calls) {
      for (const v of [USER, PW]) if (c.args.includes(v)) assert.deepEqual(c.opts.secrets, [v]);
    }
    assert.ok(!JSON.stringify(dev).includes(PW));
    assert.ok(!logLines.join('').includes(PW));
    assert.equal(await connector.isConnected(dev), true);
  });

  it('rescans the SCSI host until a late LUN appears', async () => {
    host.addTarget({
      sid: 2,
      portal: '127.0.0.1:3260',
      iqn: IQN,
      host: 6,
      luns: [{ lun: 1, name: 'sdb', hidden: true }],
    });
    const dev = await connector.connect(info, { volumeId: 'aaaa' });
    assert.equal(dev.devicePath, '/dev/sdb');
    const scans = host.calls.filter((c) => c.cmd === 'tee');
    assert.ok(scans.length >= 1);
    assert.equal(scans[0]?.args[1], host.p('sys/class/scsi_host/host6/scan'));
    assert.equal(scans[0]?.opts.input, '- - 1\n');
  });

  it('gives up after the bounded wait with a transient error', async () => {
    host.addTarget({ sid: 2, portal: '127.0.0.1:3260', iqn: IQN, host: 6, luns: [] });
    const e = await connector.connect(info, { volumeId: 'aaaa' }).catch((x: unknown) => x);
    assert.ok(e instanceof ConnectError);
    assert.match(e.message, /did not appear/);
    assert.equal(host.calls.filter((c) => c.cmd === 'tee').length, 2, 'exactly the configured rescans');
    // The session this connect created (with no LUN) is logged out again.
    assert.deepEqual(host.lines().slice(-2), [
      `iscsiadm -m node -T ${IQN} -p 127.0.0.1:3260 --logout`,
      `iscsiadm -m node -T ${IQN} -p 127.0.0.1:3260 --op delete`,
    ]);
  });

  it('falls back to /dev/disk/by-path', async () => {
    host.addTarget({ sid: 3, portal: '127.0.0.1:3260', iqn: IQN, host: 6, luns: [] });
    mkdirSync(host.p('dev/disk/by-path'), { recursive: true });
    writeFileSync(host.p('dev/sdk'), '');
    symlinkSync('../../sdk', host.p(`dev/disk/by-path/ip-127.0.0.1:3260-iscsi-${IQN}-lun-1`));
    const dev = await connector.connect(info, { volumeId: 'aaaa' });
    assert.equal(dev.devicePath, '/dev/sdk');
  });

  it('reports a CHAP refusal (exit 24) as such', async () => {
    host.addTarget({ sid: 1, portal: '127.0.0.1:3260', iqn: IQN, host: 5, luns: [{ lun: 1, name: 'sdb' }] });
    host.loginExit = 24;
    await assert.rejects(connector.connect(info, { volumeId: 'aaaa' }), /CHAP authentication refused/);
    // The node record holding the CHAP secret is not left behind.
    assert.equal(host.lines().at(-1), `iscsiadm -m node -T ${IQN} -p 127.0.0.1:3260 --op delete`);
  });

  it('reuses an existing session of a shared target without logging in again', async () => {
    host.addTarget(SHARED_TARGET, true);
    const dev = await connector.connect({ ...info, target_lun: 2 }, { volumeId: 'bbbb' });
    assert.equal(dev.devicePath, '/dev/sdc');
    assert.ok(!host.lines().some((l) => l.includes('--login')));
  });

  it('logs out of a shared session only when its last LUN goes', async () => {
    host.addTarget(SHARED_TARGET, true);
    const a = await connector.connect(info, { volumeId: 'aaaa' });
    const b = await connector.connect({ ...info, target_lun: 2 }, { volumeId: 'bbbb' });
    host.calls.length = 0;
    await connector.disconnect(a);
    assert.deepEqual(host.lines(), [
      'iscsiadm -m session',
      'blockdev --flushbufs /dev/sdb',
      `tee -a ${host.p('sys/block/sdb/device/delete')}`,
    ]);
    assert.equal(await connector.isConnected(a), false);
    assert.equal(await connector.isConnected(b), true);
    host.calls.length = 0;
    await connector.disconnect(b);
    const node = `iscsiadm -m node -T ${IQN} -p 127.0.0.1:3260`;
    assert.deepEqual(host.lines(), [
      'iscsiadm -m session',
      'blockdev --flushbufs /dev/sdc',
      `tee -a ${host.p('sys/block/sdc/device/delete')}`,
      `${node} --logout`,
      `${node} --op delete`,
    ]);
    // Idempotent: nothing left, still success (node record delete tolerates 21).
    await connector.disconnect(b);
  });

  it('multipath: logs in to every portal, uses the dm holder, flushes the map on disconnect', async () => {
    make({ multipath: true });
    host.multipath = { dm: 'dm-0', name: 'mpatha', paths: ['sdb', 'sdc'] };
    host.addTarget({ sid: 1, portal: '10.0.0.1:3260', iqn: IQN, host: 5, luns: [{ lun: 1, name: 'sdb' }] });
    host.addTarget({ sid: 2, portal: '10.0.0.2:3260', iqn: IQN, host: 6, luns: [{ lun: 1, name: 'sdc' }] });
    const mpInfo: ConnectionInfo = {
      ...info,
      target_portals: ['10.0.0.1:3260', '10.0.0.2:3260'],
      target_iqns: [IQN, IQN],
      target_luns: [1, 1],
    };
    const dev: ConnectedDevice = await connector.connect(mpInfo, { volumeId: 'aaaa' });
    assert.equal(dev.devicePath, '/dev/dm-0');
    assert.deepEqual((dev.details as { multipath: unknown }).multipath, { dm: 'dm-0', name: 'mpatha' });
    assert.equal(host.lines().filter((l) => l.endsWith('--login')).length, 2);

    host.calls.length = 0;
    await connector.rescan(dev);
    assert.deepEqual(host.lines(), [
      'iscsiadm -m session',
      `tee -a ${host.p('sys/block/sdb/device/rescan')}`,
      `tee -a ${host.p('sys/block/sdc/device/rescan')}`,
      'multipathd resize map mpatha',
    ]);

    host.calls.length = 0;
    await connector.disconnect(dev);
    const lines = host.lines();
    assert.deepEqual(lines.slice(0, 3), [
      'iscsiadm -m session',
      'blockdev --flushbufs /dev/dm-0',
      'multipath -f mpatha',
    ]);
    assert.ok(lines.includes(`tee -a ${host.p('sys/block/sdb/device/delete')}`));
    assert.ok(lines.includes(`tee -a ${host.p('sys/block/sdc/device/delete')}`));
    assert.equal(lines.filter((l) => l.endsWith('--logout')).length, 2);
  });

  it('without multipath uses the first working portal only', async () => {
    host.addTarget({ sid: 2, portal: '10.0.0.2:3260', iqn: IQN, host: 6, luns: [{ lun: 1, name: 'sdc' }] });
    const dev = await connector.connect(
      {
        ...info,
        target_portals: ['10.0.0.1:3260', '10.0.0.2:3260'],
        target_iqns: [IQN, IQN],
        target_luns: [1, 1],
      },
      { volumeId: 'aaaa' },
    );
    // 10.0.0.1 is unknown to the fake (login fails with 19), so the second portal is used.
    assert.equal(dev.devicePath, '/dev/sdc');
    assert.equal((dev.details as { targets: unknown[] }).targets.length, 1);
  });
});
