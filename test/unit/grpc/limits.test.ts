/**
 * The CSI size limits, enforced in the gRPC wrapper for every request; error messages capped; a
 * garbage or non-UTF-8 frame answered INVALID_ARGUMENT; none of it tears down the connection.
 * Real grpc-js server and client over a unix socket.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { CsiError, capMessage, quote } from '../../../src/csi/errors.ts';
import { createIdentityService } from '../../../src/csi/identity.ts';
import type { ControllerService, NodeService } from '../../../src/csi/services.ts';
import { LIMIT_OVERRIDES, LIMITS, RequestLimits } from '../../../src/grpc/limits.ts';
import { loadCsiRoot, loadCsiServices } from '../../../src/grpc/proto.ts';
import { CsiRedactor } from '../../../src/grpc/redact.ts';
import { CsiServer } from '../../../src/grpc/server.ts';
import { createLogger } from '../../../src/util/logger.ts';
import { csiClient, LogCapture } from '../../support/csi-client.ts';

const CSI_PROTO_PATH = fileURLToPath(new URL('../../../proto/csi.proto', import.meta.url));
const root = loadCsiRoot();
const defs = loadCsiServices();
const limits = new RequestLimits(root);

describe('RequestLimits', () => {
  const ok = (type: string, m: unknown) => limits.check(`csi.v1.${type}`, m);
  const bad = (type: string, m: unknown, re: RegExp) =>
    assert.throws(
      () => limits.check(`csi.v1.${type}`, m),
      (e: CsiError) => e.code === status.INVALID_ARGUMENT && re.test(e.message) && e.message.length < 200,
    );

  test('ids and names: 128 bytes (bytes, not characters)', () => {
    ok('DeleteVolumeRequest', { volume_id: 'a'.repeat(128) });
    bad(
      'DeleteVolumeRequest',
      { volume_id: 'a'.repeat(129) },
      /^volume_id is 129 bytes; the CSI size limit for it is 128/,
    );
    bad('CreateVolumeRequest', { name: 'é'.repeat(65) }, /^name is 130 bytes/);
    bad('CreateVolumeRequest', { name: 'x'.repeat(1024 * 1024) }, /^name is 1048576 bytes/);
  });

  test('nested and repeated fields are named by their path', () => {
    bad(
      'CreateVolumeRequest',
      { volume_content_source: { snapshot: { snapshot_id: 's'.repeat(200) } } },
      /^volume_content_source\.snapshot\.snapshot_id is 200 bytes/,
    );
    bad(
      'CreateVolumeGroupSnapshotRequest',
      { source_volume_ids: ['a', 'b'.repeat(129)] },
      /^source_volume_ids\[1\] is 129 bytes/,
    );
    bad(
      'CreateVolumeGroupSnapshotRequest',
      { source_volume_ids: Array.from({ length: LIMITS.listEntries + 1 }, () => 'a') },
      /^source_volume_ids has 1025 entries/,
    );
  });

  test('paths: PATH_MAX; node_id: 256; mount_flags: 4 KiB in total', () => {
    ok('NodeUnpublishVolumeRequest', { target_path: `/${'p'.repeat(4095)}` });
    bad('NodeUnpublishVolumeRequest', { target_path: `/${'p'.repeat(4096)}` }, /^target_path is 4097 bytes/);
    ok('ControllerPublishVolumeRequest', { node_id: 'n'.repeat(256) });
    bad('ControllerPublishVolumeRequest', { node_id: 'n'.repeat(257) }, /^node_id is 257 bytes/);
    const cap = (flags: string[]) => ({ volume_capability: { mount: { mount_flags: flags } } });
    ok('NodeStageVolumeRequest', cap(Array.from({ length: 32 }, () => 'f'.repeat(128))));
    bad(
      'NodeStageVolumeRequest',
      cap(Array.from({ length: 33 }, () => 'f'.repeat(128))),
      /^volume_capability\.mount\.mount_flags is 4224 bytes in total/,
    );
  });

  test('maps: 4 KiB in total; secrets 128 KiB; NUL refused outside secrets', () => {
    ok('CreateVolumeRequest', { parameters: { a: 'v'.repeat(4000) } });
    bad('CreateVolumeRequest', { parameters: { a: 'v'.repeat(4096) } }, /^parameters is 4097 bytes in total/);
    ok('CreateVolumeRequest', { secrets: { key: 'k'.repeat(100_000) } });
    bad('CreateVolumeRequest', { secrets: { key: 'k'.repeat(LIMITS.secrets) } }, /^secrets is 131075 bytes/);
    bad('CreateVolumeRequest', { parameters: { 'a\0': 'v' } }, /^parameters contains a NUL byte/);
    bad('DeleteVolumeRequest', { volume_id: 'a\0b' }, /^volume_id contains a NUL byte/);
    ok('CreateVolumeRequest', { secrets: { key: 'binary\0secret' } });
  });

  test('every field csi.proto gives its own size limit is in LIMIT_OVERRIDES', () => {
    const text = readFileSync(CSI_PROTO_PATH, 'utf8').split('\n');
    const stated: string[] = [];
    const stack: string[] = [];
    let pending = false;
    for (const line of text) {
      if (/\{\s*$/.test(line)) stack.push(/^\s*message (\w+) \{/.exec(line)?.[1] ?? '');
      if (/overrides the general CSI size limit|total size of this repeated field/.test(line)) pending = true;
      const field = /^\s*(?:repeated )?string (\w+) = \d+/.exec(line);
      if (field && pending) {
        stated.push(`csi.v1.${stack.filter(Boolean).join('.')}.${field[1]}`);
        pending = false;
      }
      if (/^\s*\}\s*$/.test(line)) stack.pop();
    }
    const requests = stated.filter((f) => !/Response\./.test(f));
    assert.ok(requests.length >= 10, `found ${requests.join(', ')}`);
    assert.deepEqual(
      requests.filter((f) => !(f in LIMIT_OVERRIDES)),
      [],
    );
  });
});

describe('capMessage and quote', () => {
  test('a message is at most 1 KiB of UTF-8, cut on a character boundary', () => {
    assert.equal(capMessage('short'), 'short');
    const m = capMessage(`volume ${'😀'.repeat(1000)} is bad`);
    assert.ok(Buffer.byteLength(m) <= 1024 && m.endsWith('…'));
    assert.ok(!m.includes('\ufffd'), 'no emoji cut in half');
    assert.equal(capMessage('a\0b\u001bc\nd'), 'a\ufffdb\ufffdc\nd');
  });
  test('quote shows a short escaped prefix and the full length', () => {
    assert.equal(quote('vol-1'), '"vol-1"');
    assert.equal(quote(`${'x'.repeat(100)}`), `"${'x'.repeat(64)}"… (100 bytes)`);
    assert.equal(quote('a\0b'), '"a\\u0000b"');
  });
});

describe('the gRPC wrapper (real server and client)', () => {
  let dir: string;
  let sock: string;
  let server: CsiServer;
  const log = new LogCapture();
  const SECRET = 'planted-secret-value-1234';
  let handlerCalls = 0;
  const controller = {
    async DeleteVolume() {
      handlerCalls++;
      return {};
    },
    async ControllerGetVolume(req: { volume_id: string }) {
      // A handler that (wrongly) echoes its whole input and a secret into a message.
      throw new CsiError(status.NOT_FOUND, `no volume ${req.volume_id.repeat(20)} (${SECRET})`);
    },
    async CreateVolume(req: { secrets: Record<string, string> }) {
      throw new CsiError(status.FAILED_PRECONDITION, `cannot use credentials ${JSON.stringify(req.secrets)}`);
    },
  } as unknown as ControllerService;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'csi-limits-'));
    sock = join(dir, 'csi.sock');
    server = new CsiServer({
      endpoint: `unix://${sock}`,
      logger: createLogger({ level: 'info', destination: log }),
      identity: createIdentityService({
        driverName: 'cinder.csi.dev',
        version: '1',
        readiness: async () => ({ ready: true }),
      }),
      controller,
      node: {} as NodeService,
      redactor: new CsiRedactor(root),
      definitions: defs,
      limits,
    });
    await server.start();
  });
  after(async () => {
    await server.stop(100);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a 1 MB volume_id: INVALID_ARGUMENT with a short message; the handler never runs; the channel survives', async () => {
    const c = csiClient(`unix://${sock}`);
    try {
      const probes = Array.from({ length: 5 }, () => c.call('Identity', 'Probe'));
      await assert.rejects(
        c.call('Controller', 'DeleteVolume', { volume_id: 'v'.repeat(1024 * 1024) }),
        (e: ServiceError) => {
          assert.equal(e.code, status.INVALID_ARGUMENT);
          assert.ok(e.details.length < 200, e.details);
          return true;
        },
      );
      await Promise.all(probes);
      assert.equal(handlerCalls, 0);
      await c.call('Identity', 'Probe');
    } finally {
      c.close();
    }
  });

  test('a handler message echoing huge input and a secret is capped and scrubbed, in the reply and the log', async () => {
    const c = csiClient(`unix://${sock}`);
    try {
      await assert.rejects(
        c.call('Controller', 'ControllerGetVolume', { volume_id: 'v'.repeat(128) }),
        (e: ServiceError) => {
          assert.equal(e.code, status.NOT_FOUND);
          assert.ok(Buffer.byteLength(e.details) <= 1024, `${e.details.length}`);
          return true;
        },
      );
      await assert.rejects(
        c.call('Controller', 'CreateVolume', { name: 'n', secrets: { password: SECRET } }),
        (e: ServiceError) =>
          e.code === status.FAILED_PRECONDITION && !e.details.includes(SECRET) && /REDACTED/.test(e.details),
      );
      await c.call('Identity', 'Probe');
    } finally {
      c.close();
    }
    const failed = log.records().filter((r) => r['msg'] === 'rpc' && r['code'] === 'FAILED_PRECONDITION');
    assert.equal(failed.length, 1);
    assert.match(
      String(failed[0]!['message']),
      /cannot use credentials .*REDACTED/,
      'the failure reason is logged',
    );
    assert.ok(!log.text.includes(SECRET));
  });

  test('garbage and non-UTF-8 frames: INVALID_ARGUMENT, never INTERNAL; other calls unaffected', async () => {
    const raw = new Client(`unix://${sock}`, credentials.createInsecure());
    const send = (path: string, buf: Buffer) =>
      new Promise<ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(
          path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          buf,
          new Metadata(),
          (err) => resolve(err),
        ),
      );
    try {
      // Field 15 with wire type 7, which does not exist.
      const garbage = await send('/csi.v1.Controller/DeleteVolume', Buffer.from([0x7f, 0x01]));
      assert.equal(garbage?.code, status.INVALID_ARGUMENT, garbage?.details);
      const cut = await send(
        '/csi.v1.Controller/DeleteVolume',
        Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
      );
      assert.equal(cut?.code, status.INVALID_ARGUMENT, cut?.details);
      const notUtf8 = Buffer.from([0x0a, 0x04, 0x61, 0xff, 0xfe, 0x62]);
      const e = await send('/csi.v1.Controller/DeleteVolume', notUtf8);
      assert.equal(e?.code, status.INVALID_ARGUMENT);
      assert.match(e?.details ?? '', /not valid UTF-8/);
      // A literal U+FFFD is valid UTF-8 and passes.
      const fffd = Buffer.concat([Buffer.from([0x0a, 0x04, 0x61]), Buffer.from('\ufffd')]);
      assert.equal(await send('/csi.v1.Controller/DeleteVolume', fffd), null);
      assert.equal(await send('/csi.v1.Identity/Probe', Buffer.alloc(0)), null);
    } finally {
      raw.close();
    }
  });
});
