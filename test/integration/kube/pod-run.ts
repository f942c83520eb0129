/**
 * One pod on the lab's real node (test/k8s/kube-node.sh), start to finish, for the tests that only
 * need a container to run there (node.test.ts: the busybox image; node-image.test.ts: the project's
 * image): a namespace pods can be created in, a one-container hostNetwork pod bound to the node by
 * the scheduler and waited for until it ended, its container log (the kubelet's file: the lab API
 * server cannot proxy `kubectl logs`), and its removal, waited for until nothing of it is left on
 * the node (containers in containerd, mounts, pod directory, log directory).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';
import { readContainerLog } from '../../support/kube-node/container-log.ts';
import { gone } from '../../support/kube-node/node-lab.ts';
import { eventually } from './kube-lab.ts';
import { type KubeNodeEnv, mountsUnder, podContainers } from './kube-node.ts';

/**
 * Creates a namespace and waits until pods can be created in it: kube-apiserver 1.20's
 * ServiceAccount admission needs the default ServiceAccount and its token Secret (the token
 * controller adds the Secret a moment after the ServiceAccount).
 */
export async function createPodNamespace(core: CoreV1Api, name: string, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  await core.createNamespace({ body: { metadata: { name } } });
  await eventually(
    `the default ServiceAccount of ${name} and its token`,
    () =>
      core.readNamespacedServiceAccount({ namespace: name, name: 'default' }).then(
        (sa) => (sa.secrets?.length ?? 0) > 0,
        () => false,
      ),
    60_000,
  );
}

export interface PodToRun {
  namespace: string;
  name: string;
  /** The pod's only container; imagePullPolicy defaults to Never (nothing can be pulled here). */
  container: V1Container;
  automountServiceAccountToken?: boolean;
  /** How long the pod may take to end (default 180 s). */
  timeoutMs?: number;
  /** The test's signal: aborted, no pod is created and the wait ends (test-work.ts). */
  signal?: AbortSignal;
}

export interface PodRun {
  /** The pod as last read: phase Succeeded or Failed. */
  pod: V1Pod;
  uid: string;
  /** From creation until the pod ended. */
  ms: number;
  /** The kubelet's log directory of the pod (`<pod logs>/<ns>_<name>_<uid>`). */
  logDir: string;
  /** The container's log (CRI format: "<time> stdout F <line>"; its newest files, container-log.ts). */
  log(): string;
}

/**
 * Runs a one-container pod (restartPolicy Never, hostNetwork) on the lab node and waits until it
 * ended; the caller asserts on `pod.status` (it is not deleted: see removePod).
 */
export async function runPodToCompletion(core: CoreV1Api, env: KubeNodeEnv, p: PodToRun): Promise<PodRun> {
  const started = Date.now();
  p.signal?.throwIfAborted();
  const created = await core.createNamespacedPod({
    namespace: p.namespace,
    body: {
      metadata: { name: p.name },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': env.name },
        hostNetwork: true,
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 1,
        ...(p.automountServiceAccountToken === undefined
          ? {}
          : { automountServiceAccountToken: p.automountServiceAccountToken }),
        containers: [{ imagePullPolicy: 'Never', ...p.container }],
      },
    },
  });
  const uid = created.metadata!.uid!;
  let pod = created;
  await eventually(
    `pod ${p.name} to end`,
    async () => {
      p.signal?.throwIfAborted();
      pod = await core.readNamespacedPod({ namespace: p.namespace, name: p.name });
      return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    },
    p.timeoutMs ?? 180_000,
  );
  const ms = Date.now() - started;
  const logDir = join(env.podLogs, `${p.namespace}_${p.name}_${uid}`);
  return {
    pod,
    uid,
    ms,
    logDir,
    log: () => readContainerLog(join(logDir, p.container.name)),
  };
}

/**
 * Deletes the pod and waits until it is gone from the API and the node removed everything of it:
 * its containers and sandbox, mounts under and the pod directory, its log directory (the kubelet
 * removes the directories at once, containers and logs in its container GC, every minute).
 */
export async function removePod(
  core: CoreV1Api,
  env: KubeNodeEnv,
  run: { pod: V1Pod; uid: string; logDir: string },
  timeoutMs = 180_000,
): Promise<void> {
  const namespace = run.pod.metadata!.namespace!;
  const name = run.pod.metadata!.name!;
  await core.deleteNamespacedPod({ namespace, name }).catch((err: { code?: number }) => {
    if (err.code !== 404) throw err;
  });
  await eventually(
    `pod ${name} to be gone from the API`,
    () => gone(() => core.readNamespacedPod({ namespace, name })),
    60_000,
  );
  const podDir = join(env.kubeletRoot, 'pods', run.uid);
  await eventually(
    `the node to remove pod ${name} (containers, mounts, pod and log directories)`,
    async () =>
      (await podContainers(env, run.uid)).length === 0 &&
      mountsUnder(podDir).length === 0 &&
      !existsSync(podDir) &&
      !existsSync(run.logDir),
    timeoutMs,
  );
}
