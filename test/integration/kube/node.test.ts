/**
 * The lab's real node (test/k8s/kube-node.sh): the kubelet 1.20 on a private containerd is a Ready,
 * untainted Node of the lab API server, and runs a pod the way a cluster does: the scheduler binds
 * it, the kubelet starts the sandbox (the pause image built here) and a container of the busybox
 * image built here (hostNetwork), the container's output lands in its log, and after the pod is
 * deleted nothing of it is left on the node (containers, mounts under the kubelet root, pod
 * directory, log directory).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestWork } from '../../support/test-work.ts';
import { ignore404, type KubeLab, kubeLab, runPrefix } from './kube-lab.ts';
import { ensureKubeNode, type KubeNodeEnv, nodeReady, podContainers } from './kube-node.ts';
import { createPodNamespace, removePod, runPodToCompletion } from './pod-run.ts';

const RUN = runPrefix('node');
let lab: KubeLab | undefined;
let node: KubeNodeEnv | undefined;
const skip = { reason: '' };
const work = new TestWork();

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
    await work.settled(); // a test that timed out may still be creating the namespace or the pod
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

  test('the kubelet root is a shared mount, as on a node (a Bidirectional mount of it needs that)', async (t) => {
    if (skip.reason) return t.skip(skip.reason);
    // the kubelet makes its root an rshared bind mount of itself when it starts; containerd
    // refuses Bidirectional/HostToContainer propagation on a hostPath whose host mount is private
    const out = execFileSync(
      'findmnt',
      ['-n', '-o', 'TARGET,PROPAGATION', '--mountpoint', node!.kubeletRoot],
      {
        encoding: 'utf8',
      },
    );
    assert.match(out.trim(), new RegExp(`^${node!.kubeletRoot}\\s+shared$`));
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

  test('a hostNetwork pod of the busybox image runs, logs, completes; deleting it leaves nothing', (t) =>
    work.run(t, async (signal) => {
      if (skip.reason) return t.skip(skip.reason);
      const core = lab!.core!;
      const env = node!;
      await createPodNamespace(core, RUN, signal);
      const line = `hello from ${RUN}`;
      const ran = await runPodToCompletion(core, env, {
        signal,
        namespace: RUN,
        name: 'writer',
        container: {
          name: 'c',
          image: env.busyboxImage,
          command: [
            'sh',
            '-c',
            `echo "${line}"; test -f /var/run/secrets/kubernetes.io/serviceaccount/token`,
          ],
        },
      });
      t.diagnostic(`pod created -> Succeeded in ${ran.ms} ms`);
      const pod = ran.pod;
      assert.equal(pod.spec?.nodeName, env.name, 'bound to the lab node by the scheduler');
      assert.equal(
        pod.status?.phase,
        'Succeeded',
        `pod status: ${JSON.stringify(pod.status?.containerStatuses?.[0]?.state)}`,
      );
      assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
      assert.equal(
        (await podContainers(env, ran.uid)).length >= 2,
        true,
        'the sandbox and the container exist',
      );
      // the kubelet's container log (CRI format: "<time> stdout F <line>")
      assert.match(ran.log(), new RegExp(`^\\S+ stdout F ${line}$`, 'm'));

      await removePod(core, env, ran);
      const left = readdirSync(env.podLogs).filter((d) => d.startsWith(`${RUN}_`));
      assert.deepEqual(left, []);
    }));
});
