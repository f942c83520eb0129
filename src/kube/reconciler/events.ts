/** Warning Events on a PV about its stale attachments (best effort). */
import type { CoreV1Event, V1PersistentVolume } from '@kubernetes/client-node';
import type { StaleAttachmentReconcilerOptions } from './types.ts';

/** Records a Warning Event on the PV; does nothing without a PV name, logs (only) on failure. */
export async function recordPvEvent(
  o: Pick<StaleAttachmentReconcilerOptions, 'kube' | 'driverName' | 'eventNamespace' | 'logger'>,
  clock: () => number,
  pv: V1PersistentVolume | undefined,
  reason: string,
  message: string,
  signal: AbortSignal,
): Promise<void> {
  if (!pv?.metadata?.name) return;
  const now = new Date(clock());
  const event: CoreV1Event = {
    metadata: { generateName: `${pv.metadata.name}.`, namespace: o.eventNamespace ?? 'default' },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      name: pv.metadata.name,
      uid: pv.metadata.uid,
    },
    reason,
    message,
    type: 'Warning',
    source: { component: `${o.driverName}/attachment-reconciler` },
    reportingComponent: `${o.driverName}/attachment-reconciler`,
    reportingInstance: '',
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
  try {
    await o.kube.createEvent(o.eventNamespace ?? 'default', event, { signal });
  } catch (err) {
    o.logger.warn({ pv: pv.metadata.name, err: (err as Error).message }, 'could not record Event on the PV');
  }
}
