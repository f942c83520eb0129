import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../../src/csi/errors.ts';
import { createIdentityService } from '../../../src/csi/identity.ts';
import type { ControllerService } from '../../../src/csi/services.ts';
import { loadCsiRoot, loadCsiServices } from '../../../src/grpc/proto.ts';
import { CsiRedactor } from '../../../src/grpc/redact.ts';
import { CsiServer } from '../../../src/grpc/server.ts';
import {
  createMetrics,
  type Metrics,
  parseListenAddress,
  startMetricsServer,
} from '../../../src/metrics/index.ts';
import { sleep } from '../../../src/util/abort.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { csiClient } from '../../support/csi-client.ts';

/** Parsed Prometheus text exposition: sample name + sorted labels → value. */
type Samples = Map<string, number>;

function parseExposition(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed exposition line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}=${v}`)
      .sort();
    out.set(
      key(m[1]!, Object.fromEntries(labels.map((l) => l.split('=') as [string, string]))),
      Number(m[3]),
    );
  }
  return out;
}

function key(name: string, labels: Record<string, string> = {}): string {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');
  return `${name}{${l}}`;
}

function sample(s: Samples, name: string, labels: Record<string, string> = {}): number | undefined {
  return s.get(key(name, labels));
}

async function scrape(
  port: number,
  path = '/metrics',
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

const healthy = async () => ({ ok: true });

describe('instruments', () => {
  test('every instrument appears with its documented name, labels and values', async () => {
    const m = createMetrics({ defaultMetrics: false, version: '1.2.3' });
    m.observeRpc('CreateVolume', 'OK', 0.2);
    m.observeRpc('CreateVolume', 'OK', 0.4);
    m.observeRpc('CreateVolume', 'RESOURCE_EXHAUSTED', 0.01);
    m.rpcInFlight.inc('ControllerPublishVolume');
    m.rpcInFlight.inc('ControllerPublishVolume');
    m.rpcInFlight.dec('ControllerPublishVolume');
    m.observeOpenStack({
      service: 'block-storage',
      operation: 'cinder.volume.create',
      method: 'POST',
      status: 202,
      durationMs: 250,
    });
    m.observeOpenStack({
      service: 'identity',
      operation: 'keystone.token',
      method: 'POST',
      status: 'error',
      durationMs: 10,
    });
    m.observeOpenStack({
      operation: 'cinder.attachment.delete',
      method: 'DELETE',
      status: 404,
      durationMs: 5,
    });
    m.observeNodeOp('stage', 3.5, true);
    m.observeNodeOp('attach', 1.25, false);
    m.tokenRefresh(true);
    m.tokenRefresh(true);
    m.tokenRefresh(false);
    m.reconciler('detached');

    const s = parseExposition(await m.registry.metrics());
    assert.equal(sample(s, 'cinder_csi_rpc_requests_total', { method: 'CreateVolume', code: 'OK' }), 2);
    assert.equal(
      sample(s, 'cinder_csi_rpc_requests_total', { method: 'CreateVolume', code: 'RESOURCE_EXHAUSTED' }),
      1,
    );
    assert.equal(
      sample(s, 'cinder_csi_rpc_duration_seconds_count', { method: 'CreateVolume', code: 'OK' }),
      2,
    );
    assert.ok(
      Math.abs(
        sample(s, 'cinder_csi_rpc_duration_seconds_sum', { method: 'CreateVolume', code: 'OK' })! - 0.6,
      ) < 1e-9,
    );
    assert.equal(
      sample(s, 'cinder_csi_rpc_duration_seconds_bucket', { method: 'CreateVolume', code: 'OK', le: '0.25' }),
      1,
    );
    assert.equal(sample(s, 'cinder_csi_inflight_operations', { method: 'ControllerPublishVolume' }), 1);

    const create = { service: 'block-storage', operation: 'cinder.volume.create' };
    assert.equal(sample(s, 'cinder_csi_openstack_requests_total', { ...create, status: '202' }), 1);
    assert.equal(
      sample(s, 'cinder_csi_openstack_request_duration_seconds_sum', create),
      0.25,
      'ms → seconds',
    );
    assert.equal(
      sample(s, 'cinder_csi_openstack_requests_total', {
        service: 'identity',
        operation: 'keystone.token',
        status: 'error',
      }),
      1,
    );
    assert.equal(
      sample(s, 'cinder_csi_openstack_requests_total', {
        service: 'unknown',
        operation: 'cinder.attachment.delete',
        status: '404',
      }),
      1,
      'a call without a service type is labelled unknown, not dropped',
    );
    assert.equal(
      sample(s, 'cinder_csi_node_operation_duration_seconds_count', { op: 'stage', result: 'success' }),
      1,
    );
    assert.equal(
      sample(s, 'cinder_csi_node_operation_duration_seconds_sum', { op: 'attach', result: 'failure' }),
      1.25,
    );
    assert.equal(sample(s, 'cinder_csi_token_refreshes_total', { result: 'success' }), 2);
    assert.equal(sample(s, 'cinder_csi_token_refreshes_total', { result: 'failure' }), 1);
    assert.equal(sample(s, 'cinder_csi_reconciler_actions_total', { action: 'detached' }), 1);
    assert.equal(sample(s, 'cinder_csi_build_info', { version: '1.2.3' }), 1);
  });

  test('each instance has its own registry: no shared counts, no duplicate-registration errors', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.tokenRefresh(true);
    const sa = parseExposition(await a.registry.metrics());
    const sb = parseExposition(await b.registry.metrics());
    assert.equal(sample(sa, 'cinder_csi_token_refreshes_total', { result: 'success' }), 1);
    assert.equal(sample(sb, 'cinder_csi_token_refreshes_total', { result: 'success' }), undefined);
    assert.notEqual(a.registry, b.registry);
  });

  test('prefix option renames every metric; default process metrics carry the prefix too', async () => {
    const m = createMetrics({ prefix: 'test_csi_' });
    m.reconciler('event');
    const text = await m.registry.metrics();
    assert.match(text, /^test_csi_reconciler_actions_total\{action="event"\} 1$/m);
    assert.match(text, /^test_csi_process_cpu_user_seconds_total /m);
    assert.doesNotMatch(text, /^cinder_csi_/m);
  });
});

describe('metrics server', () => {
  test('GET /metrics serves the Prometheus text format; /healthz reflects the health check', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.observeRpc('NodeStageVolume', 'OK', 1);
    let health = { ok: true, detail: 'ready' };
    const srv = await startMetricsServer({
      address: '127.0.0.1:0',
      metrics: m,
      health: async () => health,
      logger: silentLogger(),
    });
    try {
      const res = await scrape(srv.port);
      assert.equal(res.status, 200);
      assert.match(res.type, /^text\/plain; version=0\.0\.4/);
      assert.match(res.body, /^# TYPE cinder_csi_rpc_requests_total counter$/m);
      assert.match(res.body, /^# HELP cinder_csi_rpc_duration_seconds /m);
      assert.equal(
        sample(parseExposition(res.body), 'cinder_csi_rpc_requests_total', {
          method: 'NodeStageVolume',
          code: 'OK',
        }),
        1,
      );

      assert.deepEqual(await scrape(srv.port, '/healthz'), {
        status: 200,
        type: 'text/plain; charset=utf-8',
        body: 'ready\n',
      });
      health = { ok: false, detail: 'cinder unreachable: connect ECONNREFUSED' };
      const down = await scrape(srv.port, '/healthz');
      assert.equal(down.status, 503);
      assert.equal(down.body, 'cinder unreachable: connect ECONNREFUSED\n');

      assert.equal((await scrape(srv.port, '/nope')).status, 404);
      const post = await fetch(`http://127.0.0.1:${srv.port}/metrics`, { method: 'POST', body: 'x' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
      await post.body?.cancel();
    } finally {
      await srv.close();
    }
    await assert.rejects(scrape(srv.port), 'closed server no longer answers');
  });

  test('/healthz is 503 when the check throws or does not answer in time', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let mode: 'throw' | 'hang' = 'throw';
    const srv = await startMetricsServer({
      address: '127.0.0.1:0',
      metrics: m,
      health: () =>
        mode === 'throw' ? Promise.reject(new Error('kube API watch broken')) : new Promise(() => undefined),
      logger: silentLogger(),
      healthTimeoutMs: 100,
    });
    try {
      const thrown = await scrape(srv.port, '/healthz');
      assert.equal(thrown.status, 503);
      assert.equal(thrown.body, 'kube API watch broken\n');
      mode = 'hang';
      const hung = await scrape(srv.port, '/healthz');
      assert.equal(hung.status, 503);
      assert.match(hung.body, /did not answer within 100 ms/);
    } finally {
      await srv.close();
    }
  });

  test('a port already in use is reported at start, not later', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const first = await startMetricsServer({
      address: '127.0.0.1:0',
      metrics: m,
      health: healthy,
      logger: silentLogger(),
    });
    try {
      await assert.rejects(
        startMetricsServer({
          address: `127.0.0.1:${first.port}`,
          metrics: m,
          health: healthy,
          logger: silentLogger(),
        }),
        /EADDRINUSE/,
      );
    } finally {
      await first.close();
    }
  });

  test("serving and scraping never loads Node's internal undici (node:http's ESM facade does)", () => {
    // A fresh process (this one has loaded fetch already): the server started and scraped over a
    // plain `require('node:http')` client; `import 'node:http'` would load internal/deps/undici.
    const server = new URL('../../../src/metrics/index.ts', import.meta.url).href;
    const script = `
      const http = require('node:http');
      const logger = { child: () => logger, info() {}, warn() {}, error() {} };
      import(${JSON.stringify(server)}).then(async (m) => {
        const srv = await m.startMetricsServer({
          address: '127.0.0.1:0', metrics: m.createMetrics(), logger, health: async () => ({ ok: true }),
        });
        const body = await new Promise((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: srv.port, path: '/metrics' }, (res) => {
            let b = '';
            res.on('data', (d) => { b += d; }).on('end', () => resolve(b));
          }).on('error', reject);
        });
        await srv.close();
        const loaded = process.moduleLoadList.filter((x) => /undici|webstreams/.test(x));
        process.stdout.write(JSON.stringify({ scraped: body.includes('cinder_csi_rpc_requests_total'), loaded }));
      });`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.deepEqual(JSON.parse(out), { scraped: true, loaded: [] });
  });

  test('listen addresses: all interfaces, IPv4, bracketed IPv6; malformed ones rejected', () => {
    assert.deepEqual(parseListenAddress(':9808'), { host: undefined, port: 9808 });
    assert.deepEqual(parseListenAddress('127.0.0.1:9808'), { host: '127.0.0.1', port: 9808 });
    assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListenAddress('localhost:8080'), { host: 'localhost', port: 8080 });
    for (const bad of ['9808', '::1:9808', 'host:', 'host:70000', 'http://x:1']) {
      assert.throws(() => parseListenAddress(bad), /expected \[host\]:port/, bad);
    }
  });
});

