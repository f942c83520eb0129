/**
 * Node topology from the Node's zone label, read with the node ServiceAccount's minted token on
 * the real kube-apiserver. Skips when the API server is not built.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createKubeApi, type KubeApi } from '../../../src/kube/kube-api.ts';
import { DEFAULT_ZONE_LABEL, zoneFromNodeLabel } from '../../../src/kube/topology.ts';
import { closeKubeLab, type KubeLab, NODE_SA, rbacKubeLab, runPrefix } from './kube-lab.ts';

const RUN = runPrefix('kube-topo-it');
let lab: KubeLab;
let api: KubeApi;
let kubeconfig: string;
const skip = { reason: '' };

describe('zoneFromNodeLabel on a real kube-apiserver', { timeout: 60_000 }, () => {
  before(async () => {
    lab = await rbacKubeLab(skip);
    if (skip.reason) return;
    kubeconfig = await lab.serviceAccountKubeconfig(NODE_SA);
    api = await createKubeApi({ kubeconfig });
    await lab.core!.createNode({
      body: {
        metadata: { name: `${RUN}-z`, labels: { [DEFAULT_ZONE_LABEL]: 'nova-az1', 'example.com/az': 'az9' } },
      },
    });
    await lab.core!.createNode({ body: { metadata: { name: `${RUN}-nolabel` } } });
  });
  after(() => closeKubeLab(lab, [`${RUN}-z`, `${RUN}-nolabel`]));

  it('reads the zone from the default label, a configured label, or reports none', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    assert.equal(await zoneFromNodeLabel(api, `${RUN}-z`), 'nova-az1');
    assert.equal(await zoneFromNodeLabel(api, `${RUN}-z`, 'example.com/az'), 'az9');
    assert.equal(await zoneFromNodeLabel(api, `${RUN}-nolabel`, DEFAULT_ZONE_LABEL), undefined);
  });

  it('retries while the API server is unreachable, then fails with the cause', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const real = await createKubeApi({ kubeconfig, requestTimeoutMs: 2000 });
    let calls = 0;
    const counting = {
      getNode: (name: string, o?: { signal?: AbortSignal }) => {
        calls++;
        return calls < 3
          ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6443'))
          : real.getNode(name, o);
      },
    };
    assert.equal(
      await zoneFromNodeLabel(counting, `${RUN}-z`, DEFAULT_ZONE_LABEL, undefined, { backoffMs: 10 }),
      'nova-az1',
    );
    assert.equal(calls, 3);
    calls = -100;
    await assert.rejects(
      zoneFromNodeLabel(counting, `${RUN}-z`, DEFAULT_ZONE_LABEL, undefined, { attempts: 2, backoffMs: 10 }),
      {
        name: 'KubeApiError',
        message: /Kubernetes API unreachable: connect ECONNREFUSED/,
      },
    );
  });

  it('a missing Node is an error (NodeGetInfo must not register the node without its zone)', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    await assert.rejects(zoneFromNodeLabel(api, `${RUN}-missing`), {
      name: 'KubeApiError',
      status: 404,
      message: /the Node does not exist/,
    });
  });
});
