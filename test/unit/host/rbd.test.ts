import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CommandError, type ExecOptions, type ExecResult, type Executor } from '../../../src/host/exec.ts';
import { HostLock } from '../../../src/host/lock.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import { monitorsOf, parseImageName, parseShowmapped, RbdConnector } from '../../../src/host/rbd.ts';
import type { ConnectionInfo } from '../../../src/openstack/cinder-types.ts';
import { createLogger } from '../../../src/util/logger.ts';

const info: ConnectionInfo = {
  driver_volume_type: 'rbd',
  name: 'volumes/volume-1234',
  hosts: ['127.0.0.1', '10.0.0.2'],
  ports: ['6789', '6790'],
  auth_enabled: true,
  auth_username: 'cinder',
  secret_uuid: 'a018020c-2457-4676-8fb9-9d3e7ad80c79',
};
const KEY = 'AQBzcmVhbGx5c2VjcmV0a2V5PT0xMjM0NTY3ODk=';

describe('rbd parsing', () => {
  it('parses showmapped JSON (array and legacy object forms)', () => {
    assert.deepEqual(
      parseShowmapped(
        '[{"id":"0","pool":"volumes","namespace":"","name":"img","snap":"-","device":"/dev/rbd0"}]',
      ),
      [{ id: '0', pool: 'volumes', namespace: undefined, name: 'img', snap: undefined, device: '/dev/rbd0' }],
    );
    assert.deepEqual(
      parseShowmapped('{"1":{"pool":"p","name":"i","snap":"s1","device":"/dev/rbd1"}}')[0]?.snap,
      's1',
    );
    assert.deepEqual(parseShowmapped(''), []);
  });

  it('builds the monitor list and splits pool/image', () => {
    assert.equal(monitorsOf(info), '127.0.0.1:6789,10.0.0.2:6790');
    assert.equal(
      monitorsOf({ driver_volume_type: 'rbd', hosts: ['fe80::1'], ports: ['6789'] }),
      '[fe80::1]:6789',
    );
    assert.deepEqual(parseImageName('volumes/volume-1'), { pool: 'volumes', image: 'volume-1' });
    assert.throws(() => parseImageName('noslash'), /pool\/image/);
  });
});

/** krbd stand-in: `map` creates the udev link under the root; records the keyring it saw. */
class FakeRbd implements Executor {
  readonly calls: { cmd: string; args: string[]; opts: ExecOptions }[] = [];
  readonly root: string;
  keyringSeen?: { path: string; mode: number; text: string };
  mapped: { pool: string; name: string; device: string }[] = [];
  constructor(root: string) {
    this.root = root;
  }
  async run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ cmd, args, opts });
    const ok = (stdout = '') => ({ code: 0, stdout, stderr: '', durationMs: 1 });
    if (cmd === 'rbd' && args[0] === 'map') {
      const k = args.indexOf('--keyring');
      if (k >= 0) {
        const p = args[k + 1] as string;
        this.keyringSeen = { path: p, mode: statSync(p).mode & 0o777, text: readFileSync(p, 'utf8') };
      }
      const [pool, name] = (args[1] as string).split('/') as [string, string];
      const device = `/dev/rbd${this.mapped.length}`;
      this.mapped.push({ pool, name, device });
      mkdirSync(path.join(this.root, 'dev/rbd', pool), { recursive: true });
      writeFileSync(path.join(this.root, device), '');
      symlinkSync(`../../${path.basename(device)}`, path.join(this.root, 'dev/rbd', pool, name));
      return ok(`${device}\n`);
    }
    if (cmd === 'rbd' && args[0] === 'showmapped') {
      return ok(
        JSON.stringify(this.mapped.map((m, i) => ({ id: String(i), ...m, namespace: '', snap: '-' }))),
      );
    }
    if (cmd === 'rbd' && args[0] === 'unmap') {
      const m = this.mapped.find((x) => x.device === args[1]);
      if (!m) throw new CommandError({ cmd, args, code: 22, stderr: 'not mapped' });
      this.mapped = this.mapped.filter((x) => x !== m);
      rmSync(path.join(this.root, 'dev/rbd', m.pool, m.name), { force: true });
      rmSync(path.join(this.root, m.device), { force: true });
      return ok();
    }
    if (cmd === 'blockdev') return ok();
    throw new CommandError({ cmd, args, code: 127, stderr: 'not faked' });
  }
}

