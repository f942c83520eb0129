/**
 * The lab's real node (test/k8s/kube-node.sh): the kubelet 1.20 on a private containerd is a Ready,
 * untainted Node of the lab API server, and runs a pod the way a cluster does: the scheduler binds
 * it, the kubelet starts the sandbox (the pause image built here) and a container of the busybox
 * image built here (hostNetwork), the container's output lands in its log, and after the pod is
 * deleted nothing of it is left on the node (containers, mounts under the kubelet root, pod
 * directory, log directory).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { gone } from '../../support/kube-node/node-lab.ts';
import { eventually, ignore404, type KubeLab, kubeLab, runPrefix } from './kube-lab.ts';
import { ensureKubeNode, type KubeNodeEnv, mountsUnder, nodeReady, podContainers } from './kube-node.ts';

const RUN = runPrefix('node');
let lab: KubeLab | undefined;
let node: KubeNodeEnv | undefined;
const skip = { reason: '' };

describe('kube-node: a real kubelet and containerd as a node of the lab API server', () => {
  before(async () => {
    if (process.getuid?.() !== 0) {
      skip.reason = 'needs root (runs the kubelet and containerd)';
      return;
    }
    lab = await kubeLab();
    if (lab.reason) throw new Error(lab.reason);
    node = await ensureKubeNode(lab.core!);
  });
  after(async () => {
    if (lab?.core) await ignore404(lab.core.deleteNamespace({ name: RUN }));
    lab?.close();
  });

  test('the node is registered, Ready and untainted', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const n = await lab!.core!.readNode({ name: node!.name });
    assert.ok(
      nodeReady(n),
      `node conditions: ${JSON.stringify(n.status?.conditions?.map((c) => [c.type, c.status]))}`,
    );
    assert.equal(n.metadata?.labels?.['kubernetes.io/hostname'], node!.name);
    assert.match(n.status?.nodeInfo?.containerRuntimeVersion ?? '', /^containerd:\/\/1\.6\./);
    assert.match(n.status?.nodeInfo?.kubeletVersion ?? '', /^v1\.20\./);
  });

  test("the daemons do not hold kube-node.sh's lock (a second `up` would wait for it)", async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    for (const name of ['containerd', 'kubelet']) {
      const pid = readFileSync(join(node!.run, `${name}.pid`), 'utf8').split(' ')[0]!;
      const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      assert.ok(!fds.includes('/run/lock/kube-node.lock'), `${name} (pid ${pid}) holds the lock`);
    }
  });

  test('a hostNetwork pod of the busybox image runs, logs, completes; deleting it leaves nothing', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    const core = lab!.core!;
    const env = node!;
    await core.createNamespace({ body: { metadata: { name: RUN } } });
    // the ServiceAccount admission plugin (1.20) needs the namespace's default ServiceAccount and
    // its token Secret (the token controller adds it a moment after the ServiceAccount)
    await eventually(
      'the default ServiceAccount and its token',
      () =>
        core.readNamespacedServiceAccount({ namespace: RUN, name: 'default' }).then(
          (sa) => (sa.secrets?.length ?? 0) > 0,
          () => false,
        ),
      60_000,
    );
    const line = `hello from ${RUN}`;
    const started = Date.now();
    const created = await core.createNamespacedPod({
      namespace: RUN,
      body: {
        metadata: { name: 'writer' },
        spec: {
          nodeSelector: { 'kubernetes.io/hostname': env.name },
          hostNetwork: true,
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'c',
              image: env.busyboxImage,
              imagePullPolicy: 'Never',
              command: [
                'sh',
                '-c',
                `echo "${line}"; test -f /var/run/secrets/kubernetes.io/serviceaccount/token`,
              ],
            },
          ],
        },
      },
    });
    const uid = created.metadata!.uid!;
    const read = () => core.readNamespacedPod({ namespace: RUN, name: 'writer' });
    let pod: V1Pod | undefined;
    await eventually(
      'the pod to complete',
      async () => {
        pod = await read();
        return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
      },
      180_000,
    );
    t.diagnostic(`pod created -> Succeeded in ${Date.now() - started} ms`);
    assert.equal(pod!.spec?.nodeName, env.name, 'bound to the lab node by the scheduler');
    assert.equal(
      pod!.status?.phase,
      'Succeeded',
      `pod status: ${JSON.stringify(pod!.status?.containerStatuses?.[0]?.state)}`,
    );
    assert.equal(pod!.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
    assert.equal((await podContainers(env, uid)).length >= 2, true, 'the sandbox and the container exist');

    // the kubelet's container log (CRI format: "<time> stdout F <line>")
    const logDir = join(env.podLogs, `${RUN}_writer_${uid}`);
    const log = readFileSync(join(logDir, 'c', '0.log'), 'utf8');
    assert.match(log, new RegExp(`^\\S+ stdout F ${line}$`, 'm'));

    await core.deleteNamespacedPod({ namespace: RUN, name: 'writer' });
    await eventually('the pod to be gone from the API', () => gone(read), 60_000);
    // the kubelet removes the pod's directories at once and its containers and logs in its
    // container garbage collection (every minute)
    const podDir = join(env.kubeletRoot, 'pods', uid);
    await eventually(
      'the node to remove the pod (containers, mounts, pod and log directories)',
      async () =>
        (await podContainers(env, uid)).length === 0 &&
        mountsUnder(podDir).length === 0 &&
        !existsSync(podDir) &&
        !existsSync(logDir),
      180_000,
    );
    const left = readdirSync(env.podLogs).filter((d) => d.startsWith(`${RUN}_`));
    assert.deepEqual(left, []);
  });
});
