/**
 * Controller integration tests on the lab Cinder: the real CinderClient over an OpenStackSession
 * (keystone admin/admin, or the noauth api), the controller service called directly with an
 * RpcContext (no gRPC). Everything created is named `ctl-...` and carries a per-run cluster id, so
 * `leftovers()` can assert nothing of this run remains.
 */
import { randomBytes } from 'node:crypto';
import { StaticConnectorSource } from '../../../src/csi/connector-source.ts';
import { createControllerService, META } from '../../../src/csi/controller/index.ts';
import type { RpcContext } from '../../../src/csi/rpc.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { OpenStackSession, type ServiceSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { labAvailable, labConfig, labHostConnector } from '../../support/lab.ts';
import { createKeystoneProject, deleteKeystoneProject } from '../openstack/cinder-lab-session.ts';

export const GiB = 1024 ** 3;
export const TOPOLOGY_KEY = 'topology.cinder.csi.dev/zone';
export type Mode = 'keystone' | 'noauth';

export const rand = () => randomBytes(3).toString('hex');

export function ctx(timeoutMs = 120_000): RpcContext {
  return {
    signal: AbortSignal.timeout(timeoutMs),
    deadline: Date.now() + timeoutMs,
    requestId: `ctl-${rand()}`,
    log: silentLogger(),
  };
}

/** A node's host connector like the node plugin computes it (test/support/lab.ts). */
export const connector = labHostConnector;

export interface Lab {
  mode: Mode;
  os: OpenStackSession;
  block: ServiceSession;
  cinder: CinderClient;
  clusterId: string;
  nodes: string[];
  svc: ReturnType<typeof createControllerService>;
  /** A controller service with another cluster id (paging, isolation). */
  service(clusterId: string, cinder?: CinderClient): ReturnType<typeof createControllerService>;
  /** Admin: a volume type `ctl-<rand>` with the given extra specs; deleted by close(). */
  createType(extraSpecs: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export async function skipReason(): Promise<string | undefined> {
  return labAvailable();
}

export async function openLab(mode: Mode, project?: string): Promise<Lab> {
  const config = labConfig(mode);
  if (project && config.auth.type === 'noauth') config.auth.projectId = project;
  if (project && config.auth.type === 'password') config.auth.projectName = project;
  const os = new OpenStackSession({ config, logger: silentLogger() });
  const block = os.service('block-storage');
  const cinder = new CinderClient({ session: block, logger: silentLogger() });
  await cinder.negotiate({ signal: AbortSignal.timeout(30_000) });
  const clusterId = `ctl-${mode}-${rand()}`;
  const nodes = [`ctl-node-a-${rand()}`, `ctl-node-b-${rand()}`];
  const connectors = new StaticConnectorSource({
    [nodes[0] as string]: connector(nodes[0] as string),
    [nodes[1] as string]: connector(nodes[1] as string),
    'ctl-node-without-connector': null,
  });
  const service = (id: string, api: CinderClient = cinder) =>
    createControllerService({
      cinder: api,
      connectors,
      clusterId: id,
      driverName: 'cinder.csi.dev',
      topologyKey: TOPOLOGY_KEY,
      logger: silentLogger(),
      snapshotWaitMs: 60_000,
    });
  const types: string[] = [];
  return {
    mode,
    os,
    block,
    cinder,
    clusterId,
    nodes,
    svc: service(clusterId),
    service,
    async createType(extraSpecs) {
      const name = `ctl-type-${rand()}`;
      const res = await block.request<{ volume_type: { id: string } }>({
        method: 'POST',
        path: '/types',
        body: { volume_type: { name, extra_specs: extraSpecs } },
        operation: 'test.type.create',
      });
      types.push(res.body.volume_type.id);
      return name;
    },
    async close() {
      for (const id of types) {
        await block
          .request({ method: 'DELETE', path: `/types/${id}`, operation: 'test.type.delete' })
          .catch(() => {});
      }
      await os.close();
    },
  };
}

/** What of this cluster id is still in the lab project: volumes, snapshots, attachments, backups. */
export async function leftovers(lab: Lab, clusterIds: string[] = [lab.clusterId]): Promise<string[]> {
  const out: string[] = [];
  const vols: string[] = [];
  for await (const v of lab.cinder.listVolumes({})) {
    if (clusterIds.includes(v.metadata?.[META.cluster] ?? '')) {
      out.push(`volume ${v.id} ${v.name} ${v.status}`);
      vols.push(v.id);
    }
  }
  for await (const s of lab.cinder.listSnapshots({})) {
    if (clusterIds.includes(s.metadata?.[META.cluster] ?? ''))
      out.push(`snapshot ${s.id} ${s.name} ${s.status}`);
  }
  for (const a of await lab.cinder.listAttachments({})) {
    if (vols.includes(a.volume_id)) out.push(`attachment ${a.id} of ${a.volume_id}`);
  }
  return out;
}

/** Waits (bounded) until `leftovers()` is empty; Cinder deletes asynchronously. */
export async function settleLeftovers(
  lab: Lab,
  clusterIds?: string[],
  timeoutMs = 30_000,
): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let left = await leftovers(lab, clusterIds);
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    left = await leftovers(lab, clusterIds);
  }
  return left;
}

