/**
 * STAND-IN for the Kubernetes sidecar external-attacher (the real image cannot be fetched here),
 * kept to its documented behaviour for one driver:
 *   - VolumeAttachments with `spec.attacher` = the driver name (polled from the real API server);
 *   - attach: add the finalizer `external-attacher/<driver name, non-alphanumerics as '-'>`, read
 *     the node id from the node's CSINode (`spec.drivers[name].nodeID`), call
 *     ControllerPublishVolume with the PV's volumeHandle, volume capability (access mode from the
 *     PV's accessModes; mount + fsType + mountOptions, or block), readOnly and volumeAttributes,
 *     then set `status.attached: true` + `status.attachmentMetadata` (the publish_context); a
 *     failure is written to `status.attachError` and retried with backoff (0.5 s → 8 s);
 *   - detach (deletionTimestamp set): ControllerUnpublishVolume, `status.attached: false`, then
 *     remove the finalizer (failures to `status.detachError`, retried).
 * It does not add the PV finalizer, handle secrets or list-and-reconcile ControllerPublish state
 * (ListVolumes published nodes) the way the real sidecar can.
 */
import type {
  CoreV1Api,
  StorageV1Api,
  V1PersistentVolume,
  V1VolumeAttachment,
} from '@kubernetes/client-node';
import type { CsiTestClient } from '../csi-client.ts';

export interface AttacherOptions {
  driverName: string;
  csi: CsiTestClient;
  core: CoreV1Api;
  storage: StorageV1Api;
  pollMs?: number;
  log?: (msg: string) => void;
}

const ACCESS: Record<string, string> = {
  ReadWriteOnce: 'SINGLE_NODE_WRITER',
  ReadOnlyMany: 'MULTI_NODE_READER_ONLY',
  ReadWriteMany: 'MULTI_NODE_MULTI_WRITER',
  ReadWriteOncePod: 'SINGLE_NODE_SINGLE_WRITER',
};

/** The CSI VolumeCapability for a PV, as the external-attacher and the kubelet build it. */
export function volumeCapability(pv: V1PersistentVolume): Record<string, unknown> {
  const mode = ACCESS[pv.spec?.accessModes?.[0] ?? 'ReadWriteOnce'] ?? 'SINGLE_NODE_WRITER';
  if (pv.spec?.volumeMode === 'Block') return { block: {}, access_mode: { mode } };
  return {
    mount: { fs_type: pv.spec?.csi?.fsType ?? '', mount_flags: pv.spec?.mountOptions ?? [] },
    access_mode: { mode },
  };
}

const message = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 500);

export class ExternalAttacher {
  readonly #o: AttacherOptions;
  readonly finalizer: string;
  /** ControllerPublish/Unpublish calls made, e.g. `publish pv-x node-1` (for assertions and reports). */
  readonly calls: string[] = [];
  #running = false;
  #loop: Promise<void> | undefined;
  readonly #retryAt = new Map<string, { at: number; delay: number }>();

  constructor(opts: AttacherOptions) {
    this.#o = opts;
    this.finalizer = `external-attacher/${opts.driverName.replace(/[^a-zA-Z0-9-]/g, '-')}`;
  }

