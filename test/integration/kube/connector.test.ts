/**
 * Connector exchange against the real kube-apiserver (test/k8s/kube-lab.sh): the node plugin's
 * ConnectorPublisher runs with the node ServiceAccount's minted token, the controller's
 * KubeConnectorSource with the controller ServiceAccount's (RBAC of deploy/rbac.yaml). Nodes are
 * created by the admin (there is no kubelet). Skips when the API server is not built.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { connectorAnnotationKey, parseConnectorAnnotation } from '../../../src/kube/connector-annotation.ts';
import { ConnectorNotRegisteredError, MalformedConnectorError } from '../../../src/kube/connector-source.ts';
import type { KubeApi } from '../../../src/kube/kube-api.ts';
import type { HostConnector } from '../../../src/openstack/cinder-types.ts';
import {
  CONTROLLER_SA,
  captureLogger,
  closeKubeLab,
  connectorPublisher,
  DRIVER,
  eventually,
  type KubeLab,
  NODE_SA,
  rbacKubeLab,
  runPrefix,
  serviceAccountApi,
  startConnectorSource,
} from './kube-lab.ts';

const RUN = runPrefix('kube-conn-it');
const KEY = connectorAnnotationKey(DRIVER);
/** Connector number `n` of node `node` (its host is the node name, as the controller requires). */
const connector = (n: number, node: string): HostConnector => ({
  host: node,
  initiator: `iqn.1993-08.org.debian:01:${RUN}-${n}`,
  ip: `10.0.0.${n}`,
  platform: 'x86_64',
  os_type: 'linux',
  multipath: false,
  do_local_attach: false,
});

let lab: KubeLab;
const skip = { reason: '' };
const created: string[] = [];
let nodeApi: KubeApi;
let controllerApi: KubeApi;

async function createNode(name: string, annotations?: Record<string, string>) {
  await lab.core!.createNode({ body: { metadata: { name, annotations, labels: { 'kube-it-run': RUN } } } });
  created.push(name);
}

async function annotationOf(name: string): Promise<string | undefined> {
  return (await lab.core!.readNode({ name })).metadata?.annotations?.[KEY];
}

