import type { CoreV1Event, V1Node, V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import type { CinderApi } from '../openstack/cinder-api.ts';
import type { Volume, VolumeListFilters } from '../openstack/cinder-types.ts';
import { sleep } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import { connectorAnnotationKey, parseConnectorAnnotation } from './connector-annotation.ts';
import { type KubeApi, toKubeApiError } from './kube-api.ts';
import { WatchCache } from './watch-cache.ts';

/**
 * Stale-attachment reconciler (controller). Cinder attachments of this cluster's volumes that no
 * Kubernetes VolumeAttachment accounts for any more — the VolumeAttachment was deleted without a
 * ControllerUnpublishVolume (force-deleted, lost finalizer), or its Node was deleted — keep the
 * volume "in-use" on a host that is gone, so it can never attach elsewhere. After they have been
 * stale for a grace period, the reconciler deletes them and records an Event on the PV.
 *
 * Safety rules (it must never detach a volume in use):
 *  - only volumes the `clusterVolumes` filter and predicate accept are examined (other clusters'
 *    and foreign volumes are never listed, let alone touched);
 *  - Cinder is listed BEFORE Kubernetes in a pass: the external-attacher creates a
 *    VolumeAttachment before it publishes, so any attachment in our Cinder listing that is live
 *    has its VolumeAttachment in the (later) Kubernetes listing;
 *  - an attachment is live when a VolumeAttachment of this driver for the same volume is on an
 *    existing Node whose name or published connector host equals the attachment's host, or
 *    whose status.attachmentMetadata names the attachment id; when the attachment's host is
 *    unknown (not yet attached), any VolumeAttachment of the volume on an existing Node keeps it;
 *  - an attachment must be found stale in passes spanning at least `graceMs` before it is deleted;
 *  - a pass whose Kubernetes listing fails deletes nothing.
 */

export type StaleReason = 'volumeattachment-missing' | 'node-deleted';

export interface ReconcileAction {
  /** pending: stale but within the grace period; would-delete: dry run. */
  action: 'pending' | 'deleted' | 'would-delete' | 'delete-failed';
  volumeId: string;
  attachmentId: string;
  host: string | undefined;
  reason: StaleReason;
  pvName: string | undefined;
  /** How long it has been seen stale. */
  staleForMs: number;
  error?: string;
}

export interface ReconcileResult {
  /** Attachments of this cluster's volumes examined. */
  examined: number;
  live: number;
  actions: ReconcileAction[];
}

export interface ClusterVolumeSelector {
  /** Server-side filter for this cluster's volumes (e.g. `{ metadata: { <cluster key>: <id> } }`). */
  filters: VolumeListFilters;
  /** Final check on each listed volume (defaults to: every `filters.metadata` pair matches). */
  isClusterVolume?(volume: Volume): boolean;
}

export interface StaleAttachmentReconcilerOptions {
  cinder: Pick<CinderApi, 'listVolumes' | 'listAttachments' | 'deleteAttachment'> &
    Partial<Pick<CinderApi, 'deleteVolumeMetadataKey'>>;
  kube: Pick<KubeApi, 'listVolumeAttachments' | 'listPersistentVolumes' | 'createEvent' | 'nodes'> &
    Partial<Pick<KubeApi, 'volumeAttachments'>>;
  driverName: string;
  clusterVolumes: ClusterVolumeSelector;
  logger: Logger;
  /** How long an attachment must stay stale before it is deleted (default 5 min). */
  graceMs?: number;
  /** Period between passes (default 5 min). */
  intervalMs?: number;
  /** Log and report what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Metrics hook: called for every action (including pending and dry-run ones). */
  onAction?(action: ReconcileAction): void;
  /** Namespace for Events about (cluster-scoped) PVs (default "default", like kubelet's recorder). */
  eventNamespace?: string;
  /**
   * Prefix of the volume metadata keys `<prefix><attachment id>` = node name in which the
   * controller records the node of each attachment it creates (META.attachmentPrefix in
   * src/csi/controller/context.ts; Cinder does not return an attachment's host until it is
   * complete). The record of a deleted stale attachment is removed too. Default
   * `cinder.csi.dev.attachment.`.
   */
  attachmentHostMetadataPrefix?: string;
  /** Clock, for tests. */
  now?(): number;
}

interface CinderAttachmentView {
  attachmentId: string;
  volumeId: string;
  host: string | undefined;
}

export interface LiveVa {
  nodeName: string;
  nodeExists: boolean;
  /** The Node's published connector host, when it has a valid one. */
  connectorHost: string | undefined;
}

export class StaleAttachmentReconciler {
  readonly #o: StaleAttachmentReconcilerOptions;
  readonly #graceMs: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** attachment id → when it was first seen stale. */
  readonly #staleSince = new Map<string, number>();
  readonly #abort = new AbortController();
  readonly #timers = new Set<NodeJS.Timeout>();
  #running: Promise<ReconcileResult> | undefined;
  #rerun = false;
  #loop: Promise<void> | undefined;
  #vaCache: WatchCache<V1VolumeAttachment, string> | undefined;
  /** Passes run and failed (tests, metrics). */
  readonly stats = { passes: 0, failedPasses: 0 };

  constructor(opts: StaleAttachmentReconcilerOptions) {
    this.#o = opts;
    this.#graceMs = opts.graceMs ?? 300_000;
    this.#intervalMs = opts.intervalMs ?? 300_000;
    this.#now = opts.now ?? Date.now;
  }

  get dryRun(): boolean {
    return this.#o.dryRun ?? false;
  }

  /**
   * Starts periodic passes, plus passes shortly after and one grace period after every
   * VolumeAttachment deletion (when `kube.volumeAttachments` is given) and every `nodeDeleted()`.
   */
  start(): void {
    if (this.#loop) return;
    const signal = this.#abort.signal;
    if (this.#o.kube.volumeAttachments) {
      this.#vaCache = new WatchCache<V1VolumeAttachment, string>({
        name: 'volumeattachments',
        source: this.#o.kube.volumeAttachments,
        keyOf: (va) => va.metadata?.name,
        project: (va) => va.spec?.attacher ?? '',
        logger: this.#o.logger,
        onChange: (type, _key, _value, old) => {
          if (type === 'DELETED' && old === this.#o.driverName) this.#afterDeletion();
        },
      });
      this.#vaCache.start();
    }
    this.#loop = (async () => {
      while (!signal.aborted) {
        await this.runOnce().catch(() => undefined);
        await sleep(this.#intervalMs, signal).catch(() => undefined);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#abort.abort(new Error('reconciler stopped'));
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.all([this.#loop, this.#vaCache?.stop(), this.#running?.catch(() => undefined)]);
  }

  /** Tell the reconciler a Node was deleted (e.g. from KubeConnectorSource.onNodeChange). */
  nodeDeleted(): void {
    this.#afterDeletion();
  }

  #afterDeletion(): void {
    // one pass soon to start the grace clock, one when the grace period is over
    this.#schedule(1000);
    this.#schedule(this.#graceMs + 1000);
  }

  #schedule(delayMs: number): void {
    if (this.#abort.signal.aborted) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      this.runOnce().catch(() => undefined);
    }, delayMs);
    this.#timers.add(t);
  }

  /** One pass. Concurrent calls share the running pass (and queue one more after it). */
  runOnce(signal?: AbortSignal): Promise<ReconcileResult> {
    if (this.#running) {
      this.#rerun = true;
      return this.#running;
    }
    const run = this.#pass(signal ?? this.#abort.signal)
      .catch((err) => {
        this.stats.failedPasses++;
        this.#o.logger.warn(
          { err: (err as Error).message },
          'stale-attachment reconciler: pass failed, nothing deleted; will retry',
        );
        throw err;
      })
      .finally(() => {
        this.#running = undefined;
        if (this.#rerun) {
          this.#rerun = false;
          this.#schedule(0);
        }
      });
    this.#running = run;
    return run;
  }

  async #pass(signal: AbortSignal): Promise<ReconcileResult> {
    const { cinder, kube, driverName, logger } = this.#o;
    this.stats.passes++;
    // 1. Cinder first (see the class comment for why the order matters)
    const volumes = new Map<string, Volume>();
    const isOurs =
      this.#o.clusterVolumes.isClusterVolume ??
      ((v: Volume) => matchesMetadata(v, this.#o.clusterVolumes.filters));
    for await (const v of cinder.listVolumes(this.#o.clusterVolumes.filters, { signal })) {
      if (isOurs(v)) volumes.set(v.id, v);
    }
    const attachments = await this.#cinderAttachments(volumes, signal);
    const result: ReconcileResult = { examined: attachments.length, live: 0, actions: [] };
    if (attachments.length === 0) {
      this.#staleSince.clear();
      return result;
    }

    // 2. then a fresh (not cached) view of Kubernetes
    let vas: V1VolumeAttachment[];
    let pvs: V1PersistentVolume[];
    let nodeList: V1Node[];
    try {
      [vas, pvs, nodeList] = await Promise.all([
        kube.listVolumeAttachments({ signal }),
        kube.listPersistentVolumes({ signal }),
        kube.nodes.list(signal).then((r) => r.items),
      ]);
    } catch (err) {
      throw toKubeApiError(err, 'stale-attachment reconciler: list Kubernetes objects');
    }
    const annotationKey = connectorAnnotationKey(driverName);
    const nodes = new Map<string, string | undefined>(); // name → connector host
    for (const n of nodeList) {
      const name = n.metadata?.name;
      if (!name) continue;
      const a = n.metadata?.annotations?.[annotationKey];
      const parsed = a === undefined ? undefined : parseConnectorAnnotation(a);
      nodes.set(name, parsed?.ok ? parsed.connector.host : undefined);
    }
    const pvByName = new Map<string, V1PersistentVolume>();
    const pvByVolume = new Map<string, V1PersistentVolume>();
    for (const pv of pvs) {
      if (pv.spec?.csi?.driver !== driverName) continue;
      if (pv.metadata?.name) pvByName.set(pv.metadata.name, pv);
      if (pv.spec.csi.volumeHandle) pvByVolume.set(pv.spec.csi.volumeHandle, pv);
    }
    const liveByVolume = new Map<string, LiveVa[]>();
    const referencedIds = new Set<string>();
    for (const va of vas) {
      if (va.spec?.attacher !== driverName) continue;
      for (const value of Object.values(va.status?.attachmentMetadata ?? {})) referencedIds.add(value);
      const pvName = va.spec.source?.persistentVolumeName;
      const volumeId = pvName
        ? pvByName.get(pvName)?.spec?.csi?.volumeHandle
        : va.spec.source?.inlineVolumeSpec?.csi?.volumeHandle;
      if (!volumeId) {
        logger.warn(
          { volumeAttachment: va.metadata?.name, pv: pvName },
          'stale-attachment reconciler: VolumeAttachment whose volume cannot be resolved; its attachment (if any) is kept only when named in its metadata',
        );
        continue;
      }
      const nodeName = va.spec.nodeName;
      const list = liveByVolume.get(volumeId) ?? [];
      list.push({ nodeName, nodeExists: nodes.has(nodeName), connectorHost: nodes.get(nodeName) });
      liveByVolume.set(volumeId, list);
    }

    // 3. decide
    const now = this.#now();
    const staleNow = new Set<string>();
    for (const att of attachments) {
      const reason = referencedIds.has(att.attachmentId)
        ? undefined
        : staleReason(att, liveByVolume.get(att.volumeId) ?? []);
      if (reason === undefined) {
        result.live++;
        continue;
      }
      staleNow.add(att.attachmentId);
      const since = this.#staleSince.get(att.attachmentId) ?? now;
      this.#staleSince.set(att.attachmentId, since);
      const pv = pvByVolume.get(att.volumeId);
      const base = {
        volumeId: att.volumeId,
        attachmentId: att.attachmentId,
        host: att.host,
        reason,
        pvName: pv?.metadata?.name,
        staleForMs: now - since,
      };
      let action: ReconcileAction;
      if (now - since < this.#graceMs) {
        action = { ...base, action: 'pending' };
        logger.info(
          base,
          'stale-attachment reconciler: attachment has no live VolumeAttachment; waiting for the grace period',
        );
      } else if (this.dryRun) {
        action = { ...base, action: 'would-delete' };
        logger.warn(base, 'stale-attachment reconciler (dry run): would delete stale Cinder attachment');
        await this.#event(
          pv,
          'StaleAttachmentFound',
          `dry run: would delete stale Cinder attachment ${att.attachmentId} of volume ${att.volumeId} on host ${att.host ?? '(unknown)'} (${reason})`,
          signal,
        );
      } else {
        try {
          await cinder.deleteAttachment(att.attachmentId, { signal });
          this.#staleSince.delete(att.attachmentId);
          await this.#dropHostRecord(att.volumeId, att.attachmentId, signal);
          action = { ...base, action: 'deleted' };
          logger.warn(base, 'stale-attachment reconciler: deleted stale Cinder attachment');
          await this.#event(
            pv,
            'StaleAttachmentDeleted',
            `deleted stale Cinder attachment ${att.attachmentId} of volume ${att.volumeId} on host ${att.host ?? '(unknown)'} (${reason})`,
            signal,
          );
        } catch (err) {
          if ((err as { status?: number }).status === 404) {
            this.#staleSince.delete(att.attachmentId);
            await this.#dropHostRecord(att.volumeId, att.attachmentId, signal);
            action = { ...base, action: 'deleted' };
          } else {
            action = { ...base, action: 'delete-failed', error: (err as Error).message };
            logger.error(
              { ...base, err: (err as Error).message },
              'stale-attachment reconciler: could not delete stale Cinder attachment; will retry',
            );
          }
        }
      }
      result.actions.push(action);
      this.#o.onAction?.(action);
    }
    for (const id of [...this.#staleSince.keys()]) if (!staleNow.has(id)) this.#staleSince.delete(id);
    return result;
  }

  /**
   * Attachments of the given volumes: the attachments API (every state) joined with their host:
   * the volume's `attachments` (completed ones) or the controller's metadata record.
   */
  async #cinderAttachments(
    volumes: Map<string, Volume>,
    signal: AbortSignal,
  ): Promise<CinderAttachmentView[]> {
    if (volumes.size === 0) return [];
    const prefix = this.#prefix;
    const hostOf = new Map<string, string>();
    const out = new Map<string, CinderAttachmentView>();
    for (const v of volumes.values()) {
      for (const [k, node] of Object.entries(v.metadata ?? {})) {
        if (k.startsWith(prefix) && node) hostOf.set(k.slice(prefix.length), node);
      }
      for (const a of v.attachments ?? []) {
        if (a.host_name) hostOf.set(a.attachment_id, a.host_name);
        out.set(a.attachment_id, {
          attachmentId: a.attachment_id,
          volumeId: v.id,
          host: hostOf.get(a.attachment_id),
        });
      }
    }
    // a volume only lists completed attachments; the attachments API also has reserved/attaching ones
    const needList = [...volumes.values()].some(
      (v) => v.status !== 'available' || (v.attachments?.length ?? 0) > 0,
    );
    if (needList) {
      for (const a of await this.#o.cinder.listAttachments({}, { signal })) {
        if (!volumes.has(a.volume_id) || a.status === 'deleted' || a.status === 'detached') continue;
        out.set(a.id, {
          attachmentId: a.id,
          volumeId: a.volume_id,
          host: hostOf.get(a.id) ?? a.host ?? undefined,
        });
      }
    }
    return [...out.values()];
  }

  get #prefix(): string {
    return this.#o.attachmentHostMetadataPrefix ?? 'cinder.csi.dev.attachment.';
  }

  /**
   * Removes the controller's host record of a deleted attachment (best effort, per key: a
   * read-modify-write of all metadata could race with a concurrent publish; a record of a missing
   * attachment is harmless). Cinder cannot delete a key containing "/" per key (404).
   */
  async #dropHostRecord(volumeId: string, attachmentId: string, signal: AbortSignal): Promise<void> {
    const del = this.#o.cinder.deleteVolumeMetadataKey;
    if (!del) return;
    try {
      await del.call(this.#o.cinder, volumeId, `${this.#prefix}${attachmentId}`, { signal });
    } catch (err) {
      if ((err as { status?: number }).status !== 404) {
        this.#o.logger.warn(
          { volumeId, attachmentId, err: (err as Error).message },
          'could not remove the attachment host record',
        );
      }
    }
  }

  async #event(
    pv: V1PersistentVolume | undefined,
    reason: string,
    message: string,
    signal: AbortSignal,
  ): Promise<void> {
    if (!pv?.metadata?.name) return;
    const now = new Date(this.#now());
    const event: CoreV1Event = {
      metadata: { generateName: `${pv.metadata.name}.`, namespace: this.#o.eventNamespace ?? 'default' },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        name: pv.metadata.name,
        uid: pv.metadata.uid,
      },
      reason,
      message,
      type: 'Warning',
      source: { component: `${this.#o.driverName}/attachment-reconciler` },
      reportingComponent: `${this.#o.driverName}/attachment-reconciler`,
      reportingInstance: '',
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.#o.kube.createEvent(this.#o.eventNamespace ?? 'default', event, { signal });
    } catch (err) {
      this.#o.logger.warn(
        { pv: pv.metadata.name, err: (err as Error).message },
        'could not record Event on the PV',
      );
    }
  }
}

/** Why an attachment is stale, or undefined when a live VolumeAttachment accounts for it. */
export function staleReason(
  att: { host: string | undefined },
  vas: readonly LiveVa[],
): StaleReason | undefined {
  if (att.host === undefined) {
    // host unknown (attachment not completed): any VolumeAttachment of the volume on an existing node keeps it
    if (vas.some((v) => v.nodeExists)) return undefined;
    return vas.length > 0 ? 'node-deleted' : 'volumeattachment-missing';
  }
  const matching = vas.filter((v) => v.nodeName === att.host || v.connectorHost === att.host);
  if (matching.some((v) => v.nodeExists)) return undefined;
  // a VolumeAttachment on an existing node whose connector host is unknown might be this one: keep it
  if (vas.some((v) => v.nodeExists && v.connectorHost === undefined)) return undefined;
  return matching.length > 0 ? 'node-deleted' : 'volumeattachment-missing';
}

function matchesMetadata(v: Volume, filters: VolumeListFilters): boolean {
  const want = Object.entries(filters.metadata ?? {});
  if (want.length === 0) return false; // without a cluster marker nothing is ours: refuse to guess
  return want.every(([k, val]) => v.metadata?.[k] === val);
}
