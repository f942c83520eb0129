/**
 * The crash suite's kill rounds (test/support/chaos/kills.ts) reach the orphan-group sweep of
 * DeleteVolumeGroupSnapshot (src/csi/group-controller/own-group.ts): a focused round there first
 * kills after `DELETE /group_snapshots` acted, then arms the sweep's group delete before the driver
 * restarts, and fires only at a group delete that follows an unfiltered group listing (the sweep),
 * not at one of the normal path or after a create's name lookup. The round logic alone is tested:
 * the driver is a recorder standing in for the process (the lab crash suite runs the real one), and
 * the proxy's hooks are called with the requests the restarted driver's retry would send.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DriverProcess } from '../../support/chaos/driver-process.ts';
import { KILL_POINTS, KillSwitch, RARE_POINTS } from '../../support/chaos/kills.ts';
import type { HookResult, ProxiedRequest } from '../../support/fault-proxy.ts';

const SWEEP = 'POST /groups/{id}/action delete (orphan-group sweep)';

let seq = 0;
const req = (method: string, url: string, body = ''): ProxiedRequest => ({
  seq: ++seq,
  method,
  url,
  path: url.replace(/\?.*/, ''),
  body,
});
const groupDelete = () => req('POST', '/v3/p/groups/g1/action', '{"delete":{"delete-volumes":false}}');

test('the sweep kill point follows a group snapshot delete killed after Cinder acted', async () => {
  const answers = new Map<string, HookResult>();
  let ks: KillSwitch | undefined;
  const hook = async (label: string, r: ProxiedRequest, phase: 'before' | 'after') => {
    answers.set(label, await (ks as KillSwitch).hook(r, phase));
  };
  // What the retry sends after each restart ('abort' = the driver was killed at that request).
  const onStart: (() => Promise<void>)[] = [
    // After round 1 (DELETE /group_snapshots, after): the sweep round is already armed.
    async () => {
      await hook('normal group delete', groupDelete(), 'after');
      await hook('name lookup', req('GET', '/v3/p/groups/detail?name=x'), 'before');
      await hook('group delete after the name lookup', groupDelete(), 'after');
      await hook('sweep listing', req('GET', '/v3/p/groups/detail?limit=20'), 'before');
      await hook('sweep delete, before Cinder', groupDelete(), 'before');
      await hook('sweep delete, after Cinder', groupDelete(), 'after');
    },
    async () => {}, // after round 2 (the sweep)
    // After round 3 (DELETE /group_snapshots again): the sweep's delete before Cinder acts.
    async () => {
      await hook('second sweep listing', req('GET', '/v3/p/groups/detail?limit=20'), 'before');
      await hook('second sweep delete, before Cinder', groupDelete(), 'before');
    },
    async () => {},
  ];
  let running = true;
  let kills = 0;
  let starts = 0;
  const driver = {
    get running() {
      return running;
    },
    async kill() {
      running = false;
      kills++;
    },
    async start() {
      running = true;
      starts++;
      await onStart.shift()?.();
    },
  } as unknown as DriverProcess;
  ks = new KillSwitch(
    driver,
    () => 0.5,
    () => {},
  );
  const rounds = ks.run(4, [SWEEP]);
  // Round 1: the group snapshot delete of a lifecycle, killed once Cinder acted on it.
  await hook('group snapshot delete', req('DELETE', '/v3/p/group_snapshots/gs1'), 'after');
  await new Promise((r) => setTimeout(r, 2500)); // round 3 arms after the usual pause (0.9 s here)
  await hook('second group snapshot delete', req('DELETE', '/v3/p/group_snapshots/gs2'), 'after');
  await rounds;

  assert.deepEqual(Object.fromEntries(answers), {
    'group snapshot delete': 'abort',
    'normal group delete': undefined,
    'name lookup': undefined,
    'group delete after the name lookup': undefined,
    'sweep listing': undefined,
    'sweep delete, before Cinder': undefined,
    'sweep delete, after Cinder': 'abort',
    'second group snapshot delete': 'abort',
    'second sweep listing': undefined,
    'second sweep delete, before Cinder': 'abort',
  });
  assert.deepEqual(ks.fired, {
    'after DELETE /group_snapshots/{id}': 2,
    [`after ${SWEEP}`]: 1,
    [`before ${SWEEP}`]: 1,
  });
  assert.equal(kills, 4);
  assert.equal(starts, 4);
});

test('the sweep point is focused in the bench and never armed by the general rounds', () => {
  assert.ok(RARE_POINTS.includes(SWEEP));
  assert.ok(KILL_POINTS.some((p) => p.name === SWEEP && p.follows === 'DELETE /group_snapshots/{id}'));
});
