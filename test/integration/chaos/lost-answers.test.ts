/**
 * Requests whose answer is lost after Cinder acted (issue 10; seen in the chaos bench's runs), one
 * of each kind below, with the driver as a real process behind the fault proxy, against the real
 * lab Cinder (noauth, fake backend):
 *   - `PUT /groups/{id}` (add the source volumes): Cinder's volume service is still adding them
 *     while the driver's HTTP client repeats the PUT and the CO repeats CreateVolumeGroupSnapshot;
 *     Cinder refuses the repeat ("Group status must be available" while updating, "no valid ...
 *     add_volumes" once the volumes are in);
 *   - `DELETE /group_snapshots/{id}`, `DELETE /snapshots/{id}`, `DELETE /volumes/{id}`: the HTTP
 *     client repeats the DELETE and Cinder refuses it because the object is already `deleting`.
 * The driver answered those with FAILED_PRECONDITION / INVALID_ARGUMENT: permanent codes for a
 * transient state. Expected: only codes a CO repeats unchanged, until an OK; one group; nothing left.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DriverProcess } from '../../support/chaos/driver-process.ts';
import { leftAfter, purge } from '../../support/chaos/invariants.ts';
import { createVolumeRequest } from '../../support/chaos/requests.ts';
import { cinderAt, deleteGroupType } from '../../support/chaos/run.ts';
import { FaultProxy, type ProxiedRequest } from '../../support/fault-proxy.ts';
import { labAvailable, labNoauth } from '../../support/lab.ts';

/** gRPC codes a CO repeats without a change (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED). */
const TRANSIENT = new Set(['14', '4', '10']);
/** The first request of each kind loses its answer. */
const LOST: Record<string, (r: ProxiedRequest) => boolean> = {
  'PUT /groups/{id}': (r) => r.method === 'PUT' && /\/groups\/[^/]+$/.test(r.path),
  'DELETE /group_snapshots/{id}': (r) => r.method === 'DELETE' && /\/group_snapshots\/[^/]+$/.test(r.path),
  'DELETE /snapshots/{id}': (r) => r.method === 'DELETE' && /\/snapshots\/[^/]+$/.test(r.path),
  'DELETE /volumes/{id}': (r) => r.method === 'DELETE' && /\/volumes\/[^/]+$/.test(r.path),
};

type Gs = {
  group_snapshot: { group_snapshot_id: string; ready_to_use: boolean; snapshots: { snapshot_id: string }[] };
};

test('chaos: answers lost after Cinder acted (group update, deletes) → retryable codes only, then OK', async (t) => {
  const why = await labAvailable();
  if (why) return t.skip(why);
  const run = `chaos-lost-${randomBytes(3).toString('hex')}`;
  const scope = { prefix: run, clusterId: run };
  const direct = await cinderAt(labNoauth().endpoint);
  const lost = new Set<string>();
  const proxy = await FaultProxy.start({
    target: new URL(labNoauth().endpoint).origin,
    seed: 1,
    rate: 0,
    after: (req) => {
      const kind = Object.keys(LOST).find((k) => LOST[k]?.(req));
      if (!kind || lost.has(kind)) return undefined;
      lost.add(kind);
      return 'abort';
    },
  });
  const d = new DriverProcess({ cinderEndpoint: `${proxy.url}/v3`, clusterId: run, nodes: [] });
  const groupType = `${run}-group-type`;
  const codes: string[] = [];
  /** Calls until OK and `done` says so (bounded); every non-OK code is recorded. */
  async function untilOk<T>(
    service: 'Controller' | 'GroupController',
    method: string,
    req: object,
    done: (r: T) => boolean = () => true,
  ): Promise<T> {
    for (let i = 0; i < 60; i++) {
      try {
        const r = await d.client().call<T>(service, method, req, 60_000);
        if (done(r)) return r;
      } catch (err) {
        const e = err as { code?: number; details?: string };
        codes.push(String(e.code));
        t.diagnostic(`${method}: code ${e.code}: ${String(e.details).slice(0, 200)}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`${method} never answered OK`);
  }
  try {
    await direct.cinder.createGroupType?.({ name: groupType, is_public: true });
    await d.start();
    const volumeIds: string[] = [];
    for (const i of [1, 2]) {
      const r = await untilOk<{ volume: { volume_id: string } }>(
        'Controller',
        'CreateVolume',
        createVolumeRequest(`${run}-v${i}`, 'fake'),
      );
      volumeIds.push(r.volume.volume_id);
    }
    const name = `${run}-g`;
    const req = { name, source_volume_ids: volumeIds, parameters: { groupType }, secrets: {} };
    const gs = (
      await untilOk<Gs>(
        'GroupController',
        'CreateVolumeGroupSnapshot',
        req,
        (r) => r.group_snapshot.ready_to_use,
      )
    ).group_snapshot;
    assert.equal(gs.snapshots.length, 2);
    let groups = 0;
    for await (const g of direct.cinder.listGroups?.({ name }) ?? []) if (g.name === name) groups++;
    assert.equal(groups, 1, 'one Cinder group for the group snapshot');
    await untilOk('GroupController', 'DeleteVolumeGroupSnapshot', {
      group_snapshot_id: gs.group_snapshot_id,
      snapshot_ids: gs.snapshots.map((s) => s.snapshot_id),
      secrets: {},
    });
    const snap = await untilOk<{ snapshot: { snapshot_id: string; ready_to_use: boolean } }>(
      'Controller',
      'CreateSnapshot',
      { name: `${run}-s`, source_volume_id: volumeIds[0], parameters: {}, secrets: {} },
      (r) => r.snapshot.ready_to_use,
    );
    await untilOk('Controller', 'DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id, secrets: {} });
    for (const id of volumeIds) await untilOk('Controller', 'DeleteVolume', { volume_id: id, secrets: {} });

    assert.deepEqual([...lost].sort(), Object.keys(LOST).sort(), 'one answer of each kind was lost');
    assert.ok(codes.length > 0, 'calls with a lost answer failed');
    assert.deepEqual(
      codes.filter((c) => !TRANSIENT.has(c)),
      [],
      'a transient state is answered with retryable codes only',
    );
    assert.equal(await leftAfter(direct.cinder, scope, 90_000), 0, 'nothing left');
  } finally {
    await d.stop();
    await proxy.close();
    await purge(direct.cinder, scope).catch(() => {});
    await deleteGroupType(direct.cinder, groupType);
    await direct.os.close();
  }
});
