/**
 * RBAC, proven on the real kube-apiserver (RBAC authorizer on): the ServiceAccounts and
 * ClusterRoles of deploy/rbac.yaml are applied, tokens are minted for them (TokenRequest API),
 * and the driver's own Kubernetes adapter runs with those tokens. What each side needs works; a
 * representative call outside its rules is refused with 403. Skips when the API server is not built.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createKubeApi, type KubeApi, KubeApiError } from '../../../src/kube/kube-api.ts';
import {
  CONTROLLER_SA,
  captureLogger,
  closeKubeLab,
  connectorPublisher,
  DRIVER,
  eventually,
  ignore404,
  type KubeLab,
  NODE_SA,
  rbacKubeLab,
  runPrefix,
  serviceAccountApi,
} from './kube-lab.ts';

const RUN = runPrefix('kube-rbac-it');
const NODE = `${RUN}-node`;
const NO_RIGHTS_SA = { namespace: 'cinder-csi', name: `${RUN}-norights` };

let lab: KubeLab;
const skip = { reason: '' };
let controller: KubeApi;
let node: KubeApi;
let controllerCore: CoreV1Api;

async function forbidden(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const status = err instanceof KubeApiError ? err.status : (err as { code?: number }).code;
    assert.equal(status, 403, `${what}: expected 403, got ${String((err as Error).message).slice(0, 200)}`);
    return true;
  });
}

describe('RBAC of deploy/rbac.yaml with minted ServiceAccount tokens', { timeout: 60_000 }, () => {
  before(async () => {
    lab = await rbacKubeLab(skip);
    if (skip.reason) return;
    await lab.core!.createNode({ body: { metadata: { name: NODE } } });
    await lab.core!.createNamespacedServiceAccount({
      namespace: NO_RIGHTS_SA.namespace,
      body: { metadata: { name: NO_RIGHTS_SA.name } },
    });
    const controllerKubeconfig = await lab.serviceAccountKubeconfig(CONTROLLER_SA);
    controller = await createKubeApi({ kubeconfig: controllerKubeconfig });
    node = await serviceAccountApi(lab, NODE_SA);
    const kc = new KubeConfig();
    kc.loadFromFile(controllerKubeconfig);
    controllerCore = kc.makeApiClient(CoreV1Api);
  });
  after(async () => {
    if (lab && !lab.reason) await ignore404(lab.core!.deleteNamespacedServiceAccount(NO_RIGHTS_SA));
    await closeKubeLab(lab, [NODE]);
  });

  it('controller ServiceAccount: watches Nodes, lists VolumeAttachments and PVs, records Events; cannot patch Nodes or read Secrets', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const nodes = await controller.nodes.list(AbortSignal.timeout(10_000));
    assert.ok(nodes.items.some((n) => n.metadata?.name === NODE));
    assert.ok(nodes.resourceVersion);
    // watch: one event is enough to prove the verb is granted
    const ac = new AbortController();
    const got: string[] = [];
    const watching = controller.nodes
      .watch(
        nodes.resourceVersion,
        (e) => e.type !== 'BOOKMARK' && got.push(e.object.metadata?.name ?? ''),
        ac.signal,
      )
      .catch(() => undefined);
    await lab.admin!.patchNodeAnnotations(NODE, { 'kube-rbac-it/touched': 'yes' });
    await eventually('watch event', () => got.includes(NODE));
    ac.abort();
    await watching;

    assert.ok(Array.isArray(await controller.listVolumeAttachments()));
    assert.ok(Array.isArray(await controller.listPersistentVolumes()));
    const now = new Date();
    await controller.createEvent('default', {
      metadata: { name: `${RUN}-event`, namespace: 'default' },
      involvedObject: { apiVersion: 'v1', kind: 'PersistentVolume', name: `${RUN}-pv` },
      reason: 'RbacProbe',
      message: 'rbac test',
      type: 'Normal',
      source: { component: 'rbac-test' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
    await lab.core!.deleteNamespacedEvent({ name: `${RUN}-event`, namespace: 'default' });

    await forbidden(controller.patchNodeAnnotations(NODE, { x: 'y' }), 'controller patch node');
    await forbidden(
      controllerCore.listNamespacedSecret({ namespace: 'kube-system' }),
      'controller list secrets',
    );
  });

  it('node ServiceAccount: reads and annotates its Node; cannot list Nodes, VolumeAttachments, or delete Nodes', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    assert.equal((await node.getNode(NODE))?.metadata?.name, NODE);
    await node.patchNodeAnnotations(NODE, { [`${DRIVER}/probe`]: 'ok' });
    assert.equal((await lab.core!.readNode({ name: NODE })).metadata?.annotations?.[`${DRIVER}/probe`], 'ok');
    await node.patchNodeAnnotations(NODE, { [`${DRIVER}/probe`]: null });

    await forbidden(node.nodes.list(AbortSignal.timeout(10_000)), 'node list nodes');
    await forbidden(node.listVolumeAttachments(), 'node list volumeattachments');
    const kc = new KubeConfig();
    kc.loadFromFile(await lab.serviceAccountKubeconfig(NODE_SA));
    await forbidden(kc.makeApiClient(CoreV1Api).deleteNode({ name: NODE }), 'node delete node');
  });

  it('a node plugin without the RBAC grant logs a clear 403 cause and keeps retrying', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const { logger, lines } = captureLogger<{ level?: string; msg?: string; err?: string }>();
    const api = await serviceAccountApi(lab, NO_RIGHTS_SA);
    const publisher = connectorPublisher(api, NODE, { logger, backoffInitialMs: 100, backoffMaxMs: 200 });
    try {
      publisher.publish({ host: NODE, initiator: 'iqn.2004-10.com.example:rbac' });
      await eventually('two failed attempts', () => publisher.stats.failures >= 2);
      assert.equal(publisher.state, 'failing');
      assert.match(publisher.lastError ?? '', /HTTP 403 Forbidden/);
      const error = lines.find((l) => l.level === 'error');
      assert.match(
        error?.msg ?? '',
        /RBAC forbids it: grant the node plugin's ServiceAccount "patch" on nodes/,
      );
      assert.match(error?.err ?? '', /cannot patch resource "nodes"/);
      assert.equal(lines.filter((l) => l.level === 'error').length, 1, 'logged once per failure streak');
    } finally {
      await publisher.stop();
    }
  });
});
