/**
 * The end-to-end walk-through: drives one volume's whole life through the driver's CSI gRPC API the
 * way the Kubernetes sidecars and kubelet would, against the lab Cinder, and prints one line per
 * step with its duration. Exit code 0 only when every step and every check passed.
 *
 *   node test/demo/walkthrough.ts --endpoint unix:///run/cinder-csi-demo/csi.sock --node-id demo-node \
 *     --kubelet-root /var/lib/cinder-csi-demo/kubelet [--type tgt] [--zone nova] [--name demo-x]
 *
 * Whatever happens, everything the run created in Cinder is removed at the end (detach, snapshot,
 * volumes, in dependency order, each retried while Cinder still reports it busy). To prove that,
 * CINDER_CSI_DEMO_FAIL_AT=<step name prefix> makes that step fail before it runs (an injected
 * failure; test/integration/demo/demo.test.ts uses it).
 *
 * Parts: steps.ts (the step runner and its output), attach.ts (attach and detach on the node),
 * undo.ts (what the clean-up owes).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { csiClient } from '../support/csi-client.ts';
import { attacher, mountCap, type Vol } from './attach.ts';
import { createSteps, paint } from './steps.ts';
import { owedCreate, UndoList } from './undo.ts';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    'node-id': { type: 'string' },
    'kubelet-root': { type: 'string' },
    type: { type: 'string', default: 'tgt' },
    zone: { type: 'string', default: 'nova' },
    'topology-key': { type: 'string', default: 'topology.cinder.csi.dev/zone' },
    'driver-log': { type: 'string' },
    name: { type: 'string' },
  },
});
const endpoint = values.endpoint ?? 'unix:///run/cinder-csi-demo/csi.sock';
const nodeId = values['node-id'] ?? 'demo-node';
const kubeletRoot = values['kubelet-root'] ?? '/var/lib/cinder-csi-demo/kubelet';
const volumeType = values.type!;
const zone = values.zone!;
const topologyKey = values['topology-key']!;
const driverLog = values['driver-log'];
const failAt = process.env['CINDER_CSI_DEMO_FAIL_AT'] || undefined;
/** Secrets seen during the run (the lab target's CHAP credentials), looked for in the driver's log. */
const plantedSecrets = new Set<string>();

