/**
 * HTTP core fault cases against a scripted local server on 127.0.0.1 (test/support/fault-server.ts):
 * retries (idempotent vs POST), Retry-After, connection resets, timeouts, redirects, aborts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { HttpClient, type HttpObserver } from '../../../src/openstack/http.ts';
import { AbortedError } from '../../../src/util/abort.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { FaultServer } from '../../support/fault-server.ts';

describe('HttpClient', () => {
  let srv: FaultServer;
  let http: HttpClient;
  const observed: Parameters<NonNullable<HttpObserver['onResponse']>>[0][] = [];

  before(async () => {
    srv = await FaultServer.start();
    http = new HttpClient({
      logger: silentLogger(),
      retries: 3,
      backoffBaseMs: 5,
      backoffMaxMs: 20,
      headersTimeoutMs: 2_000,
      observer: { onResponse: (info) => observed.push(info) },
    });
  });
  after(async () => {
    await http.close();
    await srv.close();
  });

  it('sends JSON, parses JSON, returns the request id and lower-case headers', async () => {
    srv.script('POST', '/echo', {
      status: 202,
      headers: { 'X-OpenStack-Request-Id': 'req-1', 'X-Extra': 'a' },
      body: { ok: true },
    });
    const res = await http.request<{ ok: boolean }>({
      method: 'POST',
      url: `${srv.url}/echo`,
      query: { limit: 2, marker: undefined, all: true },
      body: { volume: { size: 1 } },
      operation: 'test.echo',
    });
    assert.equal(res.status, 202);
    assert.deepEqual(res.body, { ok: true });
    assert.equal(res.requestId, 'req-1');
    assert.equal(res.headers['x-extra'], 'a');
    const rec = srv.requests.at(-1)!;
    assert.equal(rec.url, '/echo?limit=2&all=true');
    assert.deepEqual(rec.json, { volume: { size: 1 } });
    assert.equal(rec.headers['content-type'], 'application/json');
    assert.equal(rec.headers['accept'], 'application/json');
    assert.deepEqual(
      observed.find((o) => o.operation === 'test.echo'),
      { ...observed.find((o) => o.operation === 'test.echo'), method: 'POST', status: 202 },
    );
  });

  it('retries a GET on 503 with Retry-After and honours the delay', async () => {
    srv.script(
      'GET',
      '/r503',
      { status: 503, headers: { 'retry-after': '0.2' }, body: 'busy' },
      { status: 200, body: { v: 1 } },
    );
    const t0 = performance.now();
    const res = await http.request({ method: 'GET', url: `${srv.url}/r503` });
    assert.equal(res.status, 200);
    assert.equal(srv.count('GET', '/r503'), 2);
    assert.ok(performance.now() - t0 >= 190, 'waited for Retry-After');
  });

  it('retries 502/504 for idempotent requests and gives up after `retries`', async () => {
    srv.script('PUT', '/r502', { status: 502, body: 'bad gateway' });
    await assert.rejects(http.request({ method: 'PUT', url: `${srv.url}/r502`, body: {} }), (err) => {
      assert.ok(err instanceof OpenStackError);
      assert.equal(err.status, 502);
      assert.equal(err.retryable, true);
      assert.equal(err.faultMessage, 'bad gateway');
      return true;
    });
    assert.equal(srv.count('PUT', '/r502'), 4);
  });

  it('does not retry a POST on 503', async () => {
    srv.script('POST', '/p503', { status: 503, headers: { 'retry-after': '0' } }, { status: 202 });
    await assert.rejects(http.request({ method: 'POST', url: `${srv.url}/p503`, body: {} }), {
      name: 'OpenStackError',
      status: 503,
    });
    assert.equal(srv.count('POST', '/p503'), 1);
  });

  it('retries a POST on 503 when the caller marks it idempotent', async () => {
    srv.script('POST', '/p503i', { status: 503 }, { status: 200 });
    const res = await http.request({ method: 'POST', url: `${srv.url}/p503i`, body: {}, idempotent: true });
    assert.equal(res.status, 200);
    assert.equal(srv.count('POST', '/p503i'), 2);
  });

  it('retries 429 only when Retry-After is present', async () => {
    srv.script('GET', '/r429', { status: 429, body: { overLimit: { message: 'slow down', code: 429 } } });
    await assert.rejects(http.request({ method: 'GET', url: `${srv.url}/r429` }), { status: 429 });
    assert.equal(srv.count('GET', '/r429'), 1);
    srv.script('GET', '/r429b', { status: 429, headers: { 'retry-after': '0' } }, { status: 200 });
    assert.equal((await http.request({ method: 'GET', url: `${srv.url}/r429b` })).status, 200);
    assert.equal(srv.count('GET', '/r429b'), 2);
  });

  it('caps a long Retry-After', async () => {
    const capped = new HttpClient({ logger: silentLogger(), retryAfterMaxMs: 50 });
    try {
      srv.script('GET', '/cap', { status: 503, headers: { 'retry-after': '3600' } }, { status: 200 });
      const t0 = performance.now();
      await capped.request({ method: 'GET', url: `${srv.url}/cap` });
      assert.ok(performance.now() - t0 < 1000);
    } finally {
      await capped.close();
    }
  });

  it('retries a GET after a connection reset, but not a POST', async () => {
    srv.script('GET', '/reset', { reset: true }, { status: 200, body: { ok: 1 } });
    assert.equal((await http.request({ method: 'GET', url: `${srv.url}/reset` })).status, 200);
    assert.equal(srv.count('GET', '/reset'), 2);

    srv.script('POST', '/reset-post', { reset: true }, { status: 202 });
    await assert.rejects(http.request({ method: 'POST', url: `${srv.url}/reset-post`, body: {} }), (err) => {
      assert.ok(err instanceof OpenStackError);
      assert.equal(err.status, undefined);
      assert.match(err.message, /may have reached the server/);
      return true;
    });
    assert.equal(srv.count('POST', '/reset-post'), 1);
  });

  it('retries a GET when the server closes the connection without answering', async () => {
    srv.script('GET', '/close', { close: true }, { status: 200 });
    assert.equal((await http.request({ method: 'GET', url: `${srv.url}/close` })).status, 200);
    assert.equal(srv.count('GET', '/close'), 2);
  });

  it('retries a POST when the connection was refused (never reached a server)', async () => {
    const dead = await FaultServer.start();
    const url = `${dead.url}/x`;
    await dead.close();
    const client = new HttpClient({ logger: silentLogger(), retries: 2, backoffBaseMs: 1 });
    try {
      await assert.rejects(client.request({ method: 'POST', url, body: {} }), (err) => {
        assert.ok(err instanceof OpenStackError);
        assert.equal(err.code, 'ECONNREFUSED');
        assert.match(err.message, /connection refused \(after 3 attempts\)/);
        return true;
      });
    } finally {
      await client.close();
    }
  });

  it('times out slow response headers with a clear message', async () => {
    const client = new HttpClient({ logger: silentLogger(), headersTimeoutMs: 200, retries: 0 });
    try {
      srv.script('GET', '/slow', { status: 200, delayMs: 1500 });
      const t0 = performance.now();
      await assert.rejects(client.request({ method: 'GET', url: `${srv.url}/slow?token=s3cr3t` }), (err) => {
        assert.ok(err instanceof OpenStackError);
        assert.equal(err.timedOut, true);
        assert.equal(err.retryable, true);
        assert.match(err.message, /^GET http:\/\/127\.0\.0\.1:\d+\/slow: no response headers within 200 ms$/);
        assert.doesNotMatch(err.message, /s3cr3t/);
        return true;
      });
      assert.ok(performance.now() - t0 < 1400, 'did not wait for the slow server');
    } finally {
      await client.close();
    }
  });

  it('enforces a per-call timeoutMs and retries idempotent calls after it', async () => {
    srv.script('GET', '/slow2', { status: 200, delayMs: 800 }, { status: 200, body: { fast: true } });
    const res = await http.request({ method: 'GET', url: `${srv.url}/slow2`, timeoutMs: 150 });
    assert.deepEqual(res.body, { fast: true });
    assert.equal(srv.count('GET', '/slow2'), 2);
  });

  it('times out a stalled body', async () => {
    const client = new HttpClient({ logger: silentLogger(), bodyTimeoutMs: 150, retries: 0 });
    try {
      srv.script('GET', '/stall', { status: 200, body: { big: 'x'.repeat(1000) }, bodyStallMs: 1000 });
      await assert.rejects(
        client.request({ method: 'GET', url: `${srv.url}/stall` }),
        /response body stalled for 150 ms/,
      );
    } finally {
      await client.close();
    }
  });

  it('refuses an oversized response body', async () => {
    const small = new HttpClient({ logger: silentLogger(), maxResponseBytes: 1000 });
    try {
      srv.script('GET', '/huge', { status: 200, body: 'x'.repeat(5000) });
      await assert.rejects(
        small.request({ method: 'GET', url: `${srv.url}/huge` }),
        /response body larger than 1000 bytes/,
      );
      assert.equal(srv.count('GET', '/huge'), 1, 'not retried');
    } finally {
      await small.close();
    }
  });

  it('follows relative and absolute redirects', async () => {
    srv.script('GET', '/old', { redirect: '/new?x=1', status: 301 });
    srv.script('GET', '/new', { status: 200, body: { here: true } });
    const res = await http.request({ method: 'GET', url: `${srv.url}/old` });
    assert.deepEqual(res.body, { here: true });
    assert.equal(res.url, `${srv.url}/new?x=1`);

    srv.script('GET', '/abs', { redirect: `${srv.url}/new`, status: 307 });
    assert.equal((await http.request({ method: 'GET', url: `${srv.url}/abs` })).status, 200);
  });

  it('keeps method and body on 307/308 and switches to GET on 303', async () => {
    srv.script('POST', '/p307', { redirect: '/p307b', status: 307 });
    srv.script('POST', '/p307b', { status: 202 });
    await http.request({ method: 'POST', url: `${srv.url}/p307`, body: { a: 1 } });
    assert.deepEqual(srv.requests.at(-1)!.json, { a: 1 });

    srv.script('POST', '/p303', { redirect: '/p303b', status: 303 });
    srv.script('GET', '/p303b', { status: 200 });
    await http.request({ method: 'POST', url: `${srv.url}/p303`, body: { a: 1 } });
    assert.equal(srv.requests.at(-1)!.method, 'GET');
    assert.equal(srv.requests.at(-1)!.body, '');
  });

  it('bounds a redirect loop', async () => {
    const client = new HttpClient({ logger: silentLogger(), maxRedirects: 3 });
    try {
      srv.script('GET', '/loop', { redirect: '/loop' });
      await assert.rejects(
        client.request({ method: 'GET', url: `${srv.url}/loop` }),
        /too many redirects \(more than 3\)/,
      );
      assert.equal(srv.count('GET', '/loop'), 4);
    } finally {
      await client.close();
    }
  });

  it('drops auth headers on a cross-origin redirect and keeps them on the same origin', async () => {
    const other = await FaultServer.start();
    try {
      other.script('GET', '/target', { status: 200 });
      srv.script('GET', '/xo', { redirect: `${other.url}/target` });
      srv.script('GET', '/same', { redirect: '/same2' });
      srv.script('GET', '/same2', { status: 200 });
      const headers = { 'X-Auth-Token': 'tok-secret', 'X-Other': 'keep' };
      await http.request({ method: 'GET', url: `${srv.url}/xo`, headers });
      const got = other.requests.at(-1)!.headers;
      assert.equal(got['x-auth-token'], undefined);
      assert.equal(got['x-other'], 'keep');
      await http.request({ method: 'GET', url: `${srv.url}/same`, headers });
      assert.equal(srv.requests.at(-1)!.headers['x-auth-token'], 'tok-secret');
    } finally {
      await other.close();
    }
  });

  it('aborts an in-flight request with AbortedError', async () => {
    srv.script('GET', '/hang', { hang: true });
    const ac = new AbortController();
    const p = http.request({ method: 'GET', url: `${srv.url}/hang`, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('deadline')), 100);
    const t0 = performance.now();
    await assert.rejects(p, (err) => {
      assert.ok(err instanceof AbortedError);
      assert.equal(err.message, 'deadline');
      return true;
    });
    assert.ok(performance.now() - t0 < 1000);
  });

  it('aborts a backoff wait', async () => {
    const slowBackoff = new HttpClient({ logger: silentLogger(), retries: 5 });
    try {
      srv.script('GET', '/wait', { status: 503, headers: { 'retry-after': '20' } });
      const ac = new AbortController();
      const t0 = performance.now();
      setTimeout(() => ac.abort(), 150);
      await assert.rejects(
        slowBackoff.request({ method: 'GET', url: `${srv.url}/wait`, signal: ac.signal }),
        AbortedError,
      );
      assert.ok(performance.now() - t0 < 2000, 'stopped waiting at the abort');
      assert.equal(srv.count('GET', '/wait'), 1);
    } finally {
      await slowBackoff.close();
    }
  });

  it('does not even send a request whose signal is already aborted', async () => {
    const before = srv.requests.length;
    await assert.rejects(
      http.request({ method: 'GET', url: `${srv.url}/new`, signal: AbortSignal.abort() }),
      AbortedError,
    );
    assert.equal(srv.requests.length, before);
  });

  it('returns 3xx without Location (Cinder GET / is 300) as a response', async () => {
    srv.script('GET', '/', { status: 300, body: { versions: [] } });
    const res = await http.request({ method: 'GET', url: `${srv.url}/` });
    assert.equal(res.status, 300);
    assert.deepEqual(res.body, { versions: [] });
  });

  it('parses fault bodies into OpenStackError', async () => {
    srv.script('GET', '/nf', {
      status: 404,
      headers: { 'x-openstack-request-id': 'req-nf' },
      body: { itemNotFound: { message: 'Volume abc could not be found.', code: 404 } },
    });
    await assert.rejects(http.request({ method: 'GET', url: `${srv.url}/nf` }), (err) => {
      assert.ok(err instanceof OpenStackError);
      assert.equal(err.notFound, true);
      assert.equal(err.faultMessage, 'Volume abc could not be found.');
      assert.equal(err.requestId, 'req-nf');
      assert.equal(
        err.message,
        `GET ${srv.url}/nf -> HTTP 404: Volume abc could not be found. (request id req-nf)`,
      );
      return true;
    });
  });

  it('keeps connections alive between requests', async () => {
    srv.script('GET', '/ka', { status: 200 });
    const fresh = new HttpClient({ logger: silentLogger() });
    try {
      for (let i = 0; i < 5; i++) await fresh.request({ method: 'GET', url: `${srv.url}/ka` });
    } finally {
      await fresh.close();
    }
    const ports = new Set(srv.requests.filter((r) => r.path === '/ka').map((r) => r.remotePort));
    // undici may open a second connection while the first is being released; never one per request
    assert.ok(ports.size <= 2, `five sequential requests over pooled connections (${ports.size} used)`);
  });
});
