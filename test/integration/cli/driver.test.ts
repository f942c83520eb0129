import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { buildDriver, type Driver } from '../../../src/cli/app.ts';
import { parseFlags } from '../../../src/cli/flags.ts';
import { createLogger } from '../../../src/util/logger.ts';
import { csiClient, LogCapture } from '../../support/csi-client.ts';
import { labAvailable, labNoauth, labNoauthEnv } from '../../support/lab.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'driver-'));
const savedEnv = { ...process.env };
let skip: string | undefined;

before(async () => {
  skip = await labAvailable();
  if (skip) return;
  Object.assign(process.env, labNoauthEnv());
  for (const k of Object.keys(process.env)) if (k.startsWith('OS_CLOUD')) delete process.env[k];
});
after(() => {
  process.env = savedEnv;
  rmSync(dir, { recursive: true, force: true });
});

async function start(mode: string, extra: string[] = [], log = new LogCapture()) {
  const r = parseFlags(
    [
      '--mode',
      mode,
      '--endpoint',
      'tcp://127.0.0.1:0',
      '--node-id',
      'driver-test-node',
      '--kubelet-root',
      join(dir, 'kubelet'),
      '--state-dir',
      join(dir, 'state', mode),
      '--host-root',
      join(dir, 'hostroot'),
      ...extra,
    ],
    {},
  );
  assert.equal(r.kind, 'run');
  if (r.kind !== 'run') throw new Error('unreachable');
  const driver: Driver = await buildDriver(r.flags, createLogger({ level: 'info', destination: log }));
  await driver.start();
  const client = csiClient(`127.0.0.1:${driver.port}`);
  return { driver, client, log };
}

async function waitReady(client: ReturnType<typeof csiClient>) {
  for (let i = 0; i < 150; i++) {
    const r = await client.call<{ ready: { value: boolean } | null }>('Identity', 'Probe');
    if (r.ready?.value) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail('driver never became ready');
}

describe('the driver per mode, against the lab Cinder (noauth)', () => {
  test('controller: capabilities, readiness, metrics scraped after a few RPCs', async (t) => {
    if (skip) return t.skip(`lab not available: ${skip}`);
    const port = await freePort();
    const { driver, client } = await start('controller', ['--metrics-address', `127.0.0.1:${port}`]);
    try {
      await waitReady(client);
      const caps = await client.call<{
        capabilities: { service?: { type: string }; volume_expansion?: { type: string } }[];
      }>('Identity', 'GetPluginCapabilities');
      const names = caps.capabilities.map((c) => c.service?.type ?? `expansion:${c.volume_expansion?.type}`);
      assert.deepEqual(
        names.sort(),
        [
          'CONTROLLER_SERVICE',
          'GROUP_CONTROLLER_SERVICE',
          'VOLUME_ACCESSIBILITY_CONSTRAINTS',
          'expansion:ONLINE',
        ].sort(),
      );
      const grp = await client.call<{ capabilities: { rpc: { type: string } }[] }>(
        'GroupController',
        'GroupControllerGetCapabilities',
      );
      assert.deepEqual(
        grp.capabilities.map((c) => c.rpc.type),
        ['CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT'],
      );
      const ctl = await client.call<{ capabilities: { rpc: { type: string } }[] }>(
        'Controller',
        'ControllerGetCapabilities',
      );
      assert.ok(ctl.capabilities.some((c) => c.rpc.type === 'CREATE_DELETE_VOLUME'));
      await assert.rejects(
        client.call('Controller', 'CreateVolume', { name: '' }),
        (e: { code: number }) => e.code === status.INVALID_ARGUMENT,
      );
      await assert.rejects(
        client.call('Node', 'NodeGetInfo'),
        (e: { code: number }) => e.code === status.UNIMPLEMENTED,
      );
      await client.call('Controller', 'ListVolumes', { max_entries: 1 });

      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /cinder_csi_rpc_requests_total\{method="Identity\/Probe",code="OK"\} \d+/);
      assert.match(
        text,
        /cinder_csi_rpc_requests_total\{method="Controller\/CreateVolume",code="INVALID_ARGUMENT"\} 1/,
      );
      assert.match(text, /cinder_csi_rpc_duration_seconds_bucket\{[^}]*method="Controller\/ListVolumes"/);
      assert.match(text, /cinder_csi_openstack_requests_total\{[^}]*service="block-storage"/);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(health.status, 200);
    } finally {
      client.close();
      await driver.stop(1000);
    }
  });

  test('node: only the node service; NodeGetInfo reports the node id, limit and zone', async (t) => {
    if (skip) return t.skip(`lab not available: ${skip}`);
    const { driver, client } = await start('node', ['--node-zone', 'nova']);
    try {
      await waitReady(client);
      const caps = await client.call<{ capabilities: unknown[] }>('Identity', 'GetPluginCapabilities');
      assert.deepEqual(caps.capabilities, [], 'a node-only plugin advertises no controller capabilities');
      const info = await client.call<{
        node_id: string;
        max_volumes_per_node: string;
        accessible_topology: { segments: Record<string, string> };
      }>('Node', 'NodeGetInfo');
      assert.equal(info.node_id, 'driver-test-node');
      assert.ok(Number(info.max_volumes_per_node) > 0);
      assert.deepEqual(info.accessible_topology.segments, { 'topology.cinder.csi.dev/zone': 'nova' });
      await assert.rejects(
        client.call('Controller', 'CreateVolume', { name: 'x' }),
        (e: { code: number }) => e.code === status.UNIMPLEMENTED,
      );
    } finally {
      client.close();
      await driver.stop(1000);
    }
  });

  test('controller: Probe is not ready while Cinder is unreachable', async (t) => {
    if (skip) return t.skip(`lab not available: ${skip}`);
    const port = await freePort(); // nothing listens there
    process.env['OS_ENDPOINT'] = `http://127.0.0.1:${port}/v3`;
    const { driver, client } = await start('controller');
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const r = await client.call<{ ready: { value: boolean } | null }>('Identity', 'Probe');
      assert.equal(r.ready?.value ?? false, false);
    } finally {
      process.env['OS_ENDPOINT'] = labNoauth().endpoint;
      client.close();
      await driver.stop(1000);
    }
  });
});
