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
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNodeService, type NodeServiceImpl } from '../../../src/csi/node/index.ts';
import { connectorFor } from '../../../src/host/connector-factory.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { type Harness, harness, rbdSkipReason } from '../../doubles/harness.ts';
import {
  cinder,
  cleanup,
  createAttachment,
  createVolume,
  type LabSession,
  labLogin,
  waitVolume,
} from '../../doubles/lab-cinder.ts';
import { type LabSession as ClientSession, labSession } from '../openstack/cinder-lab-session.ts';
import { ctx, mountCap, sh } from './helpers.ts';

const KEYRING = '/etc/ceph/ceph.client.cinder.keyring';
const skip = await rbdSkipReason();
const PREFIX = `nodesvc-rbd-${randomBytes(3).toString('hex')}`;
const CONNECTOR = { ip: '127.0.0.1', host: PREFIX, multipath: false, platform: 'x86_64', os_type: 'linux2' };

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
  let lab: LabSession;
  let client: ClientSession;
  let h: Harness;
  let dir: string;
  let svc: NodeServiceImpl;
  let key: string;
  const volumes: { id: string; attachments: string[] }[] = [];
  const snapshots: string[] = [];

  before(async () => {
    key = (await readFile(KEYRING, 'utf8')).match(/key\s*=\s*(\S+)/)?.[1] ?? '';
    assert.ok(key, `no key in ${KEYRING}`);
    lab = await labLogin();
    client = await labSession('keystone');
    if (!client.session) throw new Error(client.reason);
    h = harness(PREFIX);
    dir = await mkdtemp(path.join(tmpdir(), `${PREFIX}-`));
    svc = createNodeService({
      nodeId: PREFIX,
      cinder: new CinderClient({ session: client.session, logger: h.deps.logger }),
      nodeStageSecretsMode: true,
      connectors: (info) => connectorFor(info, { ...h.deps, rbd: { tmpDir: dir } }),
      executor: h.deps.executor,
      paths: h.deps.paths,
      stateDir: path.join(dir, 'state'),
      kubeletRoot: path.join(dir, 'kubelet'),
      logger: h.deps.logger,
    });
  });

  after(async () => {
    const mounts = sh('findmnt', ['-rn', '-o', 'TARGET'])
      .split('\n')
      .filter((m) => dir && m.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) sh('umount', ['-l', m]);
    h?.doubles.teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
    // Clones depend on the snapshot (RBD COW): they must be gone before it can be deleted.
    for (const v of volumes.slice(1).reverse()) {
      await cleanup(lab, v.id, v.attachments);
      await waitGone(`/volumes/${v.id}`);
    }
    for (const s of snapshots) {
      await cinder(lab, 'DELETE', `/snapshots/${s}`).catch(() => undefined);
      await waitGone(`/snapshots/${s}`);
    }
    if (volumes[0]) await cleanup(lab, volumes[0].id, volumes[0].attachments);
    await client?.close();
  });

  async function waitGone(p: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const gone = await cinder(lab, 'GET', p).then(
        () => false,
        () => true,
      );
      if (gone) return;
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async function attach(volumeId: string) {
    const a = await createAttachment(lab, volumeId, CONNECTOR);
    volumes.find((v) => v.id === volumeId)?.attachments.push(a.id);
    return { id: a.id, pc: publishContext(a.id, a.connection_info) };
  }

  const paths = (id: string) => ({
    staging: path.join(dir, 'kubelet/plugins/kubernetes.io/csi/cinder.csi.openstack.org', id, 'globalmount'),
    target: path.join(dir, 'kubelet/pods/p1/volumes/kubernetes.io~csi', id, 'mount'),
  });
  const secrets = () => ({ auth_username: 'cinder', key });
  const stageReq = (id: string, pc: Record<string, string>) => ({
    volume_id: id,
    publish_context: pc,
    staging_target_path: paths(id).staging,
    volume_capability: mountCap('ext4') as never,
    secrets: secrets(),
    volume_context: {},
  });

  test('write, unstage, snapshot, clone, stage the clone: the file is there byte for byte', async () => {
    const origin = await createVolume(lab, `${PREFIX}-origin`, 'rbd');
    volumes.push({ id: origin, attachments: [] });
    const a1 = await attach(origin);
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
    await cinder(lab, 'DELETE', `/attachments/${a1.id}`);
    await waitVolume(lab, origin, ['available']);

    const { snapshot } = await cinder<{ snapshot: { id: string } }>(lab, 'POST', '/snapshots', {
      snapshot: { volume_id: origin, name: `${PREFIX}-snap` },
    });
    snapshots.push(snapshot.id);
    for (let i = 0; ; i++) {
      const s = await cinder<{ snapshot: { status: string } }>(lab, 'GET', `/snapshots/${snapshot.id}`);
      if (s.snapshot.status === 'available') break;
      assert.ok(!s.snapshot.status.startsWith('error') && i < 200, `snapshot ${s.snapshot.status}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const { volume } = await cinder<{ volume: { id: string } }>(lab, 'POST', '/volumes', {
      volume: { name: `${PREFIX}-clone`, size: 1, volume_type: 'rbd', snapshot_id: snapshot.id },
    });
    volumes.push({ id: volume.id, attachments: [] });
    await waitVolume(lab, volume.id, ['available'], 120_000);

    const a2 = await attach(volume.id);
    await svc.NodeStageVolume(stageReq(volume.id, a2.pc), ctx());
    assert.deepEqual(
      await readFile(path.join(paths(volume.id).staging, 'payload.bin')),
      payload,
      'byte for byte',
    );
    await svc.NodeUnstageVolume(
      { volume_id: volume.id, staging_target_path: paths(volume.id).staging },
      ctx(),
    );
    await cinder(lab, 'DELETE', `/attachments/${a2.id}`);
    await waitVolume(lab, volume.id, ['available']);

    assert.ok(!h.logLines.join('').includes(key), 'a log line holds the cephx key');
    const calls = JSON.stringify(h.doubles.calls());
    assert.ok(!calls.includes(key), 'a recorded rbd call holds the cephx key');
    assert.deepEqual(await svc.stateStore.list(), []);
  });
});