describe('RbdConnector', () => {
  let root: string;
  let fake: FakeRbd;
  let logs: string[];
  const make = (rbd = {}) => {
    const stream = new PassThrough();
    logs = [];
    stream.on('data', (b: Buffer) => logs.push(b.toString()));
    return new RbdConnector({
      executor: fake,
      paths: hostPaths(root),
      logger: createLogger({ level: 'debug', destination: stream }),
      lock: new HostLock({ dir: path.join(root, 'run/locks') }),
      rbd: { tmpDir: root, ...rbd },
    });
  };
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'rbd-unit-'));
    fake = new FakeRbd(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('maps with id, monitors and a 0600 temporary keyring from the node-stage key, removed afterwards', async () => {
    const c = make();
    const dev = await c.connect(info, { volumeId: '1234', secrets: { key: KEY } });
    assert.equal(dev.devicePath, '/dev/rbd0');
    assert.deepEqual(dev.details, {
      pool: 'volumes',
      image: 'volume-1234',
      mapper: 'krbd',
      monitors: '127.0.0.1:6789,10.0.0.2:6790',
      id: 'cinder',
    });
    const map = fake.calls.find((x) => x.args[0] === 'map');
    assert.deepEqual(map?.args.slice(0, 6), [
      'map',
      'volumes/volume-1234',
      '--id',
      'cinder',
      '-m',
      '127.0.0.1:6789,10.0.0.2:6790',
    ]);
    assert.ok(!map?.args.includes(KEY), 'the key is never on the command line');
    assert.equal(fake.keyringSeen?.mode, 0o600);
    assert.equal(fake.keyringSeen?.text, `[client.cinder]\n\tkey = ${KEY}\n`);
    assert.equal(existsSync(fake.keyringSeen?.path as string), false, 'temporary keyring removed');
    assert.ok(!JSON.stringify(dev).includes(KEY));
    assert.ok(!logs.join('').includes(KEY));
  });

  it('uses the configured host keyring path when no secret is given', async () => {
    const keyring = path.join(root, 'ceph.client.cinder.keyring');
    writeFileSync(keyring, `[client.cinder]\n\tkey = ${KEY}\n`, { mode: 0o600 });
    await make({ keyringPath: keyring }).connect(info, { volumeId: '1234' });
    const map = fake.calls.find((x) => x.args[0] === 'map');
    assert.deepEqual(map?.args.slice(-2), ['--keyring', keyring]);
    assert.equal(existsSync(keyring), true, 'a host keyring is never removed');
  });

  it('finds an already mapped image instead of mapping twice, and unmaps idempotently', async () => {
    const c = make();
    const a = await c.connect(info, { volumeId: '1234', secrets: { key: KEY } });
    const b = await c.connect(info, { volumeId: '1234', secrets: { key: KEY } });
    assert.equal(b.devicePath, a.devicePath);
    assert.equal(fake.calls.filter((x) => x.args[0] === 'map').length, 1);
    assert.equal(await c.isConnected(a), true);
    await c.disconnect(a);
    assert.ok(fake.calls.some((x) => x.args[0] === 'unmap' && x.args[1] === '/dev/rbd0'));
    assert.equal(await c.isConnected(a), false);
    await c.disconnect(a); // already gone: success
    assert.equal(fake.calls.filter((x) => x.args[0] === 'unmap').length, 1);
  });

  it('finds the device with showmapped when there is no udev link (rbd-nbd)', async () => {
    const c = make({ mapper: 'nbd' });
    fake.mapped.push({ pool: 'volumes', name: 'volume-1234', device: '/dev/nbd3' });
    const orig = fake.run.bind(fake);
    fake.run = async (cmd, args, opts) =>
      orig(
        cmd === 'rbd-nbd' ? 'rbd' : cmd,
        args[0] === 'list-mapped' ? ['showmapped', ...args.slice(1)] : args,
        opts,
      );
    const dev = await c.connect(info, { volumeId: '1234' });
    assert.equal(dev.devicePath, '/dev/nbd3');
    assert.equal((dev.details as { mapper: string }).mapper, 'nbd');
  });

  it('treats an image unmapped between lookup and unmap as success', async () => {
    const c = make();
    const dev = await c.connect(info, { volumeId: '1234', secrets: { key: KEY } });
    const orig = fake.run.bind(fake);
    fake.run = async (cmd, args, opts) => {
      if (args[0] === 'unmap') {
        await orig(cmd, args, opts); // someone else unmaps first...
        return orig(cmd, args, opts); // ...so ours fails with 22
      }
      return orig(cmd, args, opts);
    };
    await c.disconnect(dev);
    assert.equal(await c.isConnected(dev), false);
  });

  it('rejects a malformed image name', async () => {
    await assert.rejects(make().connect({ ...info, name: 'bad name' }, { volumeId: 'x' }), /pool\/image/);
  });
});
