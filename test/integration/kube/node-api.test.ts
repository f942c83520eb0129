/**
 * The node plugin's light Kubernetes client (src/kube/node-api.ts) against the real kube-apiserver
 * (test/k8s/kube-lab.sh), with the node ServiceAccount's minted token (RBAC of deploy/rbac.yaml):
 * the same answers as the full client for the two calls the node plugin makes, the connector
 * publisher and the zone lookup on top of it, and its errors. Skips when the API server is not built.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectorAnnotationKey, parseConnectorAnnotation } from '../../../src/kube/connector-annotation.ts';
import { ConnectorPublisher } from '../../../src/kube/connector-publisher.ts';
import { KubeApiError } from '../../../src/kube/kube-api.ts';
import { type NodeKubeApi, nodeKubeApi } from '../../../src/kube/node-api.ts';
import { zoneFromNodeLabel } from '../../../src/kube/topology.ts';
import type { HostConnector } from '../../../src/openstack/cinder-types.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import {
  applyManifests,
  ignore404,
  type KubeLab,
  kubeLab,
  NODE_SA,
  RBAC_YAML,
  runPrefix,
} from './kube-lab.ts';

const RUN = runPrefix('kube-nodeapi-it');
const DRIVER = 'cinder.csi.openstack.org';
const KEY = connectorAnnotationKey(DRIVER);
const ZONE_LABEL = 'topology.kubernetes.io/zone';

let lab: KubeLab;
const skip = { reason: '' };
const created: string[] = [];
let tmp: string;
let saKubeconfig: string;
let api: NodeKubeApi;

async function createNode(name: string, annotations?: Record<string, string>) {
  await lab.core!.createNode({
    body: { metadata: { name, annotations, labels: { 'kube-it-run': RUN, [ZONE_LABEL]: 'zone-a' } } },
  });
  created.push(name);
}

describe('node plugin Kubernetes client (light) on a real kube-apiserver', { timeout: 120_000 }, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kube-nodeapi-'));
    lab = await kubeLab();
    if (lab.reason) {
      skip.reason = lab.reason;
      return;
    }
    await applyManifests(lab.kc!, RBAC_YAML);
    saKubeconfig = await lab.serviceAccountKubeconfig(NODE_SA);
    const light = await nodeKubeApi({ kubeconfig: saKubeconfig });
    assert.ok(light, 'a token kubeconfig is served by the light client');
    api = light;
  });
  after(async () => {
    if (lab && !lab.reason) {
      for (const name of created) await ignore404(lab.core!.deleteNode({ name }));
    }
    lab?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('reads a Node (undefined when missing) and finds its zone label', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const name = `${RUN}-get`;
    await createNode(name);
    const node = await api.getNode(name);
    assert.equal(node?.metadata?.name, name);
    assert.equal(node?.metadata?.labels?.['kube-it-run'], RUN);
    assert.equal(await api.getNode(`${RUN}-missing`), undefined);
    assert.equal(await zoneFromNodeLabel(api, name, ZONE_LABEL, silentLogger()), 'zone-a');
  });

  it('merge-patches annotations (others kept, null removes) and the publisher works on it', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const name = `${RUN}-patch`;
    await createNode(name, { 'other.example.com/keep': 'yes' });
    await api.patchNodeAnnotations(name, { 'test.example.com/a': '1' });
    let annotations = (await lab.core!.readNode({ name })).metadata?.annotations ?? {};
    assert.equal(annotations['test.example.com/a'], '1');
    assert.equal(annotations['other.example.com/keep'], 'yes');
    await api.patchNodeAnnotations(name, { 'test.example.com/a': null });
    annotations = (await lab.core!.readNode({ name })).metadata?.annotations ?? {};
    assert.equal(annotations['test.example.com/a'], undefined);
    assert.equal(annotations['other.example.com/keep'], 'yes');

    const connector: HostConnector = {
      host: name,
      initiator: `iqn.1993-08.org.debian:01:${RUN}`,
      ip: '10.0.0.9',
      platform: 'x86_64',
      os_type: 'linux',
      multipath: false,
      do_local_attach: false,
    };
    const publisher = new ConnectorPublisher({
      api,
      nodeName: name,
      driverName: DRIVER,
      logger: silentLogger(),
    });
    try {
      publisher.publish(connector);
      await publisher.whenPublished();
      const value = (await lab.core!.readNode({ name })).metadata?.annotations?.[KEY] ?? '';
      assert.deepEqual(parseConnectorAnnotation(value), { ok: true, connector });
    } finally {
      await publisher.stop();
    }
  });

  it('in a cluster: the ServiceAccount token (re-read at every request) and CA, KUBERNETES_SERVICE_*', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const server = new URL(
      /server: (\S+)/.exec(readFileSync(saKubeconfig, 'utf8'))?.[1] ?? 'https://127.0.0.1:6443',
    );
    const sa = join(tmp, 'serviceaccount');
    mkdirSync(sa);
    writeFileSync(join(sa, 'ca.crt'), readFileSync('/var/lib/kube-lab/pki/ca.crt'));
    writeFileSync(join(sa, 'token'), 'not-a-real-token\n');
    const saved = { ...process.env };
    process.env['KUBERNETES_SERVICE_HOST'] = server.hostname;
    process.env['KUBERNETES_SERVICE_PORT'] = server.port;
    try {
      const inCluster = await nodeKubeApi({}, sa);
      await assert.rejects(
        inCluster!.getNode(`${RUN}-get`),
        (err: unknown) => (err as KubeApiError).status === 401,
      );
      const token = /token: (\S+)/.exec(readFileSync(saKubeconfig, 'utf8'))?.[1] ?? '';
      writeFileSync(join(sa, 'token'), `${token}\n`); // rotated by the kubelet
      assert.equal((await inCluster!.getNode(`${RUN}-get`))?.metadata?.name, `${RUN}-get`);
    } finally {
      process.env['KUBERNETES_SERVICE_HOST'] = saved['KUBERNETES_SERVICE_HOST'];
      process.env['KUBERNETES_SERVICE_PORT'] = saved['KUBERNETES_SERVICE_PORT'];
      if (saved['KUBERNETES_SERVICE_HOST'] === undefined) delete process.env['KUBERNETES_SERVICE_HOST'];
      if (saved['KUBERNETES_SERVICE_PORT'] === undefined) delete process.env['KUBERNETES_SERVICE_PORT'];
    }
  });

  it('errors: patching a missing Node is a 404, a bad token a 401, a bad name refused before any request', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    await assert.rejects(api.patchNodeAnnotations(`${RUN}-missing`, { a: '1' }), (err: unknown) => {
      assert.ok(err instanceof KubeApiError);
      assert.equal(err.status, 404);
      assert.match(err.message, /^patch node .*: HTTP 404 NotFound/);
      return true;
    });
    const bad = join(tmp, 'bad-token.kubeconfig');
    writeFileSync(bad, readFileSync(saKubeconfig, 'utf8').replace(/token: .*/, 'token: not-a-real-token'));
    const badApi = await nodeKubeApi({ kubeconfig: bad });
    await assert.rejects(badApi!.getNode(`${RUN}-get`), (err: unknown) => {
      assert.ok(err instanceof KubeApiError);
      assert.equal(err.status, 401);
      assert.doesNotMatch(err.message, /not-a-real-token/);
      return true;
    });
    await assert.rejects(api.getNode('../namespaces/kube-system/secrets'), (err: unknown) => {
      assert.ok(err instanceof KubeApiError);
      assert.equal(err.status, 400);
      return true;
    });
  });
});

describe('node plugin Kubernetes client (light): configuration', () => {
  it('leaves exec and auth-provider kubeconfigs to the full client; no cluster: a Config error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-nodeapi-cfg-'));
    try {
      const file = join(dir, 'exec.kubeconfig');
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]',
          'users: [{ name: u, user: { exec: { apiVersion: client.authentication.k8s.io/v1, command: /bin/true } } }]',
          'contexts: [{ name: x, context: { cluster: c, user: u } }]',
          'current-context: x',
        ].join('\n'),
      );
      assert.equal(await nodeKubeApi({ kubeconfig: file }), undefined);
      const none = join(dir, 'none.kubeconfig');
      writeFileSync(none, 'apiVersion: v1\nkind: Config\nclusters: []\n');
      await assert.rejects(nodeKubeApi({ kubeconfig: none }), /has no current cluster/);
      const saved = { ...process.env };
      delete process.env['KUBERNETES_SERVICE_HOST'];
      try {
        await assert.rejects(nodeKubeApi({}), /not running in a cluster/);
      } finally {
        Object.assign(process.env, saved);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
