/**
 * The lab's real node (test/k8s/kube-node.sh: containerd + kubelet 1.20, registered with the lab
 * API server) for tests that run pods: finds it, brings it up when it is installed but down, and
 * looks at what it leaves on the host (containers in its containerd, mounts under its kubelet root,
 * pod log directories).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CoreV1Api, V1Node } from '@kubernetes/client-node';

const run = promisify(execFile);
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const KUBE_NODE = join(REPO, 'test/k8s/kube-node.sh');

/** What `kube-node.sh env` prints (KUBE_NODE_* variables). */
export interface KubeNodeEnv {
  name: string;
  kubeletRoot: string;
  /** pid files (containerd.pid, kubelet.pid: "PID STARTTIME") and containerd's state */
  run: string;
  containerdSocket: string;
  podLogs: string;
  busyboxImage: string;
  pauseImage: string;
}

export async function kubeNodeEnv(): Promise<KubeNodeEnv> {
  const { stdout } = await run('bash', [KUBE_NODE, 'env'], { timeout: 10_000 });
  const env: Record<string, string> = {};
  for (const m of stdout.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1] as string] = m[2] as string;
  const get = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`kube-node.sh env printed no ${k}`);
    return v;
  };
  return {
    name: get('KUBE_NODE_NAME'),
    kubeletRoot: get('KUBE_NODE_KUBELET_ROOT'),
    run: get('KUBE_NODE_RUN'),
    containerdSocket: get('KUBE_NODE_CONTAINERD_SOCKET'),
    podLogs: get('KUBE_NODE_POD_LOGS'),
    busyboxImage: get('KUBE_NODE_BUSYBOX_IMAGE'),
    pauseImage: get('KUBE_NODE_PAUSE_IMAGE'),
  };
}

/** Ready=True and no not-ready/unreachable taint (the node-lifecycle controller removed it). */
export function nodeReady(node: V1Node): boolean {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  const tainted = (node.spec?.taints ?? []).some(
    (t) =>
      t.key.startsWith('node.kubernetes.io/not-ready') || t.key.startsWith('node.kubernetes.io/unreachable'),
  );
  return ready && !tainted;
}

/**
 * The node's env once it is Ready; runs `kube-node.sh up` (idempotent) when it is not. Throws with
 * the script's output when it cannot come up (a root machine has to run it: no skip).
 */
export async function ensureKubeNode(core: CoreV1Api): Promise<KubeNodeEnv> {
  const env = await kubeNodeEnv();
  const ready = await core
    .readNode({ name: env.name })
    .then(nodeReady)
    .catch(() => false);
  if (!ready) {
    try {
      await run('bash', [KUBE_NODE, 'up'], { timeout: 300_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`kube-node.sh up failed: ${(e.stderr ?? e.message).slice(-2000)}`);
    }
  }
  return env;
}

/** ctr on the node's containerd, namespace k8s.io. */
export async function nodeCtr(env: KubeNodeEnv, ...args: string[]): Promise<string> {
  const { stdout } = await run('ctr', ['--address', env.containerdSocket, '--namespace', 'k8s.io', ...args], {
    timeout: 30_000,
  });
  return stdout;
}

/** Ids of the containers (sandboxes included) the node's containerd holds for a pod. */
export async function podContainers(env: KubeNodeEnv, podUid: string): Promise<string[]> {
  const out = await nodeCtr(env, 'containers', 'ls', '-q', `labels."io.kubernetes.pod.uid"==${podUid}`);
  return out.split('\n').filter((l) => l !== '');
}

/**
 * Ids of the containers (sandboxes included) of a test run's pods: those in the namespace `run` and
 * those whose pod name starts with `<run>-` in any namespace (e.g. a DaemonSet's pod).
 */
export async function runContainers(env: KubeNodeEnv, run: string): Promise<string[]> {
  const ids = new Set<string>();
  for (const filter of [
    `labels."io.kubernetes.pod.namespace"==${run}`,
    `labels."io.kubernetes.pod.name"~="^${run}-"`,
  ]) {
    for (const id of (await nodeCtr(env, 'containers', 'ls', '-q', filter)).split('\n')) if (id) ids.add(id);
  }
  return [...ids];
}

/** Mount points at or below `dir` (this process's mount namespace, the host's). */
export function mountsUnder(dir: string): string[] {
  const octal = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => octal(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/**
 * Removes an image from the node's containerd, and the `sha256:<config>` reference the CRI keeps
 * for it unless another named image has the same manifest (then that image still needs it).
 */
export async function removeNodeImage(env: KubeNodeEnv, name: string): Promise<void> {
  const rows = async () =>
    (await nodeCtr(env, 'images', 'ls'))
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/))
      .filter((r) => r.length > 2)
      .map((r) => ({ ref: r[0] as string, digest: r[2] as string }));
  const digest = (await rows()).find((r) => r.ref === name)?.digest;
  if (!digest) return;
  await nodeCtr(env, 'images', 'rm', name);
  const same = (await rows()).filter((r) => r.digest === digest);
  if (same.every((r) => r.ref.startsWith('sha256:'))) {
    for (const r of same) await nodeCtr(env, 'images', 'rm', r.ref);
  }
}
