import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { UnsupportedConnectionError } from '../../../src/host/connector.ts';
import { connectorFor, connectorForProtocol } from '../../../src/host/connector-factory.ts';
import { HostExecutor } from '../../../src/host/exec.ts';
import { buildHostConnector, parseInitiatorName, primaryAddress } from '../../../src/host/host-connector.ts';
import { HostLock } from '../../../src/host/lock.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import { createLogger, silentLogger } from '../../../src/util/logger.ts';

describe('connectorFor', () => {
  const deps = {
    executor: new HostExecutor({ logger: silentLogger() }),
    paths: hostPaths('/'),
    logger: silentLogger(),
    lock: new HostLock({ dir: os.tmpdir() }),
  };
  it('dispatches on driver_volume_type', () => {
    assert.equal(connectorFor({ driver_volume_type: 'iscsi' }, deps).protocol, 'iscsi');
    assert.equal(connectorFor({ driver_volume_type: 'RBD' }, deps).protocol, 'rbd');
    assert.equal(connectorForProtocol('rbd', deps).protocol, 'rbd');
    assert.throws(() => connectorFor({ driver_volume_type: 'nvmeof' }, deps), UnsupportedConnectionError);
  });
});

describe('HostPaths', () => {
  it('maps host paths under the root and back', () => {
    const p = hostPaths('/host');
    assert.equal(p.dev('/dev/sdb'), '/host/dev/sdb');
    assert.equal(p.dev('disk/by-path/x'), '/host/dev/disk/by-path/x');
    assert.equal(p.sys('class/iscsi_session'), '/host/sys/class/iscsi_session');
    assert.equal(p.sys('/sys/block/sdb'), '/host/sys/block/sdb');
    assert.equal(p.etcIscsi('initiatorname.iscsi'), '/host/etc/iscsi/initiatorname.iscsi');
    assert.equal(p.toHost('/host/dev/sdb'), '/dev/sdb');
    assert.equal(p.toHost('/other/x'), '/other/x');
    assert.equal(hostPaths('/').dev('/dev/sdb'), '/dev/sdb');
  });
});

describe('buildHostConnector', () => {
  it('parses the initiator name, ignoring comments', () => {
    assert.equal(
      parseInitiatorName(
        '## InitiatorName=iqn.bad\n# comment\nInitiatorName=iqn.1993-08.org.debian:01:abc\n',
      ),
      'iqn.1993-08.org.debian:01:abc',
    );
    assert.equal(parseInitiatorName('# nothing\n'), undefined);
  });

  it('builds os-brick connector properties from the host root', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'hc-'));
    try {
      mkdirSync(path.join(root, 'etc/iscsi'), { recursive: true });
      writeFileSync(
        path.join(root, 'etc/iscsi/initiatorname.iscsi'),
        'InitiatorName=iqn.2004-10.com.example:node1\n',
      );
      const c = await buildHostConnector({
        paths: hostPaths(root),
        ip: '10.1.2.3',
        hostname: 'node1',
        multipath: true,
      });
      assert.deepEqual(c, {
        platform: os.arch() === 'x64' ? 'x86_64' : os.arch() === 'arm64' ? 'aarch64' : os.arch(),
        os_type: 'linux2',
        ip: '10.1.2.3',
        host: 'node1',
        multipath: true,
        do_local_attach: false,
        initiator: 'iqn.2004-10.com.example:node1',
      });
      const lines: string[] = [];
      const logger = createLogger({ destination: { write: (l: string) => lines.push(l) } });
      const none = await buildHostConnector({
        paths: hostPaths(path.join(root, 'nothing')),
        hostname: 'n2',
        logger,
      });
      assert.equal(none.initiator, undefined, 'no open-iscsi: no initiator key');
      // said once, at warn, naming the file: iSCSI attachments of this node would fail at Cinder
      const warned = lines.map((l) => JSON.parse(l) as { level: string; msg: string; file: string });
      assert.deepEqual(
        warned.map((w) => [w.level, w.file]),
        [['warn', path.join(root, 'nothing/etc/iscsi/initiatorname.iscsi')]],
      );
      assert.match(warned[0]!.msg, /no iSCSI initiator name.*install open-iscsi/);
      lines.length = 0;
      await buildHostConnector({ paths: hostPaths(root), hostname: 'node1', logger });
      assert.deepEqual(lines, [], 'no warning when the initiator name is there');
      assert.equal(none.multipath, false);
      assert.ok(typeof none.ip === 'string' && none.ip.length > 0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('prefers an external IPv4 address', () => {
    const base = { netmask: '', mac: '', cidr: null };
    assert.equal(
      primaryAddress({
        lo: [{ ...base, address: '127.0.0.1', family: 'IPv4', internal: true }],
        eth0: [
          { ...base, address: 'fe80::1', family: 'IPv6', internal: false, scopeid: 0 },
          { ...base, address: '192.168.1.5', family: 'IPv4', internal: false },
        ],
      }),
      '192.168.1.5',
    );
  });
});
