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
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CoreV1Api, KubeConfig, KubernetesObject, StorageV1Api } from '@kubernetes/client-node';
import { ConnectorPublisher, type ConnectorPublisherOptions } from '../../../src/kube/connector-publisher.ts';
import { KubeConnectorSource, type KubeConnectorSourceOptions } from '../../../src/kube/connector-source.ts';
import { createKubeApi, type KubeApi } from '../../../src/kube/kube-api.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { createLogger, silentLogger } from '../../../src/util/logger.ts';
import { type LabSession, labSession } from '../openstack/cinder-lab-session.ts';

const run = promisify(execFile);
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const KUBE_LAB = join(REPO, 'test/k8s/kube-lab.sh');
/** The deployment's own Namespace + RBAC manifests (generated from the chart), applied as is. */
export const RBAC_YAML = [join(REPO, 'deploy/namespace.yaml'), join(REPO, 'deploy/rbac.yaml')];
/** ServiceAccounts of deploy/rbac.yaml. */
export const CONTROLLER_SA = { namespace: 'cinder-csi', name: 'cinder-csi-controller' } as const;
export const NODE_SA = { namespace: 'cinder-csi', name: 'cinder-csi-node' } as const;
/** The driver name the suites run the driver's Kubernetes side with. */
export const DRIVER = 'cinder.csi.openstack.org';

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

/** A suite's skip reason, set by its before hook (a test calls `t.skip(skip.reason)` when set). */
export interface Skip {
  reason: string;
}

/**
 * A suite's set-up: the lab API server with the deployment's RBAC (RBAC_YAML) applied, or
 * `skip.reason` set when it is missing. The lab is returned either way, for closeKubeLab().
 */
export async function rbacKubeLab(skip: Skip): Promise<KubeLab> {
  const lab = await kubeLab();
  if (lab.reason) skip.reason = lab.reason;
  else await applyManifests(lab.kc!, RBAC_YAML);
  return lab;
}

/** The driver's KubeApi with a ServiceAccount's minted token (e.g. CONTROLLER_SA, NODE_SA). */
export async function serviceAccountApi(
  lab: KubeLab,
  sa: { namespace: string; name: string },
): Promise<KubeApi> {
  return createKubeApi({ kubeconfig: await lab.serviceAccountKubeconfig(sa) });
}

/** A suite's clean-up: deletes its Nodes (404s ignored) when the lab is up, and closes the lab. */
export async function closeKubeLab(lab: KubeLab | undefined, nodes: readonly string[] = []): Promise<void> {
  if (lab && !lab.reason) for (const name of nodes) await ignore404(lab.core!.deleteNode({ name }));
  lab?.close();
}

/**
 * rbacKubeLab() and the lab Cinder (Keystone) with a CinderClient, for the suites that need both;
 * `skip.reason` is set when either is missing (then `cinder` is undefined at run time).
 */
export async function rbacKubeCinderLab(
  skip: Skip,
): Promise<{ lab: KubeLab; os?: LabSession; cinder: CinderClient }> {
  const lab = await rbacKubeLab(skip);
  if (skip.reason) return { lab, cinder: undefined as unknown as CinderClient };
  const os = await labSession('keystone');
  if (os.reason) skip.reason = os.reason;
  const cinder = os.session ? new CinderClient({ session: os.session, logger: silentLogger() }) : undefined;
  return { lab, os, cinder: cinder as CinderClient };
}

/** Best-effort clean-up of a lab volume: its attachments deleted, then the volume once available. */
export async function deleteVolumeAndAttachments(cinder: CinderClient, volumeId: string): Promise<void> {
  for (const a of await cinder.listAttachments({ volume_id: volumeId }).catch(() => [])) {
    await cinder.deleteAttachment(a.id).catch(() => undefined);
  }
  await cinder
    .waitForVolume(volumeId, { target: ['available'], signal: AbortSignal.timeout(60_000) })
    .catch(() => undefined);
  await cinder.deleteVolume(volumeId).catch(() => undefined);
}

/** The controller's connector cache (KubeConnectorSource) on `api`, started; silent by default. */
export function startConnectorSource(
  api: KubeApi,
  extra: Partial<KubeConnectorSourceOptions> = {},
): KubeConnectorSource {
  return new KubeConnectorSource({ api, driverName: DRIVER, logger: silentLogger(), ...extra }).start();
}

/** The node plugin's ConnectorPublisher for `nodeName` on `api`; silent by default. */
export function connectorPublisher(
  api: KubeApi,
  nodeName: string,
  extra: Partial<ConnectorPublisherOptions> = {},
): ConnectorPublisher {
  return new ConnectorPublisher({ api, nodeName, driverName: DRIVER, logger: silentLogger(), ...extra });
}

/** A debug logger whose JSON lines are kept, parsed, in `lines`. */
export function captureLogger<T = Record<string, unknown>>() {
  const lines: T[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger({ destination, level: 'debug' }), lines };
}
