/**
 * End to end on the lab's real Cinder (rbd backend, real single-node Ceph) in the opt-in
 * node-stage-secrets mode: the target fields come from publish_context and the cephx user/key
 * from node-stage secrets, as a Kubernetes Secret would pass them. This machine has no krbd, so
 * `rbd map` is the host layer's double (test/doubles): it checks the cephx credentials against the
 * real Ceph and exposes the image through rbd-fuse as a loop device. The production RbdConnector,
 * node service, mkfs/mount and the real CinderClient (os-complete) do the rest.
 *
 * Data integrity: write, unstage, snapshot in Cinder, volume from the snapshot (an RBD COW clone),
 * stage it: the file is there byte for byte. The key never reaches a log line or the state dir.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { rbdSkipReason } from '../../doubles/harness.ts';
import { labConnector, waitVolume } from '../../doubles/lab-cinder.ts';
import { ctx, mountCap } from './helpers.ts';
import { attach, detach, kubeletPaths, labNodeSuite, labVolume, snapshotAndClone } from './lab-node.ts';

const KEYRING = '/etc/ceph/ceph.client.cinder.keyring';
const skip = await rbdSkipReason();
const PREFIX = `nodesvc-rbd-${randomBytes(3).toString('hex')}`;
const CONNECTOR = labConnector(PREFIX);

/** The non-secret fields a controller puts into publish_context. */
function publishContext(attachmentId: string, info: Record<string, unknown>): Record<string, string> {
  const pc: Record<string, string> = { attachment_id: attachmentId };
  for (const k of ['driver_volume_type', 'name', 'cluster_name', 'volume_id'])
    if (info[k]) pc[k] = String(info[k]);
  for (const k of ['hosts', 'ports']) if (Array.isArray(info[k])) pc[k] = (info[k] as string[]).join(',');
  if (info.auth_enabled !== undefined) pc.auth_enabled = String(info.auth_enabled);
  return pc;
}

describe('node service on the lab rbd backend, node-stage-secrets mode (rbd double)', { skip }, () => {
  let key: string;
  before(async () => {
    key = (await readFile(KEYRING, 'utf8')).match(/key\s*=\s*(\S+)/)?.[1] ?? '';
    assert.ok(key, `no key in ${KEYRING}`);
  });
  const n = labNodeSuite(PREFIX, {
    nodeStageSecretsMode: true,
    connectorDeps: (dir) => ({ rbd: { tmpDir: dir } }),
  });

  async function attachPc(volumeId: string) {
    const a = await attach(n, volumeId, CONNECTOR);
    return { id: a.id, pc: publishContext(a.id, a.connection_info) };
  }

  const paths = (id: string) => kubeletPaths(n, id);
  const secrets = () => ({ auth_username: 'cinder', key });
  const stageReq = (id: string, pc: Record<string, string>) => ({
    volume_id: id,
    publish_context: pc,
    staging_target_path: paths(id).staging,
    volume_capability: mountCap('ext4') as never,
    secrets: secrets(),
    volume_context: {},
  });

  test('write, unstage, snapshot, clone, stage the clone: the file is there byte for byte', (t) =>
    n.work.run(t, async () => {
      const { lab, svc, h, dir } = n;
      const origin = await labVolume(n, `${PREFIX}-origin`, 'rbd');
      const a1 = await attachPc(origin);
      assert.ok(!Object.values(a1.pc).some((v) => v.includes(key)), 'publish_context holds no key');

      await svc.NodeStageVolume(stageReq(origin, a1.pc), ctx());
      await waitVolume(lab, origin, ['in-use'], 10_000);
      const t = paths(origin).target;
      await svc.NodePublishVolume({ ...stageReq(origin, a1.pc), target_path: t, readonly: false }, ctx());
      const payload = randomBytes(128 * 1024);
      await writeFile(path.join(t, 'payload.bin'), payload);
      const stateFiles = await readdir(path.join(dir, 'state'));
      for (const f of stateFiles) {
        assert.ok(
          !(await readFile(path.join(dir, 'state', f), 'utf8')).includes(key),
          'no key in the state file',
        );
      }
      await svc.NodeUnpublishVolume({ volume_id: origin, target_path: t }, ctx());
      await svc.NodeUnstageVolume({ volume_id: origin, staging_target_path: paths(origin).staging }, ctx());
      await detach(n, origin, a1.id);

      const clone = await snapshotAndClone(n, origin, PREFIX, 'rbd');

      const a2 = await attachPc(clone);
      await svc.NodeStageVolume(stageReq(clone, a2.pc), ctx());
      assert.deepEqual(
        await readFile(path.join(paths(clone).staging, 'payload.bin')),
        payload,
        'byte for byte',
      );
      await svc.NodeUnstageVolume({ volume_id: clone, staging_target_path: paths(clone).staging }, ctx());
      await detach(n, clone, a2.id);

      assert.ok(!h.logLines.join('').includes(key), 'a log line holds the cephx key');
      const calls = JSON.stringify(h.doubles.calls());
      assert.ok(!calls.includes(key), 'a recorded rbd call holds the cephx key');
      assert.deepEqual(await svc.stateStore.list(), []);
    }));
});
