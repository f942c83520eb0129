/**
 * The lab's real node (test/k8s/kube-node.sh: containerd + the kubelet 1.20, registered with the
 * kube-lab API server) as the end-to-end suite uses it: its variables, a kubelet stop/start,
 * and small helpers for the objects of one run (PVs and claims of statically provisioned volumes,
 * busybox pods, bounded waits, what is left under the kubelet's root).
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { KUBE_NODE, type KubeNodeEnv } from '../../integration/kube/kube-node.ts';

const run = promisify(execFile);

/** kube-node.sh SUBCOMMAND (bounded). */
export async function kubeNode(...args: string[]): Promise<string> {
  const { stdout } = await run('bash', [KUBE_NODE, ...args], { timeout: 300_000 });
  return stdout;
}

/** Stops only the node's kubelet (containers and mounts stay, as when a real node's kubelet restarts). */
export async function stopKubelet(): Promise<void> {
  await kubeNode('stop-kubelet');
}

/** Starts the kubelet again and waits until the node is Ready. */
export async function startKubelet(): Promise<void> {
  await kubeNode('start-kubelet');
}

/** Polls `check` every `everyMs` until it returns a value other than undefined/false (bounded). */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  explain?: () => Promise<string> | string,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const more = explain ? await Promise.resolve(explain()).catch((e) => String(e)) : '';
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message ?? last})` : ''}${more ? `\n${more}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A 404 from the Kubernetes client (`code`) or the OpenStack client (`status`). */
export const is404 = (err: unknown) =>
  (err as { code?: number }).code === 404 || (err as { status?: number }).status === 404;

/** Resolves true once `read()` answers 404. */
export async function gone(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (err) {
    if (is404(err)) return true;
    throw err;
  }
}

/** A pod's state in one line plus its namespace's recent events (for failure messages). */
export async function describePod(core: CoreV1Api, namespace: string, name: string): Promise<string> {
  const lines: string[] = [];
  try {
    const p = await core.readNamespacedPod({ namespace, name });
    lines.push(`pod ${name}: phase ${p.status?.phase}, ${JSON.stringify(p.status?.conditions ?? [])}`);
    for (const c of p.status?.containerStatuses ?? [])
      lines.push(`  container ${c.name}: ${JSON.stringify(c.state)}`);
  } catch (err) {
    lines.push(`pod ${name}: ${(err as Error).message}`);
  }
  try {
    const ev = await core.listNamespacedEvent({ namespace });
    for (const e of ev.items.slice(-15))
      lines.push(
        `  event ${e.involvedObject.kind}/${e.involvedObject.name} ${e.reason}: ${e.message?.slice(0, 300)}`,
      );
  } catch {
    /* events are a help only */
  }
  return lines.join('\n');
}

export interface PodSpec {
  name: string;
  claim: string;
  /** Shell script run by busybox sh. */
  script: string;
  block?: boolean;
  restartPolicy?: 'Never' | 'Always';
  /** Readiness probe command (exec, through the CRI like any probe). */
  ready?: string;
}

export const MOUNT = '/data';
export const DEVICE = '/dev/xvda';

export function podManifest(env: KubeNodeEnv, s: PodSpec): V1Pod {
  return {
    metadata: { name: s.name },
    spec: {
      hostNetwork: true,
      restartPolicy: s.restartPolicy ?? 'Never',
      terminationGracePeriodSeconds: 2,
      nodeSelector: { 'kubernetes.io/hostname': env.name },
      containers: [
        {
          name: 'c',
          image: env.busyboxImage,
          imagePullPolicy: 'IfNotPresent',
          command: ['/bin/sh', '-c', s.script],
          terminationMessagePolicy: 'File',
          ...(s.block
            ? { volumeDevices: [{ name: 'v', devicePath: DEVICE }] }
            : { volumeMounts: [{ name: 'v', mountPath: MOUNT }] }),
          ...(s.ready
            ? {
                readinessProbe: {
                  exec: { command: ['/bin/sh', '-c', s.ready] },
                  periodSeconds: 1,
                  failureThreshold: 1,
                },
              }
            : {}),
        },
      ],
      volumes: [{ name: 'v', persistentVolumeClaim: { claimName: s.claim } }],
    },
  };
}

/** Waits for a pod that runs to completion; returns its termination message. */
export async function podSucceeded(
  core: CoreV1Api,
  namespace: string,
  name: string,
  timeoutMs = 180_000,
): Promise<string> {
  const pod = await until(
    `pod ${name} to succeed`,
    async () => {
      const p = await core.readNamespacedPod({ namespace, name });
      if (p.status?.phase === 'Failed')
        throw new Error(`pod ${name} failed: ${JSON.stringify(p.status.containerStatuses)}`);
      return p.status?.phase === 'Succeeded' ? p : undefined;
    },
    timeoutMs,
    () => describePod(core, namespace, name),
    500,
  );
  return pod.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '';
}

export async function podReady(
  core: CoreV1Api,
  namespace: string,
  name: string,
  timeoutMs = 180_000,
): Promise<V1Pod> {
  return until(
    `pod ${name} to be Ready`,
    async () => {
      const p = await core.readNamespacedPod({ namespace, name });
      if (p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded')
        throw new Error(`pod ${name} ended: ${JSON.stringify(p.status.containerStatuses)}`);
      return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    },
    timeoutMs,
    () => describePod(core, namespace, name),
    500,
  );
}

/** Deletes a pod and waits until it is gone (the kubelet unmounted its volumes). */
export async function deletePod(
  core: CoreV1Api,
  namespace: string,
  name: string,
  timeoutMs = 180_000,
  gracePeriodSeconds?: number,
): Promise<void> {
  try {
    await core.deleteNamespacedPod({
      namespace,
      name,
      ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
    });
  } catch (err) {
    if (!is404(err)) throw err;
  }
  await until(
    `pod ${name} to be gone`,
    () => gone(() => core.readNamespacedPod({ namespace, name })),
    timeoutMs,
    () => describePod(core, namespace, name),
  );
}

/** Mount points (from the host's mount table) below `dir` whose path contains `needle`. */
export function mountsUnder(dir: string, needle = ''): string[] {
  const out = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.replace(/\\x20/g, ' '))
    .filter((m) => m.startsWith(`${dir}/`) && m.includes(needle));
}

/** Loop devices whose backing file is below `dir` and contains `needle` (the kubelet's block-volume locks). */
export function loopsUnder(dir: string, needle = ''): string[] {
  const out = execFileSync('losetup', ['-n', '-l', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => {
      const back = l.split(/\s+/).slice(1).join(' ');
      return back.startsWith(`${dir}/`) && back.includes(needle);
    });
}

/** statfs total bytes of a mounted filesystem. */
export function fsBytes(path: string): number {
  const out = execFileSync('df', ['-B1', '--output=size', path], { encoding: 'utf8' });
  return Number(out.trim().split('\n').pop());
}

export function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
