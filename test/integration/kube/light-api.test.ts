/**
 * The driver's own Kubernetes client (src/kube/light-api.ts) against the real kube-apiserver
 * (test/k8s/kube-lab.sh), with the node's and the controller's ServiceAccount tokens (RBAC of
 * deploy/rbac.yaml): the node plugin's two calls (with the connector publisher and the zone lookup
 * on top), the controller's lists (paged), watches (a real 410 Gone for a compacted version),
 * Events, and errors. Its failure paths that a real API server does not produce (bad shapes,
 * oversized answers) are in light-api-faults.test.ts. Skips when the API server is not built.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectorAnnotationKey, parseConnectorAnnotation } from '../../../src/kube/connector-annotation.ts';
import { createKubeApi, type KubeApi, KubeApiError } from '../../../src/kube/kube-api.ts';
import { LIMITS, lightKubeApi } from '../../../src/kube/light-api.ts';
import { zoneFromNodeLabel } from '../../../src/kube/topology.ts';
import { type WatchEvent, WatchGoneError } from '../../../src/kube/watch-cache.ts';
import type { HostConnector } from '../../../src/openstack/cinder-types.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import {
  CONTROLLER_SA,
  closeKubeLab,
  connectorPublisher,
  DRIVER,
  ignore404,
  type KubeLab,
  NODE_SA,
  rbacKubeLab,
  runPrefix,
} from './kube-lab.ts';

const RUN = runPrefix('kube-lightapi-it');
const KEY = connectorAnnotationKey(DRIVER);
const ZONE_LABEL = 'topology.kubernetes.io/zone';

let lab: KubeLab;
const skip = { reason: '' };
const created: string[] = [];
let tmp: string;
let saKubeconfig: string;
let api: KubeApi;
let controller: KubeApi;

async function createNode(name: string, annotations?: Record<string, string>) {
  await lab.core!.createNode({
    body: { metadata: { name, annotations, labels: { 'kube-it-run': RUN, [ZONE_LABEL]: 'zone-a' } } },
  });
  created.push(name);
}

describe("the driver's own Kubernetes client on a real kube-apiserver", { timeout: 120_000 }, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kube-lightapi-'));
    lab = await rbacKubeLab(skip);
    if (skip.reason) return;
    saKubeconfig = await lab.serviceAccountKubeconfig(NODE_SA);
    const light = await lightKubeApi({ kubeconfig: saKubeconfig });
    assert.ok(light, 'a token kubeconfig is served by the light client');
    api = light;
    const ctl = await lightKubeApi({ kubeconfig: await lab.serviceAccountKubeconfig(CONTROLLER_SA) });
    assert.ok(ctl);
    controller = ctl;
  });
  after(async () => {
    await closeKubeLab(lab, created);
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
    const publisher = connectorPublisher(api, name);
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
      const inCluster = await lightKubeApi({}, sa);
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

  it('controller: lists Nodes in pages (continue), VolumeAttachments and PVs, as the controller SA', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    for (const i of [1, 2, 3]) await createNode(`${RUN}-list-${i}`);
    const saved = LIMITS.pageSize;
    LIMITS.pageSize = 2; // several pages even on a small cluster
    try {
      const res = await controller.nodes.list(new AbortController().signal);
      const names = res.items.map((n) => n.metadata?.name);
      for (const i of [1, 2, 3]) assert.ok(names.includes(`${RUN}-list-${i}`), `node ${i} listed`);
      assert.equal(new Set(names).size, names.length, 'no node twice across pages');
      assert.match(res.resourceVersion, /^\d+$/);
    } finally {
      LIMITS.pageSize = saved;
    }
    assert.ok(Array.isArray(await controller.listVolumeAttachments()));
    assert.ok(Array.isArray(await controller.listPersistentVolumes()));
    const vas = await controller.volumeAttachments.list(new AbortController().signal);
    assert.match(vas.resourceVersion, /^\d+$/);
  });

  it('controller: a watch from the list sees a Node added; a compacted resourceVersion is WatchGoneError', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const { resourceVersion } = await controller.nodes.list(new AbortController().signal);
    const name = `${RUN}-watched`;
    const abort = new AbortController();
    const seen: WatchEvent<unknown>[] = [];
    // the outcome is taken at once: the event may arrive before createNode() resolves
    const watching = controller.nodes
      .watch(
        resourceVersion,
        (e) => {
          seen.push(e);
          if (e.type === 'ADDED' && (e.object as { metadata: { name: string } }).metadata.name === name)
            abort.abort(new Error('seen'));
        },
        abort.signal,
      )
      .then(
        () => 'ended',
        (err: unknown) => (err as Error).message,
      );
    await createNode(name);
    assert.match(await watching, /seen/);
    assert.ok(seen.some((e) => e.type === 'ADDED'));
    // resourceVersion 1 is long compacted away on any API server that has run a while
    await assert.rejects(
      controller.nodes.watch('1', () => undefined, AbortSignal.timeout(30_000)),
      (err: unknown) => err instanceof WatchGoneError,
    );
  });

  it("controller: creates an Event (the reconciler's Warning on a PV)", async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const now = new Date();
    const name = `${RUN}-event`;
    await controller.createEvent('default', {
      metadata: { name, namespace: 'default' },
      involvedObject: { apiVersion: 'v1', kind: 'PersistentVolume', name: `${RUN}-pv` },
      reason: 'StaleAttachment',
      message: 'a test event',
      type: 'Warning',
      source: { component: `${DRIVER}/attachment-reconciler` },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
    try {
      const ev = await lab.core!.readNamespacedEvent({ name, namespace: 'default' });
      assert.equal(ev.reason, 'StaleAttachment');
      assert.equal(ev.involvedObject.name, `${RUN}-pv`);
      assert.equal(new Date(ev.firstTimestamp as Date).getTime(), Math.floor(now.getTime() / 1000) * 1000);
    } finally {
      await ignore404(lab.core!.deleteNamespacedEvent({ name, namespace: 'default' }));
    }
    await assert.rejects(
      controller.createEvent('Not/A/Namespace', { metadata: {}, involvedObject: {} }),
      (err: unknown) => (err as KubeApiError).status === 400,
    );
  });

  it('an exec-plugin kubeconfig: createKubeApi falls back to @kubernetes/client-node, same answers', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const name = `${RUN}-exec`;
    await createNode(name);
    const text = readFileSync(saKubeconfig, 'utf8');
    const token = /token: (\S+)/.exec(text)?.[1] ?? '';
    const plugin = join(tmp, 'credential.sh');
    const credential = {
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: { token },
    };
    writeFileSync(plugin, `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`, { mode: 0o700 });
    const file = join(tmp, 'exec.kubeconfig');
    writeFileSync(
      file,
      text.replace(
        /token: \S+/,
        `exec: { apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, interactiveMode: Never }`,
      ),
    );
    assert.equal(await lightKubeApi({ kubeconfig: file }), undefined, 'not for the light client');
    const full = await createKubeApi({ kubeconfig: file });
    assert.equal((await full.getNode(name))?.metadata?.name, name);
    assert.equal(await full.getNode(`${RUN}-missing`), undefined);
    await full.patchNodeAnnotations(name, { 'test.example.com/exec': '1' });
    assert.equal((await full.getNode(name))?.metadata?.annotations?.['test.example.com/exec'], '1');
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
    const badApi = await lightKubeApi({ kubeconfig: bad });
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

describe("the driver's own Kubernetes client: configuration", () => {
  it('leaves exec and auth-provider kubeconfigs to the full client; no cluster: a Config error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-lightapi-cfg-'));
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
      assert.equal(await lightKubeApi({ kubeconfig: file }), undefined);
      const none = join(dir, 'none.kubeconfig');
      writeFileSync(none, 'apiVersion: v1\nkind: Config\nclusters: []\n');
      await assert.rejects(lightKubeApi({ kubeconfig: none }), /has no current cluster/);
      const saved = { ...process.env };
      delete process.env['KUBERNETES_SERVICE_HOST'];
      try {
        await assert.rejects(lightKubeApi({}), /not running in a cluster/);
      } finally {
        Object.assign(process.env, saved);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
