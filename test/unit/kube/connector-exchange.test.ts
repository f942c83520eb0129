/**
 * ConnectorPublisher retry/backoff/change logic and KubeConnectorSource's lookup rules with an
 * in-memory KubeApi double (the real API server runs in test/integration/kube/connector.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Node } from '@kubernetes/client-node';
import { ConnectorPublisher } from '../../../src/kube/connector-publisher.ts';
import { KubeConnectorSource } from '../../../src/kube/connector-source.ts';
import { type KubeApi, KubeApiError } from '../../../src/kube/kube-api.ts';
import { silentLogger } from '../../../src/util/logger.ts';

const DRIVER = 'cinder.csi.openstack.org';
const KEY = `${DRIVER}/connector`;

describe('ConnectorPublisher', () => {
  it('retries failed writes with backoff until one succeeds, then publishes changes only', async () => {
    const calls: { name: string; annotations: Record<string, string | null> }[] = [];
    let failures = 2;
    const api = {
      patchNodeAnnotations: async (name: string, annotations: Record<string, string | null>) => {
        calls.push({ name, annotations });
        if (failures-- > 0) throw new KubeApiError('patch node n1: HTTP 503', 503, 'ServiceUnavailable');
      },
    };
    const p = new ConnectorPublisher({
      api,
      nodeName: 'n1',
      driverName: DRIVER,
      logger: silentLogger(),
      backoffInitialMs: 5,
      backoffMaxMs: 10,
    });
    try {
      p.publish({ host: 'n1', initiator: 'iqn.a' });
      await p.whenPublished();
      assert.equal(calls.length, 3);
      assert.equal(p.stats.failures, 2);
      assert.equal(p.state, 'published');
      assert.equal(p.lastError, undefined);
      assert.deepEqual(Object.keys(calls[2]?.annotations ?? {}), [KEY]);
      assert.deepEqual(JSON.parse(String(calls[2]?.annotations[KEY])), {
        version: 1,
        connector: { host: 'n1', initiator: 'iqn.a' },
      });

      p.publish({ initiator: 'iqn.a', host: 'n1' }); // same connector, other key order
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(calls.length, 3);
      p.publish({ host: 'n1', initiator: 'iqn.b' });
      await p.whenPublished({ host: 'n1', initiator: 'iqn.b' });
      assert.equal(calls.length, 4);
    } finally {
      await p.stop();
    }
    assert.equal(p.state, 'stopped');
  });

  it('refuses connectors it must never publish', () => {
    const p = new ConnectorPublisher({
      api: { patchNodeAnnotations: async () => {} },
      nodeName: 'n1',
      driverName: DRIVER,
      logger: silentLogger(),
    });
    assert.throws(() => p.publish({ host: 'other' }), /host "other" is not the node name "n1"/);
    assert.throws(() => p.publish({ host: 'n1', auth_password: 'x' }), /secret-named field/);
    assert.equal(p.state, 'idle');
  });

  it('re-applies the annotation periodically (an operator may have removed it)', async () => {
    let writes = 0;
    const p = new ConnectorPublisher({
      api: { patchNodeAnnotations: async () => void writes++ },
      nodeName: 'n1',
      driverName: DRIVER,
      logger: silentLogger(),
      refreshMs: 10,
    });
    p.publish({ host: 'n1' });
    await new Promise((r) => setTimeout(r, 80));
    await p.stop();
    assert.ok(writes >= 3, `writes=${writes}`);
  });
});

describe('KubeConnectorSource lookup rules', () => {
  function fakeApi(nodes: Map<string, V1Node>): KubeApi & { gets: number } {
    const api = {
      gets: 0,
      getNode: async (name: string) => {
        api.gets++;
        return nodes.get(name);
      },
      nodes: {
        list: async () => ({ items: [...nodes.values()], resourceVersion: '1' }),
        watch: (_rv: string, _e: unknown, signal: AbortSignal) =>
          new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
      },
    };
    return api as unknown as KubeApi & { gets: number };
  }
  const node = (name: string, annotation?: string): V1Node => ({
    metadata: { name, annotations: annotation === undefined ? {} : { [KEY]: annotation } },
  });

  it('serves cached connectors without API calls; confirms misses with one GET', async () => {
    const nodes = new Map([
      ['n1', node('n1', JSON.stringify({ version: 1, connector: { host: 'n1', ip: '10.0.0.1' } }))],
      ['n2', node('n2')],
    ]);
    const api = fakeApi(nodes);
    const s = new KubeConnectorSource({ api, driverName: DRIVER, logger: silentLogger() }).start();
    try {
      assert.deepEqual(await s.get('n1'), { host: 'n1', ip: '10.0.0.1' });
      assert.equal(api.gets, 0);
      // n2 registered after the cache saw it: the confirming GET finds the connector
      nodes.set('n2', node('n2', JSON.stringify({ version: 1, connector: { host: 'n2' } })));
      assert.deepEqual(await s.get('n2'), { host: 'n2' });
      assert.equal(api.gets, 1);
      assert.equal(await s.get('n3'), undefined);
      nodes.set('n4', node('n4'));
      await assert.rejects(s.get('n4'), {
        name: 'ConnectorNotRegisteredError',
        message: /node plugin has not registered/,
      });
      nodes.set('n5', node('n5', '{"version":7}'));
      await assert.rejects(s.get('n5'), {
        name: 'MalformedConnectorError',
        message: /unsupported connector schema version 7/,
      });
    } finally {
      await s.stop();
    }
  });

  it('without confirmation, answers from the cache alone', async () => {
    const api = fakeApi(new Map([['n1', node('n1')]]));
    const s = new KubeConnectorSource({
      api,
      driverName: DRIVER,
      logger: silentLogger(),
      confirmMisses: false,
    }).start();
    try {
      await assert.rejects(s.get('n1'), { name: 'ConnectorNotRegisteredError' });
      assert.equal(await s.get('nx'), undefined);
      assert.equal(api.gets, 0);
    } finally {
      await s.stop();
    }
  });
});