/** Best-effort removal of everything of these clusters (after a failed test). */
export async function purge(lab: Lab, clusterIds: string[] = [lab.clusterId]): Promise<void> {
  const vols: string[] = [];
  for await (const v of lab.cinder.listVolumes({})) {
    if (clusterIds.includes(v.metadata?.[META.cluster] ?? '')) vols.push(v.id);
  }
  for (const a of await lab.cinder.listAttachments({}).catch(() => [])) {
    if (vols.includes(a.volume_id)) await lab.cinder.deleteAttachment(a.id).catch(() => {});
  }
  for await (const s of lab.cinder.listSnapshots({})) {
    if (clusterIds.includes(s.metadata?.[META.cluster] ?? ''))
      await lab.cinder.deleteSnapshot(s.id).catch(() => {});
  }
  await new Promise((r) => setTimeout(r, 1500));
  for (const id of vols) await lab.cinder.deleteVolume(id, { cascade: true }).catch(() => {});
}

/** A suite's after hook: purges what the run left of these clusters (best effort), closes the lab. */
export async function closeLab(lab: Lab | undefined, clusterIds?: string[]): Promise<void> {
  if (!lab) return;
  await purge(lab, clusterIds).catch(() => {});
  await lab.close();
}

/**
 * `cinder` whose createVolume aborts `ac` with a TimeoutError right after POST /volumes returned:
 * a CSI deadline that fires while Cinder creates (deterministic, on the real Cinder).
 */
export function deadlineAfterCreate(cinder: CinderClient, ac: AbortController): CinderClient {
  return new Proxy(cinder, {
    get(target, prop, receiver) {
      if (prop === 'createVolume') {
        return async (...args: Parameters<CinderClient['createVolume']>) => {
          const v = await target.createVolume(...args);
          const e = new Error('deadline');
          e.name = 'TimeoutError';
          ac.abort(e);
          return v;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export function createReq(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    capacity_range: null,
    volume_capabilities: [
      {
        mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' },
        access_mode: { mode: 'SINGLE_NODE_WRITER' as const },
        access_type: 'mount' as const,
      },
    ],
    parameters: {},
    secrets: {},
    volume_content_source: null,
    accessibility_requirements: null,
    mutable_parameters: {},
    ...extra,
  };
}

export function mountCap(
  mode:
    | 'SINGLE_NODE_WRITER'
    | 'MULTI_NODE_MULTI_WRITER'
    | 'MULTI_NODE_SINGLE_WRITER'
    | 'MULTI_NODE_READER_ONLY'
    | 'SINGLE_NODE_READER_ONLY' = 'SINGLE_NODE_WRITER',
) {
  return {
    mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' },
    access_mode: { mode },
    access_type: 'mount' as const,
  };
}

export function pubReq(volumeId: string, nodeId: string, readonly = false) {
  return {
    volume_id: volumeId,
    node_id: nodeId,
    volume_capability: mountCap(),
    readonly,
    secrets: {},
    volume_context: {},
  };
}

/**
 * A lab handle on a temporary project with a `gigabytes` quota, for quota tests that must not
 * touch the shared projects: keystone → a new Keystone project (admin gets the admin role on it),
 * noauth → a made-up hex project id. `cleanup()` deletes its volumes, its quota and the project.
 */
export async function quotaProject(
  admin: Lab,
  gigabytes: number,
): Promise<{ lab: Lab; cleanup: () => Promise<void> }> {
  let project = randomBytes(16).toString('hex');
  let keystoneId: string | undefined;
  if (admin.mode === 'keystone') {
    project = `ctl-quota-${rand()}`;
    keystoneId = await createKeystoneProject(admin.os, project, 'controller quota test (temporary)');
  }
  const projectId = keystoneId ?? project;
  const setQuota = (lab: Lab) =>
    lab.block.request({
      method: 'PUT',
      path: `/os-quota-sets/${projectId}`,
      body: { quota_set: { gigabytes } },
      operation: 'test.quota.set',
    });
  const lab = await openLab(admin.mode, project);
  await setQuota(admin.mode === 'keystone' ? admin : lab);
  return {
    lab,
    cleanup: async () => {
      await purge(lab).catch(() => {});
      await settleLeftovers(lab, [lab.clusterId], 20_000).catch(() => {});
      await (admin.mode === 'keystone' ? admin : lab).block
        .request({ method: 'DELETE', path: `/os-quota-sets/${projectId}`, operation: 'test.quota.delete' })
        .catch(() => {});
      await lab.close();
      if (keystoneId) await deleteKeystoneProject(admin.os, keystoneId).catch(() => {});
    },
  };
}

/**
 * The real client with one fault: the `nth` (1-based) call of `method` loses its response after
 * Cinder acted (`after`: the call really runs, then a connection reset is thrown, like a response
 * dropped on the way back or the controller dying right after the request), or fails before
 * reaching Cinder (`before`: like a crash just before the call). Every other call goes through.
 */
export function lossy(
  real: CinderClient,
  method: keyof CinderClient,
  when: 'before' | 'after',
  nth = 1,
): CinderClient & { faults: number } {
  let calls = 0;
  const state = { faults: 0 };
  const reset = () =>
    new OpenStackError({
      status: undefined,
      faultMessage: 'socket hang up (test fault: response lost)',
      method: 'POST',
      url: `lab/${String(method)}`,
      code: 'ECONNRESET',
    });
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'faults') return state.faults;
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop !== method) return value.bind(target);
      return async (...args: unknown[]) => {
        calls++;
        if (calls !== nth) return value.apply(target, args);
        state.faults++;
        if (when === 'before') throw reset();
        await value.apply(target, args);
        throw reset();
      };
    },
  }) as CinderClient & { faults: number };
}
