/**
 * Crash suite, one targeted case (issue 10, the 50-kill bench's open violation): the controller is
 * SIGKILLed while Cinder still carries out its `POST /attachments`. Cinder reserves the attachment
 * at once and connects it (the volume service's attachment_update) afterwards; the killed driver's
 * request goes on inside Cinder, so its connection step can finish *after* the retry answered and
 * the node completed the attachment. Cinder's connection step always sets the attachment and the
 * volume to `attaching`: if the retry had handed out that same attachment, the volume stays
 * `attaching` for good (CreateSnapshot then answers "source volume is attaching" for ever).
 *
 * The proxy makes the interleaving exact with the real Cinder: when the driver's POST arrives it
 * kills the driver and sends Cinder the POST's first half (the reserve: the same POST without the
 * connector); the second half (the same attachment_update RPC, `PUT /attachments/{id}` with the
 * driver's connector) is sent once the retry's attachment was completed by the node.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { HostConnector } from '../../../src/openstack/cinder-types.ts';
import { DriverProcess } from '../../support/chaos/driver-process.ts';
import { inventory, inventorySize, purge } from '../../support/chaos/invariants.ts';
import { createVolumeRequest, mountCapability } from '../../support/chaos/requests.ts';
import { cinderAt } from '../../support/chaos/run.ts';
import { FaultProxy } from '../../support/fault-proxy.ts';
import { labAvailable, labNoauth } from '../../support/lab.ts';

const cap = mountCapability();

test('chaos: killed while Cinder connects its POST /attachments → the late connection leaves the volume in-use', async (t) => {
  const why = await labAvailable();
  if (why) return t.skip(why);
  const run = `chaos-inflight-${randomBytes(3).toString('hex')}`;
  const scope = { prefix: run, clusterId: run };
  const nodeId = `${run}-node`;
  const direct = await cinderAt(labNoauth().endpoint);
  let driver: DriverProcess | undefined;
  let late: { id: string; connector: HostConnector; mode?: 'rw' | 'ro' } | undefined;
  const proxy = await FaultProxy.start({
    target: new URL(labNoauth().endpoint).origin,
    seed: 1,
    rate: 0,
    before: async (req) => {
      if (late || !driver || req.method !== 'POST' || !/\/attachments$/.test(req.path)) return undefined;
      await driver.kill();
      const a = JSON.parse(req.body).attachment as {
        volume_uuid: string;
        connector: HostConnector;
        mode?: 'rw' | 'ro';
      };
      const reserved = await direct.cinder.createAttachment({
        volume_uuid: a.volume_uuid,
        ...(a.mode ? { mode: a.mode } : {}),
      });
      late = { id: reserved.id, connector: a.connector, ...(a.mode ? { mode: a.mode } : {}) };
      return 'abort';
    },
  });
  driver = new DriverProcess({ cinderEndpoint: `${proxy.url}/v3`, clusterId: run, nodes: [nodeId] });
  const d = driver;
  /** Like a sidecar: the same request until OK (bounded), restarting the driver if it is down. */
  const call = async <T>(method: string, req: Record<string, unknown>, tries = 20): Promise<T> => {
    for (let i = 1; ; i++) {
      try {
        if (!d.running) await d.start();
        return await d.client().call<T>('Controller', method, { secrets: {}, ...req }, 30_000);
      } catch (err) {
        if (i >= tries) throw err;
        t.diagnostic(`${method} try ${i}: ${(err as { details?: string }).details ?? String(err)}`);
        await new Promise((r) => setTimeout(r, 500 * i));
      }
    }
  };
  try {
    await d.start();
    const created = await call<{ volume: { volume_id: string } }>(
      'CreateVolume',
      createVolumeRequest(`${run}-v`, 'tgt'),
    );
    const volumeId = created.volume.volume_id;
    const pub = await call<{ publish_context: Record<string, string> }>('ControllerPublishVolume', {
      volume_id: volumeId,
      node_id: nodeId,
      volume_capability: cap,
      readonly: false,
    });
    assert.ok(late, 'the driver was killed inside its POST /attachments');
    assert.equal(d.kills, 1);
    const published = pub.publish_context['attachment_id'] ?? '';
    await direct.cinder.completeAttachment(published); // NodeStageVolume
    assert.equal((await direct.cinder.getVolume(volumeId)).status, 'in-use');

    // The killed try's POST finishes its connection step inside Cinder now.
    await direct.cinder
      .updateAttachment(late.id, late.connector, late.mode ? { mode: late.mode } : {})
      .catch((e: { notFound?: boolean }) => {
        if (!e.notFound) throw e;
      });
    assert.equal((await direct.cinder.getVolume(volumeId)).status, 'in-use', 'the volume stays in-use');
    assert.deepEqual(
      (await direct.cinder.listAttachments({ volume_id: volumeId })).map((a) => [a.id, a.status]),
      [[published, 'attached']],
    );
    // What the bench saw fail for 10 minutes: a snapshot of the published volume.
    const snap = await call<{ snapshot: { snapshot_id: string } }>(
      'CreateSnapshot',
      { name: `${run}-s`, source_volume_id: volumeId, parameters: {} },
      3,
    );
    await call('DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
    await call('ControllerUnpublishVolume', { volume_id: volumeId, node_id: nodeId });
    await call('DeleteVolume', { volume_id: volumeId });
    const end = Date.now() + 60_000;
    let left = await inventory(direct.cinder, scope);
    while (inventorySize(left) > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1000));
      left = await inventory(direct.cinder, scope);
    }
    assert.equal(inventorySize(left), 0, 'nothing of the run is left in Cinder');
  } finally {
    await d.stop();
    await proxy.close();
    await purge(direct.cinder, scope).catch(() => {});
    await direct.os.close();
  }
});
