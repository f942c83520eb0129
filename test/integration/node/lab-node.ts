/**
 * What the node service suites on the lab's real Cinder share (lab-iscsi, lab-rbd): the node
 * service with the production connectors over the host tool doubles and the real CinderClient, the
 * kubelet paths of a volume, attachments with the suite's connector, a snapshot and a volume from
 * it in Cinder, and the clean-up. `labNodeSuite()` registers the suite's before/after hooks: the
 * clean-up runs in `after` whatever the test body did (failed, timed out: a body run through
 * `n.work` is waited for first, see test/support/test-work.ts), and removes mounts under the
 * suite's dir, the doubles, the dir, then the clones, the snapshots and the origin in Cinder.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { createNodeService, type NodeServiceImpl } from '../../../src/csi/node/index.ts';
import { type ConnectorDeps, connectorFor } from '../../../src/host/connector-factory.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { type Harness, harness } from '../../doubles/harness.ts';
import {
  cinder,
  cleanup,
  cleanupPrefix,
  createAttachment,
  createVolume,
  type LabSession,
  labLogin,
  waitVolume,
} from '../../doubles/lab-cinder.ts';
import { TestWork } from '../../support/test-work.ts';
import { type LabSession as ClientSession, labSession } from '../openstack/cinder-lab-session.ts';
import { sh } from './helpers.ts';

export interface LabNodeOptions {
  nodeStageSecretsMode?: boolean;
  /** The connectors' settings beyond the harness's deps (iscsi timings, the rbd tmp dir). */
  connectorDeps(dir: string): Partial<ConnectorDeps>;
}

/** The suite's state; its fields are set by the before hook. */
export interface LabNode {
  lab: LabSession;
  client?: ClientSession;
  h: Harness;
  /** The suite's temporary dir: state dir and kubelet root. */
  dir: string;
  svc: NodeServiceImpl;
  /** Volumes to delete (the first is the origin, deleted last) with their attachments. */
  volumes: { id: string; attachments: string[] }[];
  snapshots: string[];
  /** Runs the test bodies: the clean-up waits for a body that timed out before it deletes. */
  work: TestWork;
}

/** Registers the before/after hooks of a lab node suite (call inside describe). */
export function labNodeSuite(prefix: string, opts: LabNodeOptions): LabNode {
  const n = { dir: '', volumes: [], snapshots: [], work: new TestWork() } as unknown as LabNode;
  before(async () => {
    n.lab = await labLogin();
    n.client = await labSession('keystone');
    if (!n.client.session) throw new Error(n.client.reason);
    n.h = harness(prefix);
    n.dir = await mkdtemp(path.join(tmpdir(), `${prefix}-`));
    n.svc = createNodeService({
      nodeId: prefix,
      cinder: new CinderClient({ session: n.client.session, logger: n.h.deps.logger }),
      ...(opts.nodeStageSecretsMode ? { nodeStageSecretsMode: true } : {}),
      connectors: (info) => connectorFor(info, { ...n.h.deps, ...opts.connectorDeps(n.dir) }),
      executor: n.h.deps.executor,
      paths: n.h.deps.paths,
      stateDir: path.join(n.dir, 'state'),
      kubeletRoot: path.join(n.dir, 'kubelet'),
      logger: n.h.deps.logger,
    });
  });

  after(async () => {
    // Unmount anything a failed assertion left behind, release the doubles' loop devices, then
    // delete the Cinder resources: clones (an RBD clone depends on its snapshot) before snapshots
    // before the origin.
    await n.work.settled();
    const { dir, lab } = n;
    const mounts = sh('findmnt', ['-rn', '-o', 'TARGET'])
      .split('\n')
      .filter((m) => dir && m.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) sh('umount', ['-l', m]);
    n.h?.doubles.teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (lab) {
      for (const v of n.volumes.slice(1).reverse()) {
        await cleanup(lab, v.id, v.attachments);
        await waitGone(lab, `/volumes/${v.id}`);
      }
      for (const s of n.snapshots) {
        await cinder(lab, 'DELETE', `/snapshots/${s}`).catch(() => undefined);
        await waitGone(lab, `/snapshots/${s}`);
      }
      const origin = n.volumes[0];
      if (origin) await cleanup(lab, origin.id, origin.attachments);
      await cleanupPrefix(lab, prefix); // a create whose answer never came
    }
    await n.client?.close();
  });
  return n;
}

async function waitGone(lab: LabSession, p: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      await cinder(lab, 'GET', p);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** The staging and target paths kubelet would pass for volume `id` under the suite's kubelet root. */
export function kubeletPaths(n: LabNode, id: string) {
  return {
    staging: path.join(
      n.dir,
      'kubelet/plugins/kubernetes.io/csi/cinder.csi.openstack.org',
      id,
      'globalmount',
    ),
    target: path.join(n.dir, 'kubelet/pods/p1/volumes/kubernetes.io~csi', id, 'mount'),
  };
}

/** A new volume of `type` in Cinder, deleted by the suite's clean-up. */
export async function labVolume(n: LabNode, name: string, type: string): Promise<string> {
  const id = await createVolume(n.lab, name, type);
  n.volumes.push({ id, attachments: [] });
  return id;
}

/** What ControllerPublishVolume does: an attachment with the node's connector (deleted by the clean-up). */
export async function attach(n: LabNode, volumeId: string, connector: Record<string, unknown>) {
  const a = await createAttachment(n.lab, volumeId, connector);
  n.volumes.find((v) => v.id === volumeId)?.attachments.push(a.id);
  return a;
}

/** What ControllerUnpublishVolume does: the attachment deleted, the volume available again. */
export async function detach(n: LabNode, volumeId: string, attachmentId: string): Promise<void> {
  await cinder(n.lab, 'DELETE', `/attachments/${attachmentId}`);
  await waitVolume(n.lab, volumeId, ['available']);
}

/** A snapshot of `origin` in Cinder, then a volume of `type` from it (available): its id. */
export async function snapshotAndClone(n: LabNode, origin: string, prefix: string, type: string) {
  const { lab } = n;
  const { snapshot } = await cinder<{ snapshot: { id: string } }>(lab, 'POST', '/snapshots', {
    snapshot: { volume_id: origin, name: `${prefix}-snap` },
  });
  n.snapshots.push(snapshot.id);
  for (let i = 0; ; i++) {
    const s = await cinder<{ snapshot: { status: string } }>(lab, 'GET', `/snapshots/${snapshot.id}`);
    if (s.snapshot.status === 'available') break;
    assert.ok(!s.snapshot.status.startsWith('error') && i < 200, `snapshot ${s.snapshot.status}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const { volume } = await cinder<{ volume: { id: string } }>(lab, 'POST', '/volumes', {
    volume: { name: `${prefix}-clone`, size: 1, volume_type: type, snapshot_id: snapshot.id },
  });
  n.volumes.push({ id: volume.id, attachments: [] });
  await waitVolume(lab, volume.id, ['available'], 120_000);
  return volume.id;
}
