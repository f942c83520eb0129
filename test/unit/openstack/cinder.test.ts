/**
 * CinderClient against a small Cinder emulation on 127.0.0.1 (request/response shapes copied from the
 * lab's real answers in test/lab/samples). The real Cinder round trips are in
 * test/integration/openstack/cinder.test.ts; this file covers what the lab cannot show on demand:
 * servers with other microversion ranges, a root that is not reachable, exact request encoding.
 * The ServiceSession here is a minimal double over undici (URL join + JSON + error mapping).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CinderClient, ignoreNotFound, nextMarker } from '../../../src/openstack/cinder.ts';
import { versionRootUrl } from '../../../src/openstack/cinder-discovery.ts';
import { MicroversionError, OpenStackError } from '../../../src/openstack/errors.ts';
import { WaitFailedError } from '../../../src/openstack/waiter.ts';
import { AbortedError } from '../../../src/util/abort.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { sessionDouble } from './session-double.ts';

const PROJECT = '0123456789abcdef0123456789abcdef';
/** A Cinder-shaped id (the client refuses anything else before it enters a URL). */
const uid = (n: number | string) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const MISSING = uid('dead');

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** Emulated Cinder state; tests reset and tune it. */
const state = {
  seen: [] as Seen[],
  maxVersion: '3.70',
  minVersion: '3.0',
  rootBroken: false,
  volumes: [] as { id: string; status: string; name: string; size: number }[],
  statusSequence: [] as string[],
  messages: [] as Record<string, unknown>[],
};

function reset(): void {
  state.seen = [];
  state.maxVersion = '3.70';
  state.minVersion = '3.0';
  state.rootBroken = false;
  state.volumes = Array.from({ length: 5 }, (_, i) => ({
    id: uid(i),
    status: 'available',
    name: `v${i}`,
    size: 1,
  }));
  state.statusSequence = [];
  state.messages = [];
}

/** Writes a JSON answer; returns true so handlers can `return send(...)`. */
function send(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { 'content-type': 'application/json', 'x-openstack-request-id': 'req-test' });
  res.end(JSON.stringify(body));
  return true;
}

function versions(selfHref: string) {
  return {
    versions: [
      {
        id: 'v3.0',
        status: 'CURRENT',
        version: state.maxVersion,
        min_version: state.minVersion,
        links: [{ rel: 'self', href: selfHref }],
      },
    ],
  };
}

function handle(req: IncomingMessage, res: ServerResponse, raw: string, base: string): true {
  const url = new URL(req.url ?? '/', base);
  const body = raw ? JSON.parse(raw) : undefined;
  state.seen.push({ method: req.method ?? '', url: url.pathname + url.search, headers: req.headers, body });
  const p = url.pathname;
  if (p === '/') {
    if (state.rootBroken) return send(res, 404, { itemNotFound: { code: 404, message: 'no root here' } });
    return send(res, 300, versions(`${base}/v3/`));
  }
  if (p === '/v3/') {
    const v = versions(`${base}/v3/`).versions[0];
    return send(res, 200, { versions: [v] });
  }
  const prefix = `/v3/${PROJECT}`;
  if (!p.startsWith(prefix)) return send(res, 404, { itemNotFound: { code: 404, message: 'bad url' } });
  const rest = p.slice(prefix.length);
  if (rest === '/volumes/detail' && req.method === 'GET') {
    const limit = Number(url.searchParams.get('limit') ?? 1000);
    const marker = url.searchParams.get('marker');
    const start = marker ? state.volumes.findIndex((v) => v.id === marker) + 1 : 0;
    const items = state.volumes.slice(start, start + limit);
    const more = start + limit < state.volumes.length;
    const links = more
      ? [{ rel: 'next', href: `${base}${prefix}/volumes/detail?limit=${limit}&marker=${items.at(-1)?.id}` }]
      : undefined;
    return send(res, 200, { volumes: items, ...(links ? { volumes_links: links } : {}) });
  }
  if (rest === '/volumes' && req.method === 'POST') {
    return send(res, 202, {
      volume: { id: uid('abc'), status: 'creating', name: body.volume.name, size: 1 },
    });
  }
  const vm = /^\/volumes\/([^/]+)$/.exec(rest);
  if (vm && req.method === 'GET') {
    if (vm[1] === MISSING) {
      return send(res, 404, { itemNotFound: { code: 404, message: `Volume ${vm[1]} could not be found.` } });
    }
    const status = state.statusSequence.shift() ?? 'available';
    return send(res, 200, { volume: { id: vm[1], status, size: 1 } });
  }
  if (vm && req.method === 'DELETE') {
    return send(res, 404, { itemNotFound: { code: 404, message: `Volume ${vm[1]} could not be found.` } });
  }
  if (rest === '/messages') {
    const uuid = url.searchParams.get('resource_uuid');
    return send(res, 200, { messages: state.messages.filter((m) => !uuid || m['resource_uuid'] === uuid) });
  }
  if (rest === '/types') {
    return send(res, 200, {
      volume_types: [{ id: '049896e5-6bd9-4878-8a24-cbf366ebcba7', name: 'fake', extra_specs: {} }],
    });
  }
  if (rest === '/attachments') {
    return send(res, 200, {
      attachment: { id: uid('a'), status: 'reserved', volume_id: body.attachment.volume_uuid },
    });
  }
  if (/^\/(attachments|volumes\/[^/]+\/action|backups)/.test(rest)) return send(res, 202, {});
  return send(res, 404, { itemNotFound: { code: 404, message: 'not emulated' } });
}

