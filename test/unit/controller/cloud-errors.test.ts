import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { classifyFailureReason, fromCloudError } from '../../../src/csi/cloud-errors.ts';
import {
  ConnectorConfigError,
  chainConnectorSources,
  LocalConnectorSource,
  NoConnectorError,
  StaticConnectorSource,
} from '../../../src/csi/connector-source.ts';
import { Code, CsiError } from '../../../src/csi/errors.ts';
import { MicroversionError, OpenStackError } from '../../../src/openstack/errors.ts';
import { WaitAbortedError, WaitFailedError } from '../../../src/openstack/waiter.ts';
import { AbortedError } from '../../../src/util/abort.ts';

const os = (status: number | undefined, faultMessage: string) =>
  new OpenStackError({
    status,
    faultMessage,
    method: 'POST',
    url: 'http://c/v3/p/volumes?x=secret',
    requestId: 'req-1',
  });

const codeOf = (err: unknown) => (err as CsiError).code;

describe('fromCloudError', () => {
  it('maps OpenStackError by status and wording, keeping Cinder words and the request id', () => {
    const quota = fromCloudError(os(413, 'VolumeSizeExceedsAvailableQuota: Requested 3G'), 'create volume a');
    assert.equal(codeOf(quota), Code.RESOURCE_EXHAUSTED);
    assert.match(
      quota.message,
      /^create volume a: quota exceeded: VolumeSizeExceedsAvailableQuota: Requested 3G \(request id req-1\)$/,
    );
    assert.equal(codeOf(fromCloudError(os(404, 'Volume x could not be found.'), 'x')), Code.NOT_FOUND);
    const custom = fromCloudError(os(404, 'nope'), 'x', { notFound: 'volume x does not exist' });
    assert.equal(custom.message, 'volume x does not exist');
    assert.equal(
      codeOf(fromCloudError(os(400, 'Invalid input received: bad size'), 'x')),
      Code.INVALID_ARGUMENT,
    );
    assert.equal(
      codeOf(fromCloudError(os(400, 'Invalid volume: Volume status must be available'), 'x')),
      Code.FAILED_PRECONDITION,
    );
    assert.equal(codeOf(fromCloudError(os(409, 'conflict'), 'x')), Code.FAILED_PRECONDITION);
    assert.equal(codeOf(fromCloudError(os(401, 'auth'), 'x')), Code.UNAUTHENTICATED);
    assert.equal(codeOf(fromCloudError(os(403, 'policy'), 'x')), Code.PERMISSION_DENIED);
    for (const s of [undefined, 500, 502, 503, 504, 429]) {
      assert.equal(codeOf(fromCloudError(os(s, 'down'), 'x')), Code.UNAVAILABLE, String(s));
    }
    // A 500 that every retry gets again (cinder InvalidConnectorException): not Cinder's health.
    const noInitiator = fromCloudError(
      os(500, "Connector doesn't have required information: initiator"),
      'publish volume v',
    );
    assert.equal(codeOf(noInitiator), Code.FAILED_PRECONDITION);
    assert.match(noInitiator.message, /required information: initiator.*initiatorname\.iscsi/);
    assert.doesNotMatch(
      fromCloudError(os(503, 'down'), 'x').message,
      /secret/,
      'query strings never reach messages',
    );
  });

  it('maps microversion, wait failures, deadlines and cancellation', () => {
    const mv = fromCloudError(new MicroversionError('online extend needs 3.42'), 'expand');
    assert.equal(codeOf(mv), Code.FAILED_PRECONDITION);
    assert.match(mv.message, /3\.42/);
    const failed = fromCloudError(
      new WaitFailedError('volume', 'v1', 'error', ['available'], 'No valid backend was found.'),
      'create',
    );
    assert.equal(codeOf(failed), Code.RESOURCE_EXHAUSTED);
    const timeout = new Error('t');
    timeout.name = 'TimeoutError';
    const dl = fromCloudError(new WaitAbortedError(timeout, 'volume v1', 'creating'), 'create', {
      deadlineHint: 'retry',
    });
    assert.equal(codeOf(dl), Code.DEADLINE_EXCEEDED);
    assert.match(dl.message, /deadline passed; retry/);
    const ac = new AbortController();
    ac.abort(new Error('call cancelled by the client'));
    assert.equal(
      codeOf(fromCloudError(new AbortedError(ac.signal.reason), 'x', { signal: ac.signal })),
      Code.CANCELLED,
    );
    const csi = new CsiError(Code.ABORTED, 'busy');
    assert.equal(fromCloudError(csi, 'x'), csi);
    const bug = new TypeError('boom');
    assert.equal(fromCloudError(bug, 'x'), bug, 'non-cloud errors pass through (INTERNAL in the wrapper)');
    assert.equal(fromCloudError(bug), undefined, 'server hook: undefined for non-cloud errors');
    assert.equal(codeOf(fromCloudError(os(413, 'quota'))), Code.RESOURCE_EXHAUSTED);
  });

  it('classifies failure reasons', () => {
    assert.equal(
      classifyFailureReason('schedule allocate volume:Could not find any available weighted backend.'),
      Code.RESOURCE_EXHAUSTED,
    );
    assert.equal(
      classifyFailureReason('Insufficient free space for volume creation'),
      Code.RESOURCE_EXHAUSTED,
    );
    assert.equal(classifyFailureReason('Image abc could not be found.'), Code.INVALID_ARGUMENT);
    assert.equal(
      classifyFailureReason('Driver failed to create the volume: iSCSI target error'),
      Code.UNAVAILABLE,
    );
  });
});

