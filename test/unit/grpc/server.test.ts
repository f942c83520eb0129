import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CSI_PROTO_PATH } from '../../../scripts/gen-proto-json.ts';
import { CsiError, notFound } from '../../../src/csi/errors.ts';
import { createIdentityService } from '../../../src/csi/identity.ts';
import type { ControllerService, NodeService } from '../../../src/csi/services.ts';
import { loadCsiRoot, loadCsiServices } from '../../../src/grpc/proto.ts';
import { CsiRedactor } from '../../../src/grpc/redact.ts';
import { CsiServer } from '../../../src/grpc/server.ts';
import { sleep } from '../../../src/util/abort.ts';
import { createLogger, silentLogger } from '../../../src/util/logger.ts';
import { csiClient, LogCapture } from '../../support/csi-client.ts';

const defs = loadCsiServices();
const redactor = new CsiRedactor(loadCsiRoot());
const identity = createIdentityService({
  driverName: 'cinder.csi.dev',
  version: '1.2.3',
  commit: 'abc123',
  readiness: async () => ({ ready: true }),
});

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'csi-grpc-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function server(opts: {
  endpoint: string;
  controller?: ControllerService;
  node?: NodeService;
  log?: LogCapture;
}) {
  return new CsiServer({
    endpoint: opts.endpoint,
    logger: opts.log ? createLogger({ level: 'debug', destination: opts.log }) : silentLogger(),
    identity,
    controller: opts.controller,
    node: opts.node,
    redactor,
    definitions: defs,
  });
}

describe('unix socket', () => {
  test('Identity answers over a real unix socket; the socket is mode 0600', async () => {
    const sock = join(dir, 'sub', 'dir', 'csi.sock');
    const s = server({ endpoint: `unix://${sock}` });
    await s.start();
    const c = csiClient(`unix://${sock}`);
    try {
      assert.equal(statSync(sock).mode & 0o777, 0o600);
      const info = await c.call('Identity', 'GetPluginInfo');
      assert.deepEqual(info, {
        name: 'cinder.csi.dev',
        vendor_version: '1.2.3',
        manifest: { commit: 'abc123' },
      });
      const probe = await c.call('Identity', 'Probe');
      assert.deepEqual(probe, { ready: { value: true } });
    } finally {
      c.close();
      await s.stop();
    }
    assert.throws(() => statSync(sock), /ENOENT/, 'stop removes the socket');
  });

  test('a stale socket left by a killed process is replaced', async () => {
    const sock = join(dir, 'stale.sock');
    // A process that binds the socket and dies without cleaning up leaves the file behind.
    try {
      execFileSync(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ]);
    } catch {
      // killed by its own SIGKILL, as intended
    }
    assert.ok(statSync(sock).isSocket());
    const s = server({ endpoint: `unix://${sock}` });
    await s.start();
    const c = csiClient(`unix://${sock}`);
    try {
      assert.equal((await c.call<{ name: string }>('Identity', 'GetPluginInfo')).name, 'cinder.csi.dev');
    } finally {
      c.close();
      await s.stop();
    }
  });

  test('refuses to replace a regular file at the socket path', async () => {
    const path = join(dir, 'not-a-socket');
    writeFileSync(path, 'data');
    const s = server({ endpoint: `unix://${path}` });
    await assert.rejects(s.start(), /exists and is not a socket/);
    assert.equal(readFileSync(path, 'utf8'), 'data');
  });

  test('graceful stop lets an in-flight call finish, then refuses new ones', async () => {
    const sock = join(dir, 'drain.sock');
    let finished = false;
    const controller: ControllerService = {
      async CreateVolume(req) {
        await sleep(300);
        finished = true;
        return { volume: { volume_id: `v-${req.name}`, capacity_bytes: '1073741824' } };
      },
    };
    const s = server({ endpoint: `unix://${sock}`, controller });
    await s.start();
    const c = csiClient(`unix://${sock}`);
    try {
      const inflight = c.call<{ volume: { volume_id: string; capacity_bytes: string } }>(
        'Controller',
        'CreateVolume',
        {
          name: 'a',
        },
      );
      await sleep(100);
      assert.equal(s.inFlight, 1);
      const stopped = s.stop(5000);
      const res = await inflight;
      assert.equal(res.volume.volume_id, 'v-a');
      assert.equal(res.volume.capacity_bytes, '1073741824');
      await stopped;
      assert.ok(finished);
      const c2 = csiClient(`unix://${sock}`);
      await assert.rejects(
        c2.call('Identity', 'Probe', {}, 1000),
        (e: { code: number }) => e.code !== status.OK,
      );
      c2.close();
    } finally {
      c.close();
    }
  });

  test('calls still running after the grace period are cancelled', async () => {
    const sock = join(dir, 'grace.sock');
    let sawAbort = false;
    const controller: ControllerService = {
      async CreateVolume(_req, ctx) {
        await sleep(10_000, ctx.signal).catch((e) => {
          sawAbort = true;
          throw e;
        });
        return {};
      },
    };
    const s = server({ endpoint: `unix://${sock}`, controller });
    await s.start();
    const c = csiClient(`unix://${sock}`);
    try {
      const inflight = c
        .call('Controller', 'CreateVolume', { name: 'slow' })
        .catch((e: { code: number }) => e);
      await sleep(100);
      const t0 = Date.now();
      await s.stop(200);
      assert.ok(Date.now() - t0 < 2000, 'stop is bounded by the grace period');
      const res = (await inflight) as { code: number };
      assert.notEqual(res.code, status.OK);
      assert.ok(sawAbort, 'the handler saw its signal fire');
    } finally {
      c.close();
    }
  });
});

