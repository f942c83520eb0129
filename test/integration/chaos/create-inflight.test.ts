/**
 * The caller gives up while Cinder still carries out the driver's POST (issue 10; found by the
 * crash suite on the loaded lab, where a POST /volumes took longer than the sidecar's deadline):
 * the retry must not create a second object. The driver runs as a real process behind the fault
 * proxy, which holds the first POST /volumes for 4 s before forwarding it to the real Cinder (a
 * slow Cinder API); the CSI call's deadline is 1.5 s; the workload retries like the provisioner.
 * Checked against Cinder: exactly one volume of that name, the one the driver answered with.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DriverProcess } from '../../support/chaos/driver-process.ts';
import { inventory, leftAfter, purge } from '../../support/chaos/invariants.ts';
import { createVolumeRequest } from '../../support/chaos/requests.ts';
import { cinderAt } from '../../support/chaos/run.ts';
import { FaultProxy } from '../../support/fault-proxy.ts';
import { labAvailable, labNoauth } from '../../support/lab.ts';

test('chaos: CreateVolume whose caller gave up while Cinder still creates → the retry finds it, one volume', async (t) => {
  const why = await labAvailable();
  if (why) return t.skip(why);
  const run = `chaos-slowpost-${randomBytes(3).toString('hex')}`;
  const scope = { prefix: run, clusterId: run };
  const direct = await cinderAt(labNoauth().endpoint);
  let posts = 0;
  let inCinder = 0; // POST /volumes forwarded or held, not answered by Cinder yet
  const isPost = (r: { method: string; path: string }) => r.method === 'POST' && /\/volumes$/.test(r.path);
  const proxy = await FaultProxy.start({
    target: new URL(labNoauth().endpoint).origin,
    seed: 1,
    rate: 0,
    before: async (req) => {
      if (!isPost(req)) return undefined;
      inCinder++;
      if (posts++ === 0) await new Promise((r) => setTimeout(r, 4000)); // then forwarded
      return undefined;
    },
    after: (req) => {
      if (isPost(req)) inCinder--;
      return undefined;
    },
  });
  const d = new DriverProcess({ cinderEndpoint: `${proxy.url}/v3`, clusterId: run, nodes: [] });
  try {
    await d.start();
    const req = createVolumeRequest(`${run}-v`, 'fake');
    let answered: string | undefined;
    const codes: string[] = [];
    for (let i = 0; i < 60 && !answered; i++) {
      try {
        const r = await d
          .client()
          .call<{ volume: { volume_id: string } }>(
            'Controller',
            'CreateVolume',
            req,
            i === 0 ? 1500 : 15_000,
          );
        answered = r.volume.volume_id;
      } catch (err) {
        codes.push(String((err as { code?: number }).code));
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    t.diagnostic(`non-OK answers (grpc codes): ${codes.join(', ')}`);
    assert.ok(answered, 'CreateVolume answered OK');
    assert.ok(codes.length > 0, 'the first call ran past its deadline');
    // every POST the driver made has reached Cinder and been answered (bounded wait)
    for (let i = 0; i < 120 && inCinder > 0; i++) await new Promise((r) => setTimeout(r, 500));
    assert.equal(inCinder, 0);
    const inv = await inventory(direct.cinder, scope);
    t.diagnostic(`POST /volumes sent: ${posts}`);
    assert.deepEqual(
      inv.volumes.map((v) => v.id),
      [answered],
      'exactly one volume of that name, the one answered',
    );
    await d.client().call('Controller', 'DeleteVolume', { volume_id: answered, secrets: {} }, 60_000);
    assert.equal(await leftAfter(direct.cinder, scope, 60_000), 0, 'nothing left');
  } finally {
    await d.stop();
    await proxy.close();
    await purge(direct.cinder, scope).catch(() => {});
    await direct.os.close();
  }
});