describe('connector exchange on a real kube-apiserver', { timeout: 180_000 }, () => {
  before(async () => {
    lab = await rbacKubeLab(skip);
    if (skip.reason) return;
    nodeApi = await serviceAccountApi(lab, NODE_SA);
    controllerApi = await serviceAccountApi(lab, CONTROLLER_SA);
  });
  after(() => closeKubeLab(lab, created));

  it('publishes the connector on its Node and updates it when it changes (node ServiceAccount)', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const name = `${RUN}-pub`;
    await createNode(name, { 'other.example.com/keep': 'yes' });
    const publisher = connectorPublisher(nodeApi, name);
    try {
      publisher.publish(connector(1, name));
      await publisher.whenPublished();
      const first = parseConnectorAnnotation((await annotationOf(name)) ?? '');
      assert.deepEqual(first, { ok: true, connector: connector(1, name) });
      assert.equal(JSON.parse((await annotationOf(name)) ?? '{}').version, 1);

      publisher.publish(connector(1, name)); // unchanged: no new write
      assert.equal(publisher.stats.writes, 1);

      publisher.publish(connector(2, name));
      await publisher.whenPublished(connector(2, name));
      assert.deepEqual(parseConnectorAnnotation((await annotationOf(name)) ?? ''), {
        ok: true,
        connector: connector(2, name),
      });
      // merge patch: other annotations untouched
      const node = await lab.core!.readNode({ name });
      assert.equal(node.metadata?.annotations?.['other.example.com/keep'], 'yes');
      assert.equal(publisher.state, 'published');
    } finally {
      await publisher.stop();
    }
  });

  it('controller cache sees Nodes added, annotated, re-annotated and deleted (watch, no GETs)', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const source = startConnectorSource(controllerApi);
    const seen: string[] = [];
    const name = `${RUN}-cache`;
    source.onNodeChange((type, n) => {
      if (n === name) seen.push(type);
    });
    try {
      await source.ready;
      const lists = source.stats.lists;
      await createNode(name);
      await eventually('node in cache', () => source.hasNode(name));
      assert.equal(source.cachedConnector(name), undefined);

      await lab.core!.patchNode(
        {
          name,
          body: {
            metadata: {
              annotations: { [KEY]: JSON.stringify({ version: 1, connector: connector(3, name) }) },
            },
          },
        },
        mergePatch(),
      );
      await eventually('connector in cache', () => source.cachedConnector(name)?.ip === '10.0.0.3');
      await lab.core!.patchNode(
        {
          name,
          body: {
            metadata: {
              annotations: { [KEY]: JSON.stringify({ version: 1, connector: connector(4, name) }) },
            },
          },
        },
        mergePatch(),
      );
      await eventually('updated connector in cache', () => source.cachedConnector(name)?.ip === '10.0.0.4');

      await lab.core!.deleteNode({ name });
      await eventually('node gone from cache', () => !source.hasNode(name));
      // The control plane's node controllers (lifecycle, taints) may modify the Node too: the
      // cache must see it added first, deleted last, and at least the two annotation changes.
      assert.equal(seen[0], 'ADDED');
      assert.equal(seen.at(-1), 'DELETED');
      const middle = seen.slice(1, -1);
      assert.ok(middle.length >= 2 && middle.every((e) => e === 'MODIFIED'), `events: ${seen.join(',')}`);
      assert.equal(source.stats.lists, lists, 'changes arrived through the watch, not by re-listing');
      assert.equal(await source.get(name), undefined, 'deleted node → undefined (NOT_FOUND)');
    } finally {
      await source.stop();
    }
  });

  it('publish lookup before the node plugin registers → not registered; after → the connector; malformed → reason', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const source = startConnectorSource(controllerApi);
    const name = `${RUN}-reg`;
    const publisher = connectorPublisher(nodeApi, name);
    try {
      await source.ready;
      assert.equal(await source.get(`${RUN}-missing`), undefined, 'missing node → undefined (NOT_FOUND)');
      await createNode(name);
      // right after creation: the cache may not have the node yet; the miss is confirmed by a GET
      await assert.rejects(source.get(name), (err: Error) => {
        assert.ok(err instanceof ConnectorNotRegisteredError);
        assert.match(err.message, /node plugin has not registered/);
        return true;
      });

      publisher.publish(connector(5, name));
      await publisher.whenPublished();
      assert.deepEqual(await source.get(name), connector(5, name));

      await lab.core!.patchNode(
        { name, body: { metadata: { annotations: { [KEY]: '{"version":1,' } } } },
        mergePatch(),
      );
      await eventually('malformed annotation in cache', async () => {
        try {
          await source.get(name);
          return false;
        } catch (err) {
          return err instanceof MalformedConnectorError;
        }
      });
      await assert.rejects(source.get(name), /malformed host connector annotation .*not valid JSON/);

      const foreign = JSON.stringify({ version: 1, connector: { ...connector(5, name), host: 'elsewhere' } });
      await lab.core!.patchNode(
        { name, body: { metadata: { annotations: { [KEY]: foreign } } } },
        mergePatch(),
      );
      await eventually(
        'foreign-host annotation in cache',
        () => source.cachedConnector(name)?.host === 'elsewhere',
      );
      await assert.rejects(source.get(name), /its host is "elsewhere", not the node name/);
    } finally {
      await publisher.stop();
      await source.stop();
    }
  });

  it('survives an API server restart: cache keeps serving, then recovers; publisher retries until published', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const { logger, lines } = captureLogger();
    const backoff = { backoffInitialMs: 200, backoffMaxMs: 1000 };
    const source = startConnectorSource(controllerApi, backoff);
    const name = `${RUN}-restart`;
    const later = `${RUN}-after`;
    const publisher = connectorPublisher(nodeApi, name, { logger, ...backoff });
    try {
      await source.ready;
      await createNode(name, { [KEY]: JSON.stringify({ version: 1, connector: connector(6, name) }) });
      await eventually('node in cache', () => source.cachedConnector(name)?.ip === '10.0.0.6');
      const errorsBefore = source.stats.errors;

      await lab.labCommand('stop-apiserver');
      try {
        // served from the cache while the API server is down
        assert.deepEqual(await source.get(name), connector(6, name));
        publisher.publish(connector(7, name));
        await eventually('publisher failing', () => publisher.state === 'failing', 10_000);
        assert.match(publisher.lastError ?? '', /unreachable|timed out/);
        const logged = lines.find((l) => l.level === 'error');
        assert.match(
          String(logged?.msg),
          /cannot publish the host connector .*Kubernetes API unavailable.*keeps serving/,
        );
      } finally {
        await lab.labCommand('start-apiserver');
      }
      await publisher.whenPublished();
      assert.ok(lines.some((l) => String(l.msg).includes('after failures')));
      await eventually(
        'cache sees the publication made after the restart',
        () => source.cachedConnector(name)?.ip === '10.0.0.7',
        30_000,
      );
      await createNode(later);
      await eventually('cache sees a node created after the restart', () => source.hasNode(later), 30_000);
      assert.ok(source.stats.errors > errorsBefore, 'the watch did break');
    } finally {
      await publisher.stop();
      await source.stop();
    }
  });
});

function mergePatch() {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}