describe('connector sources', () => {
  it('static: known node → connector (host filled), unknown → undefined, null → NoConnectorError', async () => {
    const src = new StaticConnectorSource({
      n1: { host: 'n1', initiator: 'iqn.x' },
      n2: { initiator: 'iqn.y' } as never,
      n3: null,
    });
    assert.deepEqual(await src.get('n1'), { host: 'n1', initiator: 'iqn.x' });
    assert.equal((await src.get('n2'))?.host, 'n2');
    assert.equal(await src.get('nx'), undefined);
    await assert.rejects(src.get('n3'), NoConnectorError);
    assert.throws(() => new StaticConnectorSource({ n1: { host: 'other' } }), ConnectorConfigError);
  });

  it('static from a file / JSON, with clear errors', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ctl-conn-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'connectors.json');
    await writeFile(file, JSON.stringify({ 'node-1': { host: 'node-1', ip: '10.0.0.1' } }));
    assert.equal((await StaticConnectorSource.fromFile(file).get('node-1'))?.ip, '10.0.0.1');
    assert.throws(() => StaticConnectorSource.fromFile(join(dir, 'missing.json')), /ENOENT/);
    assert.throws(
      () => StaticConnectorSource.fromJson('{nope', 'flag --connectors'),
      /flag --connectors: not valid JSON/,
    );
    assert.throws(() => StaticConnectorSource.fromJson('[]'), ConnectorConfigError);
  });

  it('local (mode all) and chains', async () => {
    const local = new LocalConnectorSource('me', () => ({ host: 'me', initiator: 'iqn.me' }));
    assert.equal((await local.get('me'))?.initiator, 'iqn.me');
    assert.equal(await local.get('other'), undefined);
    await assert.rejects(new LocalConnectorSource('me', async () => undefined).get('me'), NoConnectorError);
    const notRegistered = Object.assign(new Error('no annotation'), { name: 'ConnectorNotRegisteredError' });
    const kube = {
      get: async (n: string) =>
        n === 'k' ? { host: 'k' } : n === 'bare' ? Promise.reject(notRegistered) : undefined,
    };
    const chain = chainConnectorSources([local, kube]);
    assert.equal((await chain.get('me'))?.host, 'me');
    assert.equal((await chain.get('k'))?.host, 'k');
    assert.equal(await chain.get('nobody'), undefined);
    await assert.rejects(chain.get('bare'), /no annotation/);
  });
});
