/**
 * The real kube-apiserver of test/k8s/kube-lab.sh for the Kubernetes integration tests: finds it,
 * brings it up when it is built but stopped, applies manifests as admin, and mints kubeconfigs for
 * ServiceAccounts (TokenRequest API) so the driver code runs with exactly the RBAC it is granted.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CoreV1Api, KubeConfig, KubernetesObject, StorageV1Api } from '@kubernetes/client-node';
import { createKubeApi, type KubeApi } from '../../../src/kube/kube-api.ts';

const run = promisify(execFile);
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const KUBE_LAB = join(REPO, 'test/k8s/kube-lab.sh');
/** The deployment's own Namespace + RBAC manifests (generated from the chart), applied as is. */
export const RBAC_YAML = [join(REPO, 'deploy/namespace.yaml'), join(REPO, 'deploy/rbac.yaml')];
/** ServiceAccounts of deploy/rbac.yaml. */
export const CONTROLLER_SA = { namespace: 'cinder-csi', name: 'cinder-csi-controller' } as const;
export const NODE_SA = { namespace: 'cinder-csi', name: 'cinder-csi-node' } as const;

export interface KubeLab {
  /** Why the tests must skip; undefined when the API server is up. */
  reason?: string;
  adminKubeconfig: string;
  kc?: KubeConfig;
  core?: CoreV1Api;
  storage?: StorageV1Api;
  /** A KubeApi (the driver's adapter) with the admin's credentials. */
  admin?: KubeApi;
  /** A kubeconfig for a ServiceAccount (minted token), removed by close(). */
  serviceAccountKubeconfig(sa: { namespace: string; name: string }): Promise<string>;
  /** kube-lab.sh sub-command (e.g. stop-apiserver), with a timeout. */
  labCommand(...args: string[]): Promise<void>;
  close(): void;
}

/** Unique, DNS-1123 friendly prefix for the objects of one test run. */
export function runPrefix(area: string): string {
  return `${area}-${randomBytes(3).toString('hex')}`;
}

async function labEnv(): Promise<Record<string, string>> {
  const { stdout } = await run('bash', [KUBE_LAB, 'env'], { timeout: 10_000 });
  const env: Record<string, string> = {};
  for (const m of stdout.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1] as string] = m[2] as string;
  return env;
}

async function apiUp(kubeconfig: string): Promise<boolean> {
  if (!existsSync(kubeconfig)) return false;
  try {
    const api = await createKubeApi({ kubeconfig, requestTimeoutMs: 3000 });
    await api.getNode('kube-lab-probe');
    return true;
  } catch {
    return false;
  }
}

/** Finds the lab API server; runs `kube-lab.sh up` when it is built but not running. */
export async function kubeLab(): Promise<KubeLab> {
  const tmp = mkdtempSync(join(tmpdir(), 'kube-it-'));
  const env = await labEnv();
  const adminKubeconfig = env.KUBE_LAB_KUBECONFIG ?? '';
  const labCommand = async (...args: string[]) => {
    await run('bash', [KUBE_LAB, ...args], { timeout: 180_000 });
  };
  const base = {
    adminKubeconfig,
    labCommand,
    close: () => rmSync(tmp, { recursive: true, force: true }),
    serviceAccountKubeconfig: async (sa: { namespace: string; name: string }) => {
      const file = join(tmp, `${sa.namespace}-${sa.name}.kubeconfig`);
      await run('bash', [KUBE_LAB, 'kubeconfig', sa.namespace, sa.name, file], { timeout: 30_000 });
      return file;
    },
  };
  if (!(await apiUp(adminKubeconfig))) {
    if (!existsSync(join(env.KUBE_LAB_BIN ?? '/nonexistent', 'kube-apiserver'))) {
      return {
        ...base,
        reason: `kube-apiserver not built: run 'test/k8s/kube-lab.sh install' (about 6 min, once per machine)`,
      };
    }
    try {
      await labCommand('up');
    } catch (err) {
      return { ...base, reason: `kube-lab.sh up failed: ${(err as { stderr?: string }).stderr ?? err}` };
    }
    if (!(await apiUp(adminKubeconfig)))
      return { ...base, reason: 'kube-apiserver did not come up (see /var/log/kube-lab)' };
  }
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  return {
    ...base,
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    storage: kc.makeApiClient(k8s.StorageV1Api),
    admin: await createKubeApi({ kubeconfig: adminKubeconfig }),
  };
}

/** Create-or-replace every object of the YAML files, in order (admin), e.g. RBAC_YAML. */
export async function applyManifests(kc: KubeConfig, files: readonly string[]): Promise<void> {
  const k8s = await import('@kubernetes/client-node');
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  const specs = files.flatMap((f) => k8s.loadAllYaml(readFileSync(f, 'utf8')) as KubernetesObject[]);
  for (const spec of specs) {
    if (!spec) continue;
    try {
      const existing = await client.read(spec as KubernetesObject & { metadata: { name: string } });
      await client.replace({
        ...spec,
        metadata: { ...spec.metadata, resourceVersion: existing.metadata?.resourceVersion },
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await client.create(spec);
    }
  }
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Swallows 404s (cleanup of objects that may already be gone). */
export async function ignore404(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}
