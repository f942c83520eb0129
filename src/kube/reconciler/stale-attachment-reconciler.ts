import type { V1VolumeAttachment } from '@kubernetes/client-node';
import { sleep } from '../../util/abort.ts';
import { WatchCache } from '../watch-cache.ts';
import {
  cinderAttachments,
  DEFAULT_ATTACHMENT_HOST_PREFIX,
  DEFAULT_PUBLISH_INTENT_KEY,
  dropHostRecord,
  listClusterVolumes,
} from './cinder-inventory.ts';
import { recordPvEvent } from './events.ts';
import { kubeView } from './kube-inventory.ts';
import { staleReason } from './liveness.ts';
import type { ReconcileAction, ReconcileResult, StaleAttachmentReconcilerOptions } from './types.ts';

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
 *    whose status.attachmentMetadata names the attachment id. The host is Cinder's (completed
 *    attachments), else the controller's record, else, for an attachment no record names, the
 *    controller's publish intent on the volume (the node the lost/unrecorded POST was for); when
 *    none of them tells the host, any VolumeAttachment of the volume on an existing Node keeps it;
 *  - an attachment must be found stale in passes spanning at least `graceMs` before it is deleted;
 *  - a pass whose Kubernetes listing fails deletes nothing.
 *
 * This module is the pass and its scheduling; cinder-inventory.ts and kube-inventory.ts list the
 * two sides, liveness.ts is the rule above, events.ts records the Events.
 */
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
    const volumes = await listClusterVolumes(cinder, this.#o.clusterVolumes, signal);
    const attachments = await cinderAttachments(
      cinder,
      volumes,
      this.#prefix,
      signal,
      this.#o.publishIntentMetadataKey ?? DEFAULT_PUBLISH_INTENT_KEY,
    );
    const result: ReconcileResult = { examined: attachments.length, live: 0, actions: [] };
    if (attachments.length === 0) {
      this.#staleSince.clear();
      return result;
    }

    // 2. then a fresh (not cached) view of Kubernetes
    const { pvByVolume, liveByVolume, referencedIds } = await kubeView(kube, driverName, logger, signal);

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
        await recordPvEvent(
          this.#o,
          this.#now,
          pv,
          'StaleAttachmentFound',
          `dry run: would delete stale Cinder attachment ${att.attachmentId} of volume ${att.volumeId} on host ${att.host ?? '(unknown)'} (${reason})`,
          signal,
        );
      } else {
        try {
          await cinder.deleteAttachment(att.attachmentId, { signal });
          this.#staleSince.delete(att.attachmentId);
          await dropHostRecord(cinder, logger, this.#prefix, att.volumeId, att.attachmentId, signal);
          action = { ...base, action: 'deleted' };
          logger.warn(base, 'stale-attachment reconciler: deleted stale Cinder attachment');
          await recordPvEvent(
            this.#o,
            this.#now,
            pv,
            'StaleAttachmentDeleted',
            `deleted stale Cinder attachment ${att.attachmentId} of volume ${att.volumeId} on host ${att.host ?? '(unknown)'} (${reason})`,
            signal,
          );
        } catch (err) {
          if ((err as { status?: number }).status === 404) {
            this.#staleSince.delete(att.attachmentId);
            await dropHostRecord(cinder, logger, this.#prefix, att.volumeId, att.attachmentId, signal);
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

  get #prefix(): string {
    return this.#o.attachmentHostMetadataPrefix ?? DEFAULT_ATTACHMENT_HOST_PREFIX;
  }
}