describe('CinderClient (emulated Cinder)', () => {
  let server: Server;
  let base: string;
  let endpoint: string;
  const client = (opts: { maxMicroversion?: string; ignoreMicroversion?: boolean } = {}) =>
    new CinderClient({ session: sessionDouble(endpoint, PROJECT), logger: silentLogger(), ...opts });

  before(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => {
        raw += c;
      });
      req.on('end', () => handle(req, res, raw, base));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    endpoint = `${base}/v3/${PROJECT}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(reset);

  describe('microversion negotiation', () => {
    it('negotiates the server max (3.70) and sends it on every request', async () => {
      const c = client();
      assert.deepEqual(await c.negotiate(), { major: 3, minor: 70 });
      assert.equal(c.supports('3.44'), true);
      assert.equal(c.supports('3.71'), false);
      await c.getVolume(uid(1));
      await c.listVolumeTypes();
      const api = state.seen.filter((s) => s.url.startsWith('/v3/0'));
      assert.equal(api.length, 2);
      for (const s of api) assert.equal(s.headers['openstack-api-version'], 'volume 3.70');
      // discovery happened once, on the root
      assert.deepEqual(
        state.seen.filter((s) => !s.url.startsWith('/v3/0')).map((s) => s.url),
        ['/'],
      );
    });

    it('takes the lower of client cap and server max', async () => {
      state.maxVersion = '3.60';
      assert.deepEqual(await client().negotiate(), { major: 3, minor: 60 });
      assert.deepEqual(await client({ maxMicroversion: '3.20' }).negotiate(), { major: 3, minor: 20 });
      // a cap above what the client implements is clamped to 3.70
      state.maxVersion = '3.99';
      assert.deepEqual(await client({ maxMicroversion: '3.80' }).negotiate(), { major: 3, minor: 70 });
    });

    it('falls back to GET /v3/ when the root does not answer with versions', async () => {
      state.rootBroken = true;
      assert.deepEqual(await client().negotiate(), { major: 3, minor: 70 });
      assert.deepEqual(
        state.seen.map((s) => s.url),
        ['/', '/v3/'],
      );
    });

    it('refuses a server whose minimum is above the client max', async () => {
      state.minVersion = '3.30';
      await assert.rejects(client({ maxMicroversion: '3.20' }).negotiate(), MicroversionError);
    });

    it('discovery is single-flight, and one caller aborting does not fail the others', async () => {
      const c = client();
      const ctl = new AbortController();
      const first = c.negotiate({ signal: ctl.signal });
      const others = Promise.all([c.negotiate(), c.negotiate()]);
      ctl.abort(new Error('cancelled by the CO'));
      await assert.rejects(first, AbortedError);
      assert.deepEqual(await others, [
        { major: 3, minor: 70 },
        { major: 3, minor: 70 },
      ]);
      assert.equal(state.seen.filter((s) => s.url === '/').length, 1);
    });

    it('ignoreMicroversion pins 3.0 without discovery', async () => {
      const c = client({ ignoreMicroversion: true });
      await c.getVolume(uid(1));
      assert.deepEqual(c.microversion, { major: 3, minor: 0 });
      assert.deepEqual(
        state.seen.map((s) => [s.url, s.headers['openstack-api-version']]),
        [[`/v3/${PROJECT}/volumes/${uid(1)}`, 'volume 3.0']],
      );
    });

    it('refuses calls above the negotiated version locally, naming feature and versions', async () => {
      const c = client({ maxMicroversion: '3.20' });
      await c.negotiate();
      const before = state.seen.length;
      await assert.rejects(
        c.createAttachment({ volume_uuid: uid(1), connector: { host: 'n1' } }),
        (err: unknown) => {
          assert.ok(err instanceof MicroversionError);
          assert.match(
            err.message,
            /attachments \(attachment\.create\) need Cinder API microversion 3\.27.*negotiated microversion is 3\.20/,
          );
          return true;
        },
      );
      await assert.rejects(c.completeAttachment(uid('a1')), /3\.44/);
      await assert.rejects(c.revertVolumeToSnapshot(uid(1), uid('c1')), /3\.40/);
      await assert.rejects(c.extendVolume(uid(1), 2, { online: true }), /3\.42/);
      await assert.rejects(c.createBackup({ volume_id: 'v', metadata: { a: 'b' } }), /3\.43/);
      assert.equal(state.seen.length, before, 'nothing was sent');
      await assert.rejects(
        client({ maxMicroversion: '3.12' }).getGroup(uid('b1')),
        /generic volume groups.*3\.13/,
      );
      // 3.27 is enough for an attachment without mode, 3.54 is needed with mode
      const c27 = client({ maxMicroversion: '3.27' });
      await c27.createAttachment({ volume_uuid: uid(1), connector: { host: 'n1' } });
      await assert.rejects(
        c27.createAttachment({ volume_uuid: uid(1), mode: 'ro' }),
        /attachment mode.*3\.54/,
      );
    });

    it('microversion before negotiate() is a clear error', () => {
      assert.throws(() => client().supports('3.27'), /call negotiate\(\) first/);
    });

    it('versionRootUrl strips /v3/<project> and keeps a path prefix', () => {
      assert.equal(versionRootUrl('http://h:8776/v3/abc'), 'http://h:8776/');
      assert.equal(versionRootUrl('https://cloud/volume/v3/abc?x=1'), 'https://cloud/volume/');
    });
  });

  describe('requests', () => {
    it('iterates every page following the next marker, and gives single pages with next', async () => {
      const c = client();
      const names: string[] = [];
      for await (const v of c.listVolumes({ limit: 2, metadata: { 'csi.k8s.io/pvc': 'x' } }))
        names.push(v.name ?? '');
      assert.deepEqual(names, ['v0', 'v1', 'v2', 'v3', 'v4']);
      const lists = state.seen
        .filter((s) => s.url.includes('/volumes/detail'))
        .map((s) => new URL(s.url, base).searchParams);
      assert.equal(lists.length, 3);
      assert.deepEqual(
        lists.map((q) => q.get('marker')),
        [null, uid(1), uid(3)],
      );
      assert.equal(lists[0]!.get('metadata'), '{"csi.k8s.io/pvc":"x"}');
      const page = await c.listVolumesPage({ limit: 3 });
      assert.deepEqual([page.items.length, page.next], [3, uid(2)]);
      const last = await c.listVolumesPage({ limit: 3, marker: page.next });
      assert.deepEqual([last.items.length, last.next], [2, undefined]);
    });

    it('sends scheduler hints beside the volume and drops undefined fields', async () => {
      await client().createVolume({
        size: 1,
        name: 'n',
        volume_type: undefined,
        scheduler_hints: { same_host: ['x'] },
      });
      const post = state.seen.find((s) => s.method === 'POST');
      assert.deepEqual(post?.body, {
        volume: { size: 1, name: 'n' },
        'OS-SCH-HNT:scheduler_hints': { same_host: ['x'] },
      });
    });

    it('surfaces 404 as OpenStackError.notFound; ignoreNotFound turns it into undefined', async () => {
      const c = client();
      await assert.rejects(
        c.getVolume(MISSING),
        (err: unknown) => err instanceof OpenStackError && err.notFound,
      );
      assert.equal(await ignoreNotFound(c.deleteVolume(MISSING)), undefined);
      await assert.rejects(
        c.getVolumeType('no-such-type'),
        (err: unknown) => err instanceof OpenStackError && err.notFound,
      );
      assert.equal((await c.getVolumeType('fake')).id, '049896e5-6bd9-4878-8a24-cbf366ebcba7');
    });

    it('waitForVolume fails with the newest user message of the volume', async () => {
      state.statusSequence = ['creating', 'error'];
      state.messages = [
        {
          id: uid('e1'),
          resource_uuid: uid(9),
          user_message: 'old news',
          created_at: '2026-01-01T00:00:00.000000',
        },
        {
          id: uid('e2'),
          resource_uuid: uid(9),
          user_message: 'schedule allocate volume:Could not find any available weighted backend.',
          created_at: '2026-01-02T00:00:00.000000',
        },
        {
          id: uid('e3'),
          resource_uuid: uid('f0'),
          user_message: 'not mine',
          created_at: '2026-01-03T00:00:00.000000',
        },
      ];
      await assert.rejects(client().waitForVolume(uid(9), { target: ['available'] }), (err: unknown) => {
        assert.ok(err instanceof WaitFailedError);
        assert.equal(err.status, 'error');
        assert.equal(err.reason, 'schedule allocate volume:Could not find any available weighted backend.');
        return true;
      });
    });

    it('waitForVolume with gone: true resolves once the volume is 404', async () => {
      assert.equal(await client().waitForVolume(MISSING, { target: [], gone: true }), undefined);
    });
  });

  it('nextMarker reads the marker of the rel=next link only', () => {
    assert.equal(
      nextMarker([{ rel: 'next', href: 'http://h/v3/p/volumes/detail?limit=2&marker=abc' }]),
      'abc',
    );
    assert.equal(nextMarker([{ rel: 'self', href: 'http://h/?marker=abc' }]), undefined);
    assert.equal(nextMarker(undefined), undefined);
  });
});