const GiB = 1024n ** 3n;
const grpc = csiClient(endpoint.startsWith('unix://') ? endpoint : endpoint.replace(/^tcp:\/\//, ''));
/** Deadlines like the sidecars' and kubelet's (minutes, not the test client's 10 s): on a busy
 * machine a ControllerPublishVolume can take longer than 10 s, and a call given up on by the client
 * still completes in the driver. */
const client: typeof grpc = {
  call: (service, method, req, timeoutMs = 120_000) => grpc.call(service, method, req, timeoutMs),
  close: () => grpc.close(),
};
const undo = new UndoList();
const { results, step, cleanupStep, check, interrupted } = createSteps(failAt);

const { attachAndMount, detach } = attacher({ client, nodeId, kubeletRoot, undo, step, plantedSecrets });

/** Deletes a volume; first unpublishes it from this node again, in case a publish the walk-through
 * gave up on completed in the driver after the detach ran (Cinder refuses to delete it then). */
const deleteVolume = async (id: string) => {
  await client
    .call('Controller', 'ControllerUnpublishVolume', { volume_id: id, node_id: nodeId })
    .catch(() => {});
  return client.call('Controller', 'DeleteVolume', { volume_id: id }, 120_000);
};

async function main(): Promise<number> {
  const name = values.name ?? `demo-${randomBytes(3).toString('hex')}`;
  console.log(paint(1, `cinder-csi walk-through: volume type ${volumeType}, zone ${zone}, node ${nodeId}`));
  try {
    await step('Probe (driver ready, Cinder reachable)', async () => {
      for (let i = 0; ; i++) {
        const r = await client
          .call<{ ready: { value: boolean } | null }>('Identity', 'Probe')
          .catch(() => undefined);
        if (r?.ready?.value) return r;
        if (i > 300) throw new Error('driver not ready after 60 s');
        await new Promise((res) => setTimeout(res, 200));
      }
    });
    await step(
      'GetPluginInfo',
      () => client.call<{ name: string; vendor_version: string }>('Identity', 'GetPluginInfo'),
      (r) => `${r.name} ${r.vendor_version}`,
    );

    const vol = await step(
      `CreateVolume ${name} (1 GiB, type ${volumeType}, zone ${zone})`,
      owedCreate(
        undo,
        `DeleteVolume ${name}`,
        () =>
          client.call<Vol>(
            'Controller',
            'CreateVolume',
            {
              name,
              capacity_range: { required_bytes: String(GiB) },
              volume_capabilities: [mountCap],
              parameters: { type: volumeType },
              accessibility_requirements: { preferred: [{ segments: { [topologyKey]: zone } }] },
            },
            120_000,
          ),
        (r) => r.volume.volume_id,
        deleteVolume,
      ),
      (r) =>
        `id ${r.volume.volume_id}, AZ ${Object.values(r.volume.accessible_topology[0]?.segments ?? {})[0]}`,
    );
    const volumeId = vol.volume.volume_id;
    check(
      'volume placed in the requested zone',
      vol.volume.accessible_topology[0]?.segments[topologyKey] === zone,
      `${topologyKey}=${zone}`,
    );

    const a = await attachAndMount(volumeId, 'vol1');
    const payload = randomBytes(256 * 1024);
    const digest = createHash('sha256').update(payload).digest('hex');
    await step(
      'write 256 KiB file through the pod mount',
      async () => {
        writeFileSync(join(a.target, 'hello.bin'), payload);
        writeFileSync(join(a.target, 'hello.txt'), `written by the cinder-csi demo, sha256 ${digest}\n`);
      },
      () => `sha256 ${digest.slice(0, 16)}…`,
    );
    const stats = await step(
      'NodeGetVolumeStats',
      () =>
        client.call<{
          usage: { total: string; used: string; unit: string }[];
          volume_condition: { abnormal: boolean; message: string };
        }>('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: a.target }),
      (r) =>
        `bytes total ${r.usage.find((u) => u.unit === 'BYTES')?.total}, condition ${r.volume_condition?.abnormal ? 'abnormal' : 'normal'}`,
    );
    check(
      'volume condition normal',
      stats.volume_condition?.abnormal !== true,
      stats.volume_condition?.message ?? 'ok',
    );
    await detach(volumeId, 'vol1', a);

    const snap = await step(
      'CreateSnapshot',
      owedCreate(
        undo,
        `DeleteSnapshot ${name}-snap`,
        () =>
          client.call<{ snapshot: { snapshot_id: string; ready_to_use: boolean } }>(
            'Controller',
            'CreateSnapshot',
            {
              name: `${name}-snap`,
              source_volume_id: volumeId,
            },
            120_000,
          ),
        (r) => r.snapshot.snapshot_id,
        (id) => client.call('Controller', 'DeleteSnapshot', { snapshot_id: id }, 120_000),
      ),
      (r) => `id ${r.snapshot.snapshot_id}, ready ${r.snapshot.ready_to_use}`,
    );
    const snapId = snap.snapshot.snapshot_id;
    check('snapshot ready to use', snap.snapshot.ready_to_use === true, 'ready_to_use=true');

    const restored = await step(
      `CreateVolume ${name}-restore from the snapshot`,
      owedCreate(
        undo,
        `DeleteVolume ${name}-restore`,
        () =>
          client.call<Vol>(
            'Controller',
            'CreateVolume',
            {
              name: `${name}-restore`,
              capacity_range: { required_bytes: String(GiB) },
              volume_capabilities: [mountCap],
              parameters: { type: volumeType },
              volume_content_source: { snapshot: { snapshot_id: snapId } },
              accessibility_requirements: { preferred: [{ segments: { [topologyKey]: zone } }] },
            },
            120_000,
          ),
        (r) => r.volume.volume_id,
        deleteVolume,
      ),
      (r) => `id ${r.volume.volume_id}`,
    );
    const restoredId = restored.volume.volume_id;

    const b = await attachAndMount(restoredId, 'vol2');
    const back = await step('read the file back from the restored volume', async () =>
      readFileSync(join(b.target, 'hello.bin')),
    );
    const backDigest = createHash('sha256').update(back).digest('hex');
    check(
      'restored data identical byte for byte',
      backDigest === digest,
      `sha256 ${backDigest.slice(0, 16)}…`,
    );

    const before = await client.call<{ usage: { total: string; unit: string }[] }>(
      'Node',
      'NodeGetVolumeStats',
      {
        volume_id: restoredId,
        volume_path: b.target,
      },
    );
    const exp = await step(
      'ControllerExpandVolume to 2 GiB (online, volume in use)',
      () =>
        client.call<{ capacity_bytes: string; node_expansion_required: boolean }>(
          'Controller',
          'ControllerExpandVolume',
          {
            volume_id: restoredId,
            capacity_range: { required_bytes: String(2n * GiB) },
            volume_capability: mountCap,
          },
          120_000,
        ),
      (r) => `capacity ${BigInt(r.capacity_bytes) / GiB} GiB, node expansion ${r.node_expansion_required}`,
    );
    await step('NodeExpandVolume (rescan device, grow xfs online)', () =>
      client.call<{ capacity_bytes: string }>(
        'Node',
        'NodeExpandVolume',
        {
          volume_id: restoredId,
          volume_path: b.target,
          staging_target_path: b.staging,
          capacity_range: { required_bytes: exp.capacity_bytes },
          volume_capability: mountCap,
        },
        120_000,
      ),
    );
    const after = await client.call<{ usage: { total: string; unit: string }[] }>(
      'Node',
      'NodeGetVolumeStats',
      { volume_id: restoredId, volume_path: b.target },
    );
    const totalBefore = BigInt(before.usage.find((u) => u.unit === 'BYTES')?.total ?? '0');
    const totalAfter = BigInt(after.usage.find((u) => u.unit === 'BYTES')?.total ?? '0');
    check(
      'filesystem grew online',
      totalAfter > totalBefore + GiB / 2n,
      `${totalBefore / 1048576n} MiB → ${totalAfter / 1048576n} MiB`,
    );
    const again = readFileSync(join(b.target, 'hello.bin'));
    check(
      'data intact after expansion',
      createHash('sha256').update(again).digest('hex') === digest,
      'sha256 matches',
    );
    await detach(restoredId, 'vol2', b);
  } catch {
    // the failing step printed itself; clean up below
  } finally {
    // Everything still owed, newest first; a failure here is reported and the next one still runs.
    await undo.drain(async (u) => {
      await cleanupStep(u.name, u.fn).catch(() => undefined);
    });
    client.close();
  }
  if (driverLog) {
    try {
      const log = readFileSync(driverLog, 'utf8');
      const leaked = [...plantedSecrets].filter((x) => log.includes(x));
      const token = /gAAAAA[\w-]{40,}/.test(log);
      check(
        'no CHAP secret or Keystone token in the driver log',
        leaked.length === 0 && !token,
        `${plantedSecrets.size} CHAP secret(s) looked for in ${log.split('\n').length} log lines`,
      );
    } catch {
      // check() recorded the failure
    }
  }
  const failed = results.filter((r) => !r.ok);
  const total = results.reduce((s, r) => s + r.ms, 0);
  console.log('');
  console.log(
    failed.length === 0
      ? paint(32, `walk-through passed: ${results.length} steps and checks, ${(total / 1000).toFixed(1)} s`)
      : paint(
          31,
          `walk-through FAILED: ${failed.length} of ${results.length} steps/checks failed: ${failed.map((f) => f.name).join('; ')}`,
        ),
  );
  return interrupted() ? 130 : failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