describe('RPC wrapper', () => {
  let s: CsiServer;
  let c: ReturnType<typeof csiClient>;
  const log = new LogCapture();
  const node: NodeService = {
    async NodeGetInfo() {
      throw new Error('boom: /etc/secret/path at Object.<anonymous> (file.ts:1:1)');
    },
    async NodeGetCapabilities() {
      throw notFound('volume vol-1 not found');
    },
    async NodeStageVolume() {
      return {};
    },
    async NodeExpandVolume(_req, ctx) {
      await sleep(5000, ctx.signal);
      return {};
    },
  };
  before(async () => {
    s = server({ endpoint: 'tcp://127.0.0.1:0', node, log });
    await s.start();
    c = csiClient(`127.0.0.1:${s.port}`);
  });
  after(async () => {
    c.close();
    await s.stop();
  });

  test('every RPC without an implementation answers UNIMPLEMENTED', async () => {
    const methods = [
      ...Object.keys(defs.Controller).map((m) => ['Controller', m] as const),
      ...Object.keys(defs.GroupController).map((m) => ['GroupController', m] as const),
      ...Object.keys(defs.Node)
        .filter((m) => !(m in node))
        .map((m) => ['Node', m] as const),
    ];
    assert.ok(methods.length >= 20);
    for (const [svc, m] of methods) {
      await assert.rejects(c.call(svc, m), (e: { code: number; details: string }) => {
        assert.equal(e.code, status.UNIMPLEMENTED, `${svc}.${m}`);
        assert.match(e.details, new RegExp(`${m} is not implemented`));
        return true;
      });
    }
  });

  test('an unknown method answers UNIMPLEMENTED', async () => {
    const { Client, credentials } = await import('@grpc/grpc-js');
    const raw = new Client(`127.0.0.1:${s.port}`, credentials.createInsecure());
    const err = await new Promise<{ code: number }>((resolve) => {
      raw.makeUnaryRequest(
        '/csi.v1.Identity/NoSuchMethod',
        (x: Buffer) => x,
        (x: Buffer) => x,
        Buffer.alloc(0),
        (e) => resolve(e as { code: number }),
      );
    });
    raw.close();
    assert.equal(err.code, status.UNIMPLEMENTED);
  });

  test('an unexpected error becomes INTERNAL with a request id, no stack or detail leaks', async () => {
    await assert.rejects(c.call('Node', 'NodeGetInfo'), (e: { code: number; details: string }) => {
      assert.equal(e.code, status.INTERNAL);
      assert.match(e.details, /^internal error \(request id [0-9a-f-]{36}\); see the driver's log$/);
      assert.doesNotMatch(e.details, /boom|secret|file\.ts/);
      return true;
    });
    const rec = log
      .records()
      .find((r) => r['method'] === 'Node/NodeGetInfo' && r['msg'] === 'unexpected failure');
    assert.ok(rec, 'logged with the error for the operator');
  });

  test('a CsiError keeps its code and message', async () => {
    await assert.rejects(c.call('Node', 'NodeGetCapabilities'), (e: { code: number; details: string }) => {
      assert.equal(e.code, status.NOT_FOUND);
      assert.equal(e.details, 'volume vol-1 not found');
      return true;
    });
  });

  test('the caller deadline aborts the handler and answers DEADLINE_EXCEEDED', async () => {
    const t0 = Date.now();
    await assert.rejects(
      c.call('Node', 'NodeExpandVolume', { volume_id: 'v' }, 300),
      (e: { code: number }) => {
        assert.equal(e.code, status.DEADLINE_EXCEEDED);
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 2000);
  });

  test('each call logs one line with method, request id, code and duration', async () => {
    await c.call('Node', 'NodeStageVolume', { volume_id: 'v-log', staging_target_path: '/x' });
    const rpc = log.records().filter((r) => r['msg'] === 'rpc' && r['method'] === 'Node/NodeStageVolume');
    assert.equal(rpc.length, 1);
    assert.equal(rpc[0]!['code'], 'OK');
    assert.equal(typeof rpc[0]!['durationMs'], 'number');
    assert.match(String(rpc[0]!['requestId']), /^[0-9a-f-]{36}$/);
  });

  test('debug request logs redact every csi_secret field', async () => {
    const planted = ['planted-create-secret-9f2', 'planted-chap-77a', 'planted-keyring-31c'];
    await c
      .call('Controller', 'CreateVolume', {
        name: 'pvc-redact',
        parameters: { type: 'fake' },
        secrets: { 'os-password': planted[0] },
      })
      .catch(() => undefined);
    await c.call('Node', 'NodeStageVolume', {
      volume_id: 'vol-redact',
      staging_target_path: '/var/lib/kubelet/x',
      secrets: { chap: planted[1], keyring: planted[2] },
      volume_context: { note: 'visible-context-value' },
    });
    const text = log.text;
    for (const p of planted) assert.ok(!text.includes(p), `secret ${p} leaked into logs`);
    assert.ok(text.includes('pvc-redact'), 'the request itself was logged');
    assert.ok(text.includes('visible-context-value'), 'non-secret fields stay visible');
    assert.ok(text.includes('"chap":"[REDACTED]"'), 'secret keys stay, values are replaced');
  });
});

test('redaction is driven by the csi_secret option of every field in csi.proto', () => {
  const root = loadCsiRoot();
  const proto = readFileSync(CSI_PROTO_PATH, 'utf8');
  const declared = (proto.match(/\(csi_secret\) = true/g) ?? []).length;
  let found = 0;
  root.nestedArray.length; // root loaded
  const walk = (ns: { nestedArray?: unknown[] }) => {
    for (const n of ns.nestedArray ?? []) {
      const t = n as { fieldsArray?: unknown[]; fullName: string; nestedArray?: unknown[] };
      if (t.fieldsArray && t.fullName.startsWith('.csi.v1.')) {
        found += redactor.secretFields(t.fullName.slice(1)).length;
      }
      walk(t);
    }
  };
  walk(root);
  assert.ok(declared >= 19);
  assert.equal(found, declared, 'every field marked csi_secret is redacted, and nothing else');
  // a nested secret (in a sub-message) is still found through the parent
  const nested = redactor.redact('csi.v1.NodeStageVolumeRequest', { secrets: { a: 'b' }, volume_id: 'v' });
  assert.deepEqual(nested, { secrets: { a: '[REDACTED]' }, volume_id: 'v' });
});

test('CsiError carries its code', () => {
  const e = new CsiError(status.ABORTED, 'busy');
  assert.equal(e.code, status.ABORTED);
});
