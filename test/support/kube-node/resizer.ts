/**
 * STAND-IN for the Kubernetes sidecar external-resizer (the real image cannot be fetched here),
 * kept to its documented behaviour for one driver, polling the real API server:
 *   - a bound claim of one of `namespaces` whose PV is this driver's and whose
 *     `spec.resources.requests.storage` exceeds `status.capacity.storage` (the API server admits
 *     that only for a StorageClass with allowVolumeExpansion; kube-controller-manager's expand
 *     controller marks it with `volume.kubernetes.io/storage-resizer`);
 *   - condition `Resizing`, then ControllerExpandVolume(volumeHandle, required_bytes = the request,
 *     the PV's volume capability), then the PV's `spec.capacity.storage` = the new size;
 *   - node_expansion_required → condition `FileSystemResizePending` (the kubelet then calls
 *     NodeExpandVolume for the mounted volume and sets the claim's capacity itself); otherwise
 *     the claim's `status.capacity` is set and the conditions cleared;
 *   - a failure is retried on the next pass (0.5 s), bounded by the caller's stop().
 */
import type { CoreV1Api, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { CsiTestClient } from '../csi-client.ts';
import { volumeCapability } from './attacher.ts';

export interface ResizerOptions {
  driverName: string;
  csi: CsiTestClient;
  core: CoreV1Api;
  namespaces: string[];
  pollMs?: number;
  log?: (msg: string) => void;
}

const UNITS: Record<string, number> = {
  '': 1,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
};

/** Bytes of a resource.Quantity like `1Gi`, `512Mi`, `2147483648` (the forms these tests use). */
export function quantityBytes(q: string | undefined): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q ?? '');
  if (!m) throw new Error(`unsupported quantity ${JSON.stringify(String(q).slice(0, 20))}`);
  return Number(m[1]) * (UNITS[m[2] ?? ''] ?? 1);
}

export class ExternalResizer {
  readonly #o: ResizerOptions;
  readonly calls: string[] = [];
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(opts: ResizerOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        for (const ns of this.#o.namespaces) {
          try {
            const list = await this.#o.core.listNamespacedPersistentVolumeClaim({ namespace: ns });
            for (const pvc of list.items) await this.#sync(pvc);
          } catch (err) {
            this.#o.log?.(`resizer: ${ns}: ${String((err as Error)?.message ?? err).slice(0, 300)}`);
          }
        }
        await new Promise((r) => setTimeout(r, this.#o.pollMs ?? 500));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  async #sync(pvc: V1PersistentVolumeClaim): Promise<void> {
    if (pvc.status?.phase !== 'Bound' || !pvc.spec?.volumeName) return;
    const want = quantityBytes(pvc.spec.resources?.requests?.['storage']);
    const have = quantityBytes(pvc.status.capacity?.['storage'] ?? '0');
    if (want <= have) return;
    const pv = await this.#o.core.readPersistentVolume({ name: pvc.spec.volumeName });
    const csi = pv.spec?.csi;
    if (csi?.driver !== this.#o.driverName) return;
    if (quantityBytes(pv.spec?.capacity?.['storage']) >= want) return; // controller part done
    const ns = pvc.metadata!.namespace!;
    const name = pvc.metadata!.name!;
    await this.#setConditions(ns, name, [{ type: 'Resizing', status: 'True' }]);
    const res = await this.#o.csi.call<{
      capacity_bytes?: string | number;
      node_expansion_required?: boolean;
    }>(
      'Controller',
      'ControllerExpandVolume',
      {
        volume_id: csi.volumeHandle,
        capacity_range: { required_bytes: String(want), limit_bytes: '0' },
        volume_capability: volumeCapability(pv),
        secrets: {},
      },
      120_000,
    );
    this.calls.push(`expand ${pv.metadata?.name} ${want}`);
    const size = String(Number(res.capacity_bytes ?? want) || want);
    pv.spec!.capacity = { ...pv.spec!.capacity, storage: size };
    await this.#o.core.replacePersistentVolume({ name: pv.metadata!.name!, body: pv });
    if (res.node_expansion_required) {
      await this.#setConditions(ns, name, [{ type: 'FileSystemResizePending', status: 'True' }]);
    } else {
      const fresh = await this.#o.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name });
      fresh.status = { ...fresh.status, capacity: { storage: size }, conditions: [] };
      await this.#o.core.replaceNamespacedPersistentVolumeClaimStatus({ namespace: ns, name, body: fresh });
    }
    this.#o.log?.(
      `resizer: ${ns}/${name} → ${size} bytes (node expansion: ${!!res.node_expansion_required})`,
    );
  }

  async #setConditions(
    ns: string,
    name: string,
    conditions: { type: string; status: string }[],
  ): Promise<void> {
    const fresh = await this.#o.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name });
    const now = new Date();
    fresh.status = {
      ...fresh.status,
      conditions: conditions.map((c) => ({ ...c, lastTransitionTime: now, lastProbeTime: now })),
    };
    await this.#o.core.replaceNamespacedPersistentVolumeClaimStatus({ namespace: ns, name, body: fresh });
  }
}
