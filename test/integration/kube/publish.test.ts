/**
 * ControllerPublishVolume end to end through the connector exchange: the real controller service
 * (src/csi/controller) on the lab Cinder (Keystone, backend "fake"), its connectors from
 * KubeConnectorSource on the real kube-apiserver (controller ServiceAccount token), the node side
 * published by ConnectorPublisher (node ServiceAccount token). Skips when either is missing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createControllerService } from '../../../src/csi/controller/index.ts';
import { Code, CsiError } from '../../../src/csi/errors.ts';
import type { RpcContext } from '../../../src/csi/rpc.ts';
import { connectorAnnotationKey } from '../../../src/kube/connector-annotation.ts';
import type { ConnectorPublisher } from '../../../src/kube/connector-publisher.ts';
import type { KubeConnectorSource } from '../../../src/kube/connector-source.ts';
import type { CinderClient } from '../../../src/openstack/cinder.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import type { LabSession } from '../openstack/cinder-lab-session.ts';
import {
  CONTROLLER_SA,
  closeKubeLab,
  connectorPublisher,
  DRIVER,
  deleteVolumeAndAttachments,
  type KubeLab,
  NODE_SA,
  rbacKubeCinderLab,
  runPrefix,
  serviceAccountApi,
  startConnectorSource,
} from './kube-lab.ts';

const RUN = runPrefix('kube-pub-it');
const NODE = `${RUN}-node`;

let lab: KubeLab;
let os: LabSession | undefined;
let cinder: CinderClient;
let source: KubeConnectorSource;
let publisher: ConnectorPublisher;
let svc: ReturnType<typeof createControllerService>;
let volumeId = '';
const skip = { reason: '' };

const ctx = (): RpcContext => ({
  signal: AbortSignal.timeout(60_000),
  deadline: Date.now() + 60_000,
  requestId: RUN,
  log: silentLogger(),
});
const publishReq = (nodeId: string) => ({
  volume_id: volumeId,
  node_id: nodeId,
  volume_capability: {
    mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' },
    access_mode: { mode: 'SINGLE_NODE_WRITER' as const },
    access_type: 'mount' as const,
  },
  readonly: false,
  secrets: {},
  volume_context: {},
});

async function rejectsWith(p: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CsiError, `expected CsiError, got ${(err as Error)?.message}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe('ControllerPublishVolume with connectors from the Kubernetes API', { timeout: 120_000 }, () => {
  before(async () => {
    ({ lab, os, cinder } = await rbacKubeCinderLab(skip));
    if (skip.reason) return;
    source = startConnectorSource(await serviceAccountApi(lab, CONTROLLER_SA));
    publisher = connectorPublisher(await serviceAccountApi(lab, NODE_SA), NODE);
    svc = createControllerService({
      cinder,
      connectors: source,
      clusterId: RUN,
      driverName: DRIVER,
      topologyKey: 'topology.cinder.csi.dev/zone',
      logger: silentLogger(),
    });
    const v = await cinder.createVolume({
      size: 1,
      name: RUN,
      volume_type: 'fake',
      metadata: { 'cinder.csi.dev/cluster': RUN },
    });
    volumeId = v.id;
    await cinder.waitForVolume(v.id, { target: ['available'], signal: AbortSignal.timeout(60_000) });
    await source.ready;
  });

  after(async () => {
    await publisher?.stop();
    await source?.stop();
    if (cinder && volumeId) await deleteVolumeAndAttachments(cinder, volumeId);
    await os?.close();
    await closeKubeLab(lab, [NODE]);
  });

  it('unknown node → NOT_FOUND; node without connector → FAILED_PRECONDITION; registered → attachment', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    await rejectsWith(svc.ControllerPublishVolume(publishReq(NODE), ctx()), Code.NOT_FOUND, /unknown/);

    await lab.core!.createNode({ body: { metadata: { name: NODE } } });
    await rejectsWith(
      svc.ControllerPublishVolume(publishReq(NODE), ctx()),
      Code.FAILED_PRECONDITION,
      /node plugin has not registered/,
    );

    publisher.publish({
      host: NODE,
      initiator: `iqn.1993-08.org.debian:01:${RUN}`,
      ip: '127.0.0.1',
      multipath: false,
    });
    await publisher.whenPublished();
    const res = await svc.ControllerPublishVolume(publishReq(NODE), ctx());
    const attachmentId = res.publish_context?.attachment_id;
    assert.ok(attachmentId, 'publish_context carries the attachment id');
    const atts = await cinder.listAttachments({ volume_id: volumeId });
    assert.deepEqual(
      atts.map((a) => a.id),
      [attachmentId],
    );
    assert.equal(
      (await cinder.getVolume(volumeId)).metadata[`cinder.csi.dev.attachment.${attachmentId}`],
      NODE,
    );

    await svc.ControllerUnpublishVolume({ volume_id: volumeId, node_id: NODE, secrets: {} }, ctx());
    assert.deepEqual(await cinder.listAttachments({ volume_id: volumeId }), []);
  });

  it('malformed annotation → FAILED_PRECONDITION with the reason, never a crash', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    await publisher.stop(); // or it would restore the annotation
    await lab.admin!.patchNodeAnnotations(NODE, {
      [connectorAnnotationKey(DRIVER)]: '{"version":1,"connector":{"host":',
    });
    await rejectsWith(
      svc.ControllerPublishVolume(publishReq(NODE), ctx()),
      Code.FAILED_PRECONDITION,
      /malformed host connector annotation .*not valid JSON/,
    );
  });
});
