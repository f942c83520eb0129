/** Error mapping (src/csi/node/errors.ts) and connection-info resolution (connection.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../../src/csi/errors.ts';
import { connectionInfoFromPublishContext, resolveConnection } from '../../../src/csi/node/connection.ts';
import { toCsiError } from '../../../src/csi/node/errors.ts';
import { ConnectError } from '../../../src/host/connector.ts';
import { CommandError } from '../../../src/host/exec.ts';
import { FilesystemMismatchError } from '../../../src/host/filesystem.ts';
import { MountBusyError } from '../../../src/host/mount.ts';
import type { CinderApi } from '../../../src/openstack/cinder-api.ts';
import type { Attachment } from '../../../src/openstack/cinder-types.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { AbortedError } from '../../../src/util/abort.ts';

const codeOf = (e: unknown) => (e instanceof CsiError ? e.code : undefined);
const osErr = (s: number | undefined, code?: string) =>
  new OpenStackError({
    status: s,
    faultMessage: 'boom',
    method: 'GET',
    url: 'http://c/v3/p/attachments/a?x=1',
    code,
  });

test('toCsiError maps host and OpenStack failures to spec codes', () => {
  const cmd = (f: Partial<ConstructorParameters<typeof CommandError>[0]>) =>
    new CommandError({ cmd: 'mount', args: ['/dev/sdb', '/x'], code: 32, stderr: 'bad superblock', ...f });
  assert.equal(codeOf(toCsiError(cmd({}), 'staging v')), status.FAILED_PRECONDITION);
  assert.match(
    (toCsiError(cmd({}), 'staging v') as Error).message,
    /^staging v: command failed .*bad superblock/,
  );
  assert.equal(codeOf(toCsiError(cmd({ notFound: true, code: null }), 's')), status.FAILED_PRECONDITION);
  assert.match(
    (toCsiError(cmd({ notFound: true, code: null }), 's') as Error).message,
    /mount is not installed/,
  );
  assert.equal(codeOf(toCsiError(cmd({ timedOut: true, code: null }), 's')), status.DEADLINE_EXCEEDED);
  assert.equal(codeOf(toCsiError(new AbortedError('x'), 's')), status.DEADLINE_EXCEEDED);
  assert.equal(
    codeOf(toCsiError(new FilesystemMismatchError('/dev/sdb', 'ext4', 'xfs'), 's')),
    status.FAILED_PRECONDITION,
  );
  assert.equal(codeOf(toCsiError(new MountBusyError('/m', 10), 's')), status.FAILED_PRECONDITION);
  assert.equal(
    codeOf(toCsiError(new ConnectError('no device', { transient: true }), 's')),
    status.UNAVAILABLE,
  );
  assert.equal(codeOf(toCsiError(new ConnectError('login refused'), 's')), status.FAILED_PRECONDITION);
  assert.equal(codeOf(toCsiError(osErr(404), 's')), status.NOT_FOUND);
  assert.equal(codeOf(toCsiError(osErr(401), 's')), status.FAILED_PRECONDITION);
  assert.equal(codeOf(toCsiError(osErr(503), 's')), status.UNAVAILABLE);
  assert.equal(codeOf(toCsiError(osErr(undefined, 'ECONNREFUSED'), 's')), status.UNAVAILABLE);
  assert.equal(
    codeOf(toCsiError(osErr(undefined, 'UND_ERR_HEADERS_TIMEOUT'), 's')),
    status.DEADLINE_EXCEEDED,
  );
  assert.equal(codeOf(toCsiError(osErr(400), 's')), status.FAILED_PRECONDITION);
  const bug = new TypeError('x is undefined');
  assert.equal(toCsiError(bug, 's'), bug, 'unknown errors pass through (INTERNAL in the wrapper)');
});

function cinderWith(att: Partial<Attachment> | undefined): { api: CinderApi; calls: string[] } {
  const calls: string[] = [];
  const api: Partial<CinderApi> = {
    async getAttachment(id) {
      calls.push(id);
      if (!att) throw osErr(404);
      return {
        id,
        status: 'reserved',
        instance: null,
        attached_at: null,
        detached_at: null,
        attach_mode: 'rw',
        volume_id: 'v1',
        ...att,
      };
    },
  };
  return { api: api as CinderApi, calls };
}

const base = {
  volumeId: 'v1',
  secrets: {},
  nodeStageSecretsMode: false,
  signal: new AbortController().signal,
};

test('resolveConnection reads the attachment named by publish_context', async () => {
  const info = { driver_volume_type: 'iscsi', target_iqn: 'iqn.x', auth_password: 'pw' };
  const { api, calls } = cinderWith({ connection_info: info });
  const r = await resolveConnection({ ...base, cinder: api, publishContext: { attachment_id: 'att-1' } });
  assert.deepEqual(calls, ['att-1']);
  assert.deepEqual(r.info, info);
  assert.equal(r.attachmentId, 'att-1');
  assert.equal(r.secrets, undefined);
});

test('resolveConnection refuses other volumes, missing connection info, missing attachment id', async () => {
  const other = cinderWith({ volume_id: 'v2', connection_info: { driver_volume_type: 'rbd' } });
  await assert.rejects(
    resolveConnection({ ...base, cinder: other.api, publishContext: { attachment_id: 'a' } }),
    (e: unknown) =>
      codeOf(e) === status.FAILED_PRECONDITION && /belongs to volume v2/.test((e as Error).message),
  );
  const none = cinderWith({ connection_info: null });
  await assert.rejects(
    resolveConnection({ ...base, cinder: none.api, publishContext: { attachment_id: 'a' } }),
    (e: unknown) => codeOf(e) === status.FAILED_PRECONDITION,
  );
  await assert.rejects(
    resolveConnection({ ...base, cinder: none.api, publishContext: {} }),
    (e: unknown) => codeOf(e) === status.INVALID_ARGUMENT,
  );
});

test('node-stage-secrets mode: publish_context targets + secrets, no Cinder call', async () => {
  const pc = {
    attachment_id: 'att-9',
    driver_volume_type: 'iscsi',
    target_portal: '10.0.0.1:3260',
    target_iqn: 'iqn.a',
    target_lun: '3',
    target_portals: '["10.0.0.1:3260","10.0.0.2:3260"]',
    target_iqns: 'iqn.a,iqn.b',
    target_luns: '3,4',
  };
  const r = await resolveConnection({
    ...base,
    cinder: undefined,
    nodeStageSecretsMode: true,
    publishContext: pc,
    secrets: { auth_username: 'u', auth_password: 'p' },
  });
  assert.deepEqual(r.info, {
    driver_volume_type: 'iscsi',
    target_portal: '10.0.0.1:3260',
    target_iqn: 'iqn.a',
    target_lun: 3,
    target_portals: ['10.0.0.1:3260', '10.0.0.2:3260'],
    target_iqns: ['iqn.a', 'iqn.b'],
    target_luns: [3, 4],
    auth_username: 'u',
    auth_password: 'p',
    auth_method: 'CHAP',
  });
  assert.equal(r.attachmentId, 'att-9');
  const rbd = connectionInfoFromPublishContext({
    driver_volume_type: 'rbd',
    name: 'volumes/volume-1',
    hosts: '10.0.0.5,10.0.0.6',
    ports: '6789,6789',
    auth_enabled: 'true',
  });
  assert.deepEqual(rbd, {
    driver_volume_type: 'rbd',
    name: 'volumes/volume-1',
    hosts: ['10.0.0.5', '10.0.0.6'],
    ports: ['6789', '6789'],
    auth_enabled: true,
  });
  assert.throws(() => connectionInfoFromPublishContext({ driver_volume_type: 'iscsi', target_lun: 'x' }));
  assert.throws(() => connectionInfoFromPublishContext({}));
});

test('toCsiError maps every errno a path can produce, quoting only a prefix of the path', () => {
  const sys = (code: string, p?: string) =>
    Object.assign(new Error(`${code}: whatever, stat '${p}'`), {
      code,
      errno: -1,
      syscall: 'stat',
      ...(p === undefined ? {} : { path: p }),
    });
  const want: Record<string, number> = {
    ENOENT: status.FAILED_PRECONDITION,
    ENOTDIR: status.FAILED_PRECONDITION,
    ENAMETOOLONG: status.INVALID_ARGUMENT,
    ELOOP: status.FAILED_PRECONDITION,
    EACCES: status.FAILED_PRECONDITION,
    EPERM: status.FAILED_PRECONDITION,
    EINVAL: status.INVALID_ARGUMENT,
    EROFS: status.FAILED_PRECONDITION,
    EBUSY: status.FAILED_PRECONDITION,
    EIO: status.UNAVAILABLE,
    EEXIST: status.FAILED_PRECONDITION,
    EISDIR: status.FAILED_PRECONDITION,
    ENOTEMPTY: status.FAILED_PRECONDITION,
    ENOSPC: status.RESOURCE_EXHAUSTED,
    EDQUOT: status.RESOURCE_EXHAUSTED,
    ENXIO: status.FAILED_PRECONDITION,
    ENODEV: status.FAILED_PRECONDITION,
    ESTALE: status.FAILED_PRECONDITION,
    EMFILE: status.UNAVAILABLE,
    ENOMEM: status.UNAVAILABLE,
    EOVERFLOW: status.FAILED_PRECONDITION, // any other errno: the node's state, not a bug
  };
  const long = `/var/lib/kubelet/pods/${'x'.repeat(5000)}`;
  for (const [code, grpc] of Object.entries(want)) {
    const e = toCsiError(sys(code, long), 'reading stats of volume v');
    assert.equal(codeOf(e), grpc, code);
    const msg = (e as Error).message;
    assert.ok(msg.startsWith('reading stats of volume v: stat /var/lib/kubelet/pods/xxx'), msg.slice(0, 100));
    assert.ok(msg.endsWith(`(${code})`), msg.slice(-80));
    assert.ok(msg.length < 300, `${code}: ${msg.length} chars`);
    assert.match(msg, /\(5022 bytes\)/);
  }
  assert.equal(codeOf(toCsiError(sys('EIO'), 's')), status.UNAVAILABLE);
  // A plain Error with a code-like field but no errno is not a system error: left for INTERNAL.
  const plain = Object.assign(new Error('x'), { code: 'EIO' });
  assert.equal(toCsiError(plain, 's'), plain);
});
