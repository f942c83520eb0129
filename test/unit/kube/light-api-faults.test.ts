/**
 * Failure paths of the driver's own Kubernetes client (src/kube/light-api.ts) that a real
 * kube-apiserver does not produce on demand: malformed answers, oversized answers and watch events,
 * HTTP 410 on a watch request, a server that never answers. A DOUBLE: a scripted HTTP server on
 * 127.0.0.1 (plain HTTP, reached through a kubeconfig with a bearer token); the real API server's
 * answers, its 410 Gone for a compacted version included, are tested in
 * test/integration/kube/light-api.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Node } from '@kubernetes/client-node';
import { KubeApiError } from '../../../src/kube/kube-api.ts';
import type { KubeApi } from '../../../src/kube/kube-types.ts';
import { LIMITS, lightKubeApi } from '../../../src/kube/light-api.ts';
import { WatchCache, WatchGoneError } from '../../../src/kube/watch-cache.ts';
import { silentLogger } from '../../../src/util/logger.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const TOKEN = 'double-secret-token';
let handler: Handler = (_req, res) => res.writeHead(500).end();
const seen: { path: string; auth: string | undefined }[] = [];
let server: Server;
let dir: string;
let api: KubeApi;

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
const node = (name: string, rv = '5') => ({ metadata: { name, resourceVersion: rv } });
const isBad = (err: unknown) => err instanceof KubeApiError && err.reason === 'BadResponse';
const isTooLarge = (err: unknown) => err instanceof KubeApiError && err.reason === 'TooLarge';
const signal = () => AbortSignal.timeout(10_000);

describe("the driver's own Kubernetes client: faults of a scripted API server (double)", () => {
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization });
      handler(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    dir = mkdtempSync(join(tmpdir(), 'kube-light-faults-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{ name: c, cluster: { server: "http://127.0.0.1:${port}" } }]`,
        `users: [{ name: u, user: { token: ${TOKEN} } }]`,
        'contexts: [{ name: x, context: { cluster: c, user: u } }]',
        'current-context: x',
      ].join('\n'),
    );
    const light = await lightKubeApi({ kubeconfig, requestTimeoutMs: 500, watchTimeoutSeconds: 1 });
    assert.ok(light);
    api = light;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists follow continue tokens with the bearer token; malformed lists are BadResponse', async () => {
    handler = (req, res) =>
      req.url?.includes('continue=next')
        ? json(res, 200, { metadata: { resourceVersion: '7' }, items: [node('b')] })
        : json(res, 200, { metadata: { continue: 'next' }, items: [node('a')] });
    const res = await api.nodes.list(signal());
    assert.deepEqual(
      res.items.map((n) => n.metadata?.name),
      ['a', 'b'],
    );
    assert.equal(res.resourceVersion, '7');
    assert.equal(seen.at(-1)?.auth, `Bearer ${TOKEN}`);
    for (const body of [
      [node('a')], // an array, not a list
      { items: 'x' },
      { items: [{ name: 'no-metadata' }] },
      { items: [{ metadata: { name: 5 } }] },
      { items: [], metadata: { continue: 7 } },
      'text',
    ]) {
      handler = (_req, res) => json(res, 200, body);
      await assert.rejects(api.listPersistentVolumes({ signal: signal() }), isBad, JSON.stringify(body));
    }
    handler = (_req, res) => res.writeHead(200).end('{not json');
    await assert.rejects(api.listVolumeAttachments({ signal: signal() }), isBad);
  });

  it('a list that never ends (always a continue token) stops after LIMITS.maxPages', async () => {
    const saved = LIMITS.maxPages;
    LIMITS.maxPages = 3;
    let pages = 0;
    handler = (_req, res) => {
      pages++;
      json(res, 200, { metadata: { continue: 'again' }, items: [] });
    };
    try {
      await assert.rejects(api.nodes.list(signal()), isBad);
      assert.equal(pages, 3);
    } finally {
      LIMITS.maxPages = saved;
    }
  });

  it('oversized answers are refused (TooLarge), the reading stops there', async () => {
    const saved = { ...LIMITS };
    LIMITS.pageBytes = 10_000;
    LIMITS.objectBytes = 10_000;
    try {
      handler = (_req, res) => json(res, 200, { items: [{ metadata: { name: 'x'.repeat(20_000) } }] });
      await assert.rejects(api.nodes.list(signal()), isTooLarge);
      handler = (_req, res) =>
        json(res, 200, { metadata: { name: 'n', annotations: { a: 'x'.repeat(20_000) } } });
      await assert.rejects(api.getNode('n'), isTooLarge);
      // an error answer too is read only up to the bound
      handler = (_req, res) => json(res, 500, { message: 'x'.repeat(20_000) });
      await assert.rejects(api.getNode('n'), isTooLarge);
    } finally {
      Object.assign(LIMITS, saved);
    }
  });

  it('getNode: 404 is undefined, a non-object is BadResponse, a Status error keeps a short message', async () => {
    handler = (_req, res) => json(res, 404, { kind: 'Status', reason: 'NotFound', code: 404 });
    assert.equal(await api.getNode('missing'), undefined);
    handler = (_req, res) => json(res, 200, [1, 2]);
    await assert.rejects(api.getNode('n'), isBad);
    handler = (_req, res) => json(res, 403, { reason: 'Forbidden', message: 'no' });
    await assert.rejects(api.getNode('n'), (err: unknown) => {
      assert.ok(err instanceof KubeApiError);
      assert.equal(err.status, 403);
      assert.match(err.message, /^get node n: HTTP 403 Forbidden: no$/);
      assert.doesNotMatch(err.message, new RegExp(TOKEN));
      return true;
    });
  });

  it('a server that never answers: the request times out (requestTimeoutMs)', async () => {
    handler = () => undefined; // holds the request
    await assert.rejects(api.getNode('slow'), (err: unknown) => (err as KubeApiError).reason === 'Timeout');
  });

  it('watch: HTTP 410 and an ERROR event with code 410 are WatchGoneError; other ERRORs carry their code', async () => {
    handler = (_req, res) => json(res, 410, { kind: 'Status', reason: 'Gone', code: 410 });
    await assert.rejects(
      api.nodes.watch('3', () => undefined, signal()),
      (e) => e instanceof WatchGoneError,
    );
    handler = (_req, res) =>
      res
        .writeHead(200)
        .end(`${JSON.stringify({ type: 'ERROR', object: { code: 410, reason: 'Expired' } })}\n`);
    await assert.rejects(
      api.volumeAttachments.watch('3', () => undefined, signal()),
      (e) => e instanceof WatchGoneError,
    );
    handler = (_req, res) =>
      res
        .writeHead(200)
        .end(`${JSON.stringify({ type: 'ERROR', object: { code: 500, message: 'etcd' } })}\n`);
    await assert.rejects(
      api.nodes.watch('3', () => undefined, signal()),
      (e: unknown) => e instanceof KubeApiError && e.status === 500,
    );
  });

  it('watch: events split across chunks, bookmarks, unknown types skipped; malformed or oversized events end it', async () => {
    const events: unknown[] = [];
    handler = (_req, res) => {
      const text = [
        JSON.stringify({ type: 'ADDED', object: node('a', '8') }),
        JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } }),
        JSON.stringify({ type: 'SOMETHING-NEW', object: {} }),
        JSON.stringify({ type: 'DELETED', object: node('a', '10') }),
        '',
      ].join('\n');
      res.writeHead(200);
      res.write(text.slice(0, 17));
      setTimeout(() => res.end(text.slice(17)), 20);
    };
    await api.nodes.watch('7', (e) => events.push(e), signal());
    assert.deepEqual(events, [
      { type: 'ADDED', object: node('a', '8') },
      { type: 'BOOKMARK', resourceVersion: '9' },
      { type: 'DELETED', object: node('a', '10') },
    ]);
    assert.match(seen.at(-1)?.path ?? '', /watch=1.*resourceVersion=7/);
    for (const line of ['{"type":"ADDED"}', '{"type":"ADDED","object":{"spec":{}}}', 'not json']) {
      handler = (_req, res) => res.writeHead(200).end(`${line}\n`);
      await assert.rejects(
        api.nodes.watch('7', () => undefined, signal()),
        isBad,
        line,
      );
    }
    const saved = LIMITS.eventBytes;
    LIMITS.eventBytes = 1000;
    try {
      handler = (_req, res) => {
        res.writeHead(200);
        res.write(JSON.stringify({ type: 'ADDED', object: node('x'.repeat(600)) }).slice(0, 600));
        res.write('y'.repeat(600)); // no newline yet: the pending line alone is over the bound
      };
      await assert.rejects(
        api.nodes.watch('7', () => undefined, signal()),
        isTooLarge,
      );
    } finally {
      LIMITS.eventBytes = saved;
    }
  });

  it("watch: the caller's abort ends a stream that stays silent", async () => {
    handler = (_req, res) => res.writeHead(200).write('');
    const abort = new AbortController();
    const watching = api.nodes.watch('7', () => undefined, abort.signal);
    setTimeout(() => abort.abort(new Error('stop')), 100);
    await assert.rejects(watching, /stop|abort/i);
  });

  it('a WatchCache over this client re-lists after a 410 on its watch', async () => {
    let lists = 0;
    handler = (req, res) => {
      if (!req.url?.includes('watch=1')) {
        lists++;
        json(res, 200, { metadata: { resourceVersion: String(10 * lists) }, items: [node(`n${lists}`)] });
      } else json(res, 410, { kind: 'Status', reason: 'Gone', code: 410 });
    };
    const cache = new WatchCache<V1Node, string>({
      name: 'nodes',
      source: api.nodes,
      keyOf: (n) => n.metadata?.name,
      project: (n) => n.metadata?.resourceVersion ?? '',
      logger: silentLogger(),
      backoffInitialMs: 10,
    });
    cache.start();
    try {
      const deadline = Date.now() + 10_000;
      while (cache.stats.gone < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(cache.stats.gone >= 2, 'two 410s seen');
      assert.ok(cache.stats.lists >= 2, 're-listed after each');
      assert.ok(cache.has(`n${lists}`) || cache.has(`n${lists - 1}`), 'the store holds the latest listing');
    } finally {
      await cache.stop();
    }
  });
});
