/**
 * The Cinder client's id check and response-shape checks (src/openstack/cinder/checks.ts), alone
 * and through every CinderClient method that puts an id in a URL. The client runs against a tiny
 * HTTP server on 127.0.0.1 that records requests and answers with whatever body a test sets: the
 * lab Cinder cannot be made to answer with a wrong shape on demand. The hostile ids through the
 * CSI services on the real lab Cinder are in test/integration/controller/hostile-ids.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  expectList,
  expectOne,
  idPath,
  isCinderId,
  metadataKeySegment,
  SHAPES,
  UnexpectedResponseError,
} from '../../../src/openstack/cinder/checks.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { sessionDouble } from './session-double.ts';

const ID = '4f1e8a2b-93c4-4d5e-8f60-718293a4b5c6';
const HOSTILE = [
  'detail',
  'summary',
  'backup:detail',
  '../x',
  'a/b',
  '%2e%2e',
  '..',
  '',
  'a'.repeat(1024 * 1024),
];

describe('isCinderId / idPath', () => {
  it('accepts the form Cinder gives ids, in either case', () => {
    assert.equal(isCinderId(ID), true);
    assert.equal(isCinderId(ID.toUpperCase()), true);
    assert.equal(idPath('volumes', ID, '/action'), `/volumes/${ID}/action`);
  });

  it('refuses names of other URLs, path tricks, near-misses and huge strings', () => {
    const nearMisses = [
      ID.replaceAll('-', ''), // Cinder never gives ids without dashes
      `${ID}\n`,
      ` ${ID}`,
      `${ID}/..`,
      `${ID.slice(0, -1)}g`,
      `${ID}0`,
    ];
    for (const id of [...HOSTILE, ...nearMisses])
      assert.equal(isCinderId(id), false, JSON.stringify(id.slice(0, 50)));
    assert.equal(isCinderId(undefined), false);
    assert.equal(isCinderId(42), false);
  });

  it('answers a non-id with the not-found OpenStackError of a 404, quoting only a short prefix', () => {
    for (const id of HOSTILE) {
      assert.throws(
        () => idPath('snapshots', id, '', 'DELETE'),
        (err: unknown) => {
          assert.ok(err instanceof OpenStackError);
          assert.equal(err.notFound, true);
          assert.equal(err.status, 404);
          assert.equal(err.method, 'DELETE');
          assert.match(err.message, /Snapshot .* could not be found/);
          assert.ok(err.message.length < 300, `message of ${err.message.length} chars`);
          return true;
        },
      );
    }
  });

  it('metadata keys that would climb the URL (., .., %2e%2e) or name the collection are not found', () => {
    for (const key of ['', '.', '..', '%2e', '%2E%2e', '.%2e']) {
      assert.throws(
        () => metadataKeySegment('volumes', ID, key),
        (err: unknown) => err instanceof OpenStackError && err.notFound,
      );
    }
    assert.equal(metadataKeySegment('volumes', ID, 'a.b'), 'a.b');
    assert.equal(metadataKeySegment('volumes', ID, 'a/b'), 'a%2Fb');
    assert.equal(metadataKeySegment('volumes', ID, '...'), '...');
  });
});

describe('expectOne / expectList', () => {
  const answer = (body: unknown) => ({
    status: 200,
    url: 'http://c/v3/p/volumes/x',
    method: 'GET',
    requestId: 'req-1',
    body,
  });

  it('returns the object or list when it has the fields the caller needs', () => {
    const v = { id: ID, status: 'available', size: 1, extra: true };
    assert.equal(expectOne(answer({ volume: v }), 'volume', SHAPES.volume), v);
    assert.deepEqual(expectList(answer({ volumes: [v, v] }), 'volumes', SHAPES.volume), [v, v]);
    assert.deepEqual(expectList(answer({ volumes: [] }), 'volumes', SHAPES.volume), []);
  });

  it('says what is missing in an UnexpectedResponseError (retryable), never a TypeError', () => {
    const cases: [unknown, RegExp][] = [
      [{ volumes: [] }, /"volume": an object with string id, string status, number size \(got undefined\)/],
      [null, /got undefined/],
      ['<html>proxy error</html>', /got undefined/],
      [{ volume: [] }, /got array/],
      [{ volume: { id: ID, status: 'available' } }, /field size is undefined, not number/],
      [{ volume: { id: 7, status: 'available', size: 1 } }, /field id is number, not string/],
    ];
    for (const [body, re] of cases) {
      assert.throws(
        () => expectOne(answer(body), 'volume', SHAPES.volume),
        (err: unknown) => {
          assert.ok(err instanceof UnexpectedResponseError, String(err));
          assert.ok(err instanceof OpenStackError);
          assert.equal(err.retryable, true);
          assert.equal(err.notFound, false);
          assert.match(err.message, /GET http:\/\/c\/v3\/p\/volumes\/x -> HTTP 200: unexpected response/);
          assert.match(err.message, re);
          assert.match(err.message, /req-1/);
          return true;
        },
      );
    }
    assert.throws(() => expectList(answer({ volume: {} }), 'volumes', SHAPES.volume), /"volumes": a list/);
    assert.throws(
      () =>
        expectList(answer({ volumes: [{ id: ID, status: 'x', size: 1 }, 'x'] }), 'volumes', SHAPES.volume),
      /"volumes"\[1\]: .*got string/,
    );
  });
});

// ---------------------------------------------------------------- through CinderClient

const PROJECT = '0123456789abcdef0123456789abcdef';
const server = { seen: [] as string[], body: {} as unknown, endpoint: '' };
const VERSIONS = { versions: [{ id: 'v3.0', status: 'CURRENT', version: '3.70', min_version: '3.0' }] };

describe('CinderClient: no request for an id that is not a Cinder id; shapes checked', () => {
  let http: Server;
  let client: CinderClient;
  before(async () => {
    http = createServer((req, res) => {
      const root = req.url === '/';
      if (!root) server.seen.push(`${req.method} ${req.url}`);
      res.writeHead(root ? 300 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(root ? VERSIONS : server.body));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    server.endpoint = `http://127.0.0.1:${(http.address() as AddressInfo).port}/v3/${PROJECT}`;
    client = new CinderClient({
      session: sessionDouble(server.endpoint, PROJECT),
      logger: silentLogger(),
      ignoreMicroversion: true,
    });
    await client.negotiate();
  });
  after(() => new Promise<void>((resolve) => http.close(() => resolve())));
  beforeEach(() => {
    server.seen = [];
    server.body = {};
  });

  it('every method that puts an id in a URL answers not-found without a request', async () => {
    // 3.0 is pinned here, so methods that need a later microversion are tried at 3.70 below.
    const calls: Record<string, (c: CinderClient, id: string) => Promise<unknown>> = {
      getVolume: (c, id) => c.getVolume(id),
      updateVolume: (c, id) => c.updateVolume(id, { name: 'n' }),
      deleteVolume: (c, id) => c.deleteVolume(id),
      setVolumeMetadata: (c, id) => c.setVolumeMetadata(id, { a: 'b' }),
      replaceVolumeMetadata: (c, id) => c.replaceVolumeMetadata(id, { a: 'b' }),
      deleteVolumeMetadataKey: (c, id) => c.deleteVolumeMetadataKey(id, 'k'),
      extendVolume: (c, id) => c.extendVolume(id, 2),
      retypeVolume: (c, id) => c.retypeVolume(id, 'fake', 'never'),
      setVolumeReadonly: (c, id) => c.setVolumeReadonly(id, true),
      forceDetachVolume: (c, id) => c.forceDetachVolume(id, ID),
      waitForVolume: (c, id) => c.waitForVolume(id, { target: ['available'] }),
      getSnapshot: (c, id) => c.getSnapshot(id),
      deleteSnapshot: (c, id) => c.deleteSnapshot(id),
      setSnapshotMetadata: (c, id) => c.setSnapshotMetadata(id, { a: 'b' }),
      getBackup: (c, id) => c.getBackup(id),
      deleteBackup: (c, id) => c.deleteBackup(id),
      restoreBackup: (c, id) => c.restoreBackup(id, { name: 'n' }),
    };
    for (const [name, call] of Object.entries(calls)) {
      for (const id of HOSTILE) {
        await assert.rejects(
          call(client, id),
          (err: unknown) => err instanceof OpenStackError && err.notFound,
          `${name}(${JSON.stringify(id.slice(0, 20))})`,
        );
      }
    }
    assert.deepEqual(server.seen, [], 'no request was sent');
  });

  it('attachments, groups and group snapshots too (at 3.70)', async () => {
    const c = new CinderClient({ session: sessionDouble(server.endpoint, PROJECT), logger: silentLogger() });
    assert.deepEqual(await c.negotiate(), { major: 3, minor: 70 });
    const calls: ((id: string) => Promise<unknown>)[] = [
      (id) => c.getAttachment(id),
      (id) => c.updateAttachment(id, { host: 'h' }),
      (id) => c.completeAttachment(id),
      (id) => c.deleteAttachment(id),
      (id) => c.revertVolumeToSnapshot(id, ID),
      (id) => c.extendVolume(id, 2, { online: true }),
      (id) => c.getGroup(id),
      (id) => c.deleteGroup(id),
      (id) => c.updateGroup(id, { add_volumes: [ID] }),
      (id) => c.getGroupSnapshot(id),
      (id) => c.deleteGroupSnapshot(id),
      (id) => c.deleteGroupType(id),
      (id) => c.waitForSnapshot(id, { target: ['available'] }),
      (id) => c.waitForBackup(id, { target: ['available'] }),
      (id) => c.waitForGroup(id, { target: ['available'] }),
      (id) => c.waitForGroupSnapshot(id, { target: ['available'] }),
    ];
    for (const [i, call] of calls.entries()) {
      for (const id of HOSTILE) {
        await assert.rejects(
          call(id),
          (err: unknown) => err instanceof OpenStackError && err.notFound,
          `#${i}`,
        );
      }
    }
    // gone: true makes a wait for a non-id end at once, as for a 404
    assert.equal(await c.waitForVolume('detail', { target: [], gone: true }), undefined);
    // id filters that are not ids match nothing; messages about a non-id are none
    assert.deepEqual(await collect(c.listSnapshots({ volume_id: 'detail' })), []);
    assert.deepEqual(await collect(c.listSnapshots({ group_snapshot_id: '../x' })), []);
    assert.deepEqual((await c.listSnapshotsPage({ volume_id: 'summary' })).items, []);
    assert.deepEqual(await collect(c.listBackups({ volume_id: 'backup:detail' })), []);
    assert.deepEqual(await collect(c.listGroupSnapshots({ group_id: 'a/b' })), []);
    assert.deepEqual(await c.listAttachments({ volume_id: 'detail' }), []);
    assert.deepEqual(await c.listMessages({ resource_uuid: 'detail' }), []);
    assert.equal(await c.latestMessage('summary'), undefined);
    assert.deepEqual(server.seen, [], 'no request was sent');
  });

  it('a volume type that is not an id is looked up by name, never put in a URL', async () => {
    server.body = { volume_types: [{ id: ID, name: 'fake' }] };
    assert.equal((await client.getVolumeType('fake')).id, ID);
    await assert.rejects(
      client.getVolumeType('detail'),
      (err: unknown) => err instanceof OpenStackError && err.notFound,
    );
    await assert.rejects(client.getVolumeType('gold'), /Volume type "gold" could not be found\.$/);
    await assert.rejects(
      client.getVolumeTypeExtraSpecs('../x'),
      (err: unknown) => err instanceof OpenStackError && err.notFound,
    );
    assert.ok(
      server.seen.every((s) => s === `GET /v3/${PROJECT}/types`),
      server.seen.join(),
    );
  });

  it('an answer of the wrong shape is an UnexpectedResponseError naming what is missing', async () => {
    server.body = { volumes: [{ id: ID }] }; // what GET /volumes/detail would answer
    await assert.rejects(client.getVolume(ID), (err: unknown) => {
      assert.ok(err instanceof UnexpectedResponseError);
      assert.match(
        err.message,
        /"volume": an object with string id, string status, number size \(got undefined\)/,
      );
      return true;
    });
    server.body = { snapshot: { id: ID, status: 'available' } };
    await assert.rejects(client.getSnapshot(ID), /field volume_id is undefined, not string/);
    server.body = { volumes: { id: ID } };
    await assert.rejects(client.listVolumesPage({}), /"volumes": a list \(got object\)/);
    server.body = { volumes: [{ id: ID, status: 'available', size: 1 }, null] };
    await assert.rejects(collect(client.listVolumes()), /"volumes"\[1\].*got null/);
    server.body = { backup: { id: ID } };
    await assert.rejects(client.getBackup(ID), /field status is undefined/);
    server.body = { restore: {} };
    await assert.rejects(client.restoreBackup(ID, {}), /"restore": an object with string volume_id/);
    server.body = { limits: {} };
    await assert.rejects(client.getAbsoluteLimits(), /field absolute is undefined, not object/);
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
