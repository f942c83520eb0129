/**
 * What every controller RPC module shares: options, the per-key in-flight locks, metadata keys.
 */
import type { CinderApi } from '../../openstack/cinder-api.ts';
import { KeyedLocks } from '../../util/keyed-lock.ts';
import type { Logger } from '../../util/logger.ts';
import type { ConnectorSource } from '../connector-source.ts';
import { aborted } from '../errors.ts';
import { FailureMemory } from './failure-memory.ts';
import { Pacer } from './pacing.ts';

export interface ControllerOptions {
  cinder: CinderApi;
  connectors: ConnectorSource;
  /** Marks this cluster's volumes and snapshots (metadata `cinder.csi.dev/cluster`). */
  clusterId: string;
  driverName: string;
  /** Topology segment key of the availability zone, e.g. `topology.cinder.csi.dev/zone`. */
  topologyKey: string;
  logger: Logger;
  /** cloud.conf `ignore-volume-az`: never send the requested zone to Cinder; report the requested one. */
  ignoreVolumeAZ?: boolean;
  /** Volume type when neither `type` nor mutable `type` is given (else Cinder's default). */
  defaultVolumeType?: string;
  /**
   * How long CreateSnapshot waits for `available` before answering ready_to_use=false (the
   * snapshotter calls again). Always also bounded by the call's deadline. Default 60 s.
   */
  snapshotWaitMs?: number;
  /** First back-off of a remembered CreateVolume failure (failure-memory.ts). Default 30 s. */
  failureBackoffMs?: number;
}

/** Metadata keys the driver writes on Cinder volumes and snapshots. */
export const META = {
  /** The CSI name (CreateVolume/CreateSnapshot `name`): the idempotency key. */
  csiName: 'cinder.csi.dev/csi-name',
  /** The cluster id: ListVolumes/ListSnapshots only show objects carrying this cluster's id. */
  cluster: 'cinder.csi.dev/cluster',
  /**
   * Prefix of `<prefix><attachment id>` = node id: the host of an attachment. Cinder's attachment
   * API never returns the connector's host, and the volume's `attachments` list shows only
   * completed (`attached`) ones, so the controller records which node each of its attachments is for.
   * No `/` in this key: Cinder cannot delete a metadata key containing one (DELETE .../metadata/a%2Fb → 404).
   */
  attachmentPrefix: 'cinder.csi.dev.attachment.',
  /**
   * `<key>` = node id: written before `POST /attachments`, removed once the new attachment is
   * recorded under `attachmentPrefix`. A live attachment no record names belongs to this node
   * (the POST's response was lost, or the controller died before recording it). See publish.ts.
   */
  publishIntent: 'cinder.csi.dev.publishing',
  /** On a backup-type CSI snapshot's temporary Cinder snapshot: the backup's CSI name. */
  backupOf: 'cinder.csi.dev/backup-of',
  /** The content source a volume was created from: `snapshot:<id>`, `backup:<id>`, `volume:<id>`, `image:<ref>`. */
  source: 'cinder.csi.dev/source',
  /** Digest of the CreateVolume parameters that shape the volume but do not show on it (identity.ts). */
  shape: 'cinder.csi.dev/shape',
} as const;

/** The provisioner's / snapshotter's `--extra-create-metadata` parameters, stored as metadata verbatim. */
export const VOLUME_EXTRA_METADATA = [
  'csi.storage.k8s.io/pvc/name',
  'csi.storage.k8s.io/pvc/namespace',
  'csi.storage.k8s.io/pv/name',
] as const;
export const SNAPSHOT_EXTRA_METADATA = [
  'csi.storage.k8s.io/volumesnapshot/name',
  'csi.storage.k8s.io/volumesnapshot/namespace',
  'csi.storage.k8s.io/volumesnapshotcontent/name',
] as const;

/** CSI snapshot ids of snapshots stored as Cinder backups: `backup:<backup id>`. */
export const BACKUP_ID_PREFIX = 'backup:';

export interface Controller extends ControllerOptions {
  readonly locks: KeyedLocks;
  /** Recent CreateVolume failures Cinder will repeat (scheduling), answered from memory for a while. */
  readonly failures: FailureMemory;
  /** Learned ready times of creates, for well-timed first polls. */
  readonly pacer: Pacer;
}

export function makeController(opts: ControllerOptions): Controller {
  return {
    ...opts,
    locks: new KeyedLocks(),
    pacer: new Pacer(),
    failures: new FailureMemory({ baseMs: opts.failureBackoffMs }),
  };
}

/**
 * Runs `fn` holding the in-flight locks `keys`; a concurrent call on any of them fails at once with
 * ABORTED (the CSI sidecars retry), as the spec asks. No waiting, no global lock.
 */
export async function withLocks<T>(
  c: { locks: KeyedLocks },
  keys: string[],
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  const release = c.locks.tryAcquire(...keys);
  if (!release) throw aborted(`an operation on ${what} is already in progress; retry later`);
  try {
    return await fn();
  } finally {
    release();
  }
}

export const lockKey = {
  volumeName: (name: string) => `volume-name/${name}`,
  volume: (id: string) => `volume/${id}`,
  snapshotName: (name: string) => `snapshot-name/${name}`,
  snapshot: (id: string) => `snapshot/${id}`,
  publish: (volumeId: string, nodeId: string) => `publish/${volumeId}/${nodeId}`,
  /** Every change of a volume's attachments (publish, unpublish, delete): one at a time per volume. */
  attach: (volumeId: string) => `attach/${volumeId}`,
};

/** A signal that fires `marginMs` before the call's deadline (or never), combined with the call's. */
export function softDeadline(
  ctxSignal: AbortSignal,
  deadline: number | undefined,
  capMs: number,
  marginMs = 1000,
) {
  const untilDeadline = deadline === undefined ? capMs : Math.max(0, deadline - Date.now() - marginMs);
  return AbortSignal.any([ctxSignal, AbortSignal.timeout(Math.min(capMs, untilDeadline))]);
}