  start(): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        try {
          await this.syncOnce();
        } catch (err) {
          this.#o.log?.(`attacher: list failed: ${message(err)}`);
        }
        await new Promise((r) => setTimeout(r, this.#o.pollMs ?? 300));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** One pass over this driver's VolumeAttachments. */
  async syncOnce(): Promise<void> {
    const list = await this.#o.storage.listVolumeAttachment();
    for (const va of list.items) {
      if (va.spec.attacher !== this.#o.driverName) continue;
      const name = va.metadata?.name ?? '';
      const backoff = this.#retryAt.get(name);
      if (backoff && Date.now() < backoff.at) continue;
      try {
        if (va.metadata?.deletionTimestamp) {
          if (va.metadata.finalizers?.includes(this.finalizer)) await this.#detach(va);
        } else if (!va.status?.attached) {
          await this.#attach(va);
        }
        this.#retryAt.delete(name);
      } catch (err) {
        const delay = Math.min((backoff?.delay ?? 250) * 2, 8000);
        this.#retryAt.set(name, { at: Date.now() + delay, delay });
        this.#o.log?.(`attacher: ${name}: ${message(err)} (retry in ${delay} ms)`);
        const deleting = va.metadata?.deletionTimestamp !== undefined;
        await this.#setStatus(name, (s) => {
          const e = { time: new Date(), message: message(err) };
          if (deleting) s.detachError = e;
          else s.attachError = e;
        }).catch(() => undefined);
      }
    }
  }

  async #nodeId(node: string): Promise<string> {
    const csiNode = await this.#o.storage.readCSINode({ name: node });
    const d = csiNode.spec.drivers.find((x) => x.name === this.#o.driverName);
    if (!d?.nodeID) throw new Error(`CSINode ${node} has no node id for ${this.#o.driverName} yet`);
    return d.nodeID;
  }

  async #pv(va: V1VolumeAttachment): Promise<V1PersistentVolume> {
    const pvName = va.spec.source.persistentVolumeName;
    if (!pvName) throw new Error('inline volumes are not supported by this stand-in');
    return this.#o.core.readPersistentVolume({ name: pvName });
  }

  async #attach(va: V1VolumeAttachment): Promise<void> {
    const name = va.metadata!.name!;
    if (!va.metadata?.finalizers?.includes(this.finalizer)) {
      va.metadata!.finalizers = [...(va.metadata?.finalizers ?? []), this.finalizer];
      va = await this.#o.storage.replaceVolumeAttachment({ name, body: va });
    }
    const pv = await this.#pv(va);
    const nodeId = await this.#nodeId(va.spec.nodeName);
    const csi = pv.spec?.csi;
    if (!csi) throw new Error(`PV ${pv.metadata?.name} is not a CSI volume`);
    const res = await this.#o.csi.call<{ publish_context?: Record<string, string> }>(
      'Controller',
      'ControllerPublishVolume',
      {
        volume_id: csi.volumeHandle,
        node_id: nodeId,
        volume_capability: volumeCapability(pv),
        readonly: csi.readOnly ?? false,
        volume_context: csi.volumeAttributes ?? {},
        secrets: {},
      },
      120_000,
    );
    this.calls.push(`publish ${pv.metadata?.name} ${nodeId}`);
    await this.#setStatus(name, (s) => {
      s.attached = true;
      s.attachmentMetadata = res.publish_context ?? {};
      delete s.attachError;
    });
    this.#o.log?.(`attacher: ${name} attached (${pv.metadata?.name} on ${nodeId})`);
  }

  async #detach(va: V1VolumeAttachment): Promise<void> {
    const name = va.metadata!.name!;
    const pv = await this.#pv(va).catch(() => undefined);
    const handle = pv?.spec?.csi?.volumeHandle;
    if (handle) {
      const nodeId = await this.#nodeId(va.spec.nodeName).catch(() => va.spec.nodeName);
      await this.#o.csi.call(
        'Controller',
        'ControllerUnpublishVolume',
        { volume_id: handle, node_id: nodeId, secrets: {} },
        120_000,
      );
      this.calls.push(`unpublish ${pv?.metadata?.name} ${nodeId}`);
    }
    await this.#setStatus(name, (s) => {
      s.attached = false;
      s.attachmentMetadata = {};
      delete s.detachError;
    });
    const fresh = await this.#o.storage.readVolumeAttachment({ name });
    fresh.metadata!.finalizers = (fresh.metadata?.finalizers ?? []).filter((f) => f !== this.finalizer);
    await this.#o.storage.replaceVolumeAttachment({ name, body: fresh });
    this.#o.log?.(`attacher: ${name} detached`);
  }

  /** Read-modify-write of the status subresource (optimistic concurrency; one retry on conflict). */
  async #setStatus(
    name: string,
    edit: (s: NonNullable<V1VolumeAttachment['status']>) => void,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const va = await this.#o.storage.readVolumeAttachment({ name });
      const status = va.status ?? { attached: false };
      edit(status);
      va.status = status;
      try {
        await this.#o.storage.replaceVolumeAttachmentStatus({ name, body: va });
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt >= 3) throw err;
      }
    }
  }
}