describe('scraped after real RPCs through the gRPC server', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'csi-metrics-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // The gRPC layer labels RPCs 'Service/Method' (e.g. 'Controller/CreateVolume').
  test('per-RPC counts, codes, latency and in-flight gauge', async () => {
    const metrics: Metrics = createMetrics({ defaultMetrics: false });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const controller: ControllerService = {
      async CreateVolume() {
        throw new CsiError(status.RESOURCE_EXHAUSTED, 'VolumeLimitExceeded: quota of 10 volumes reached');
      },
      async DeleteVolume() {
        await gate;
        return {};
      },
    } as unknown as ControllerService;
    const sock = join(dir, 'csi.sock');
    const server = new CsiServer({
      endpoint: `unix://${sock}`,
      logger: silentLogger(),
      identity: createIdentityService({
        driverName: 'cinder.csi.dev',
        version: '1.2.3',
        commit: undefined,
        readiness: async () => ({ ready: true }),
      }),
      controller,
      redactor: new CsiRedactor(loadCsiRoot()),
      definitions: loadCsiServices(),
      observer: metrics,
    });
    await server.start();
    const http = await startMetricsServer({
      address: '127.0.0.1:0',
      metrics,
      health: healthy,
      logger: silentLogger(),
    });
    const client = csiClient(`unix://${sock}`);
    try {
      await client.call('Identity', 'GetPluginInfo');
      await client.call('Identity', 'GetPluginInfo');
      await client.call('Identity', 'Probe');
      await assert.rejects(
        client.call('Controller', 'CreateVolume', { name: 'pvc-1', volume_capabilities: [] }),
        (err: { code: number }) => err.code === status.RESOURCE_EXHAUSTED,
      );
      const pending = client.call('Controller', 'DeleteVolume', { volume_id: 'v-1' });
      // While DeleteVolume waits, the in-flight gauge shows it.
      let during: Samples = new Map();
      for (let i = 0; i < 50; i++) {
        during = parseExposition((await scrape(http.port)).body);
        if (sample(during, 'cinder_csi_inflight_operations', { method: 'Controller/DeleteVolume' }) === 1)
          break;
        await sleep(20);
      }
      assert.equal(
        sample(during, 'cinder_csi_inflight_operations', { method: 'Controller/DeleteVolume' }),
        1,
      );
      release();
      await pending;

      const s = parseExposition((await scrape(http.port)).body);
      assert.equal(
        sample(s, 'cinder_csi_rpc_requests_total', { method: 'Identity/GetPluginInfo', code: 'OK' }),
        2,
      );
      assert.equal(sample(s, 'cinder_csi_rpc_requests_total', { method: 'Identity/Probe', code: 'OK' }), 1);
      assert.equal(
        sample(s, 'cinder_csi_rpc_requests_total', {
          method: 'Controller/CreateVolume',
          code: 'RESOURCE_EXHAUSTED',
        }),
        1,
      );
      assert.equal(
        sample(s, 'cinder_csi_rpc_requests_total', { method: 'Controller/DeleteVolume', code: 'OK' }),
        1,
      );
      assert.equal(
        sample(s, 'cinder_csi_rpc_duration_seconds_count', { method: 'Controller/DeleteVolume', code: 'OK' }),
        1,
      );
      assert.ok(
        sample(s, 'cinder_csi_rpc_duration_seconds_sum', { method: 'Controller/DeleteVolume', code: 'OK' })! >
          0,
        'the latency of a call that waited is recorded',
      );
      assert.equal(sample(s, 'cinder_csi_inflight_operations', { method: 'Controller/DeleteVolume' }), 0);
    } finally {
      client.close();
      await http.close();
      await server.stop(1000);
    }
  });
});
