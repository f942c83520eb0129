/**
 * Storage connectors: turn Cinder's connection_info into a block device on this host and back.
 * This module holds what every connector shares (the interface, its errors, the protocol of a
 * connection_info); one implementation per transport (iscsi.ts, rbd.ts), and the factory that
 * chooses one by `driver_volume_type` like os-brick's (connector-factory.ts).
 */
import type { ConnectionInfo } from '../openstack/cinder-types.ts';
import type { Logger } from '../util/logger.ts';
import type { Executor } from './exec.ts';
import type { HostLock } from './lock.ts';
import type { HostPaths } from './paths.ts';

export type Protocol = 'iscsi' | 'rbd';

/** What a connect produced; persisted by the node service so disconnect works after a restart. */
export interface ConnectedDevice {
  protocol: Protocol;
  /** Host path of the block device to format/mount: /dev/sdX, /dev/dm-N, /dev/rbdN (/dev/loopN under test). */
  devicePath: string;
  /**
   * JSON-serialisable, never secrets: portals, iqns, luns, session ids, SCSI devices, multipath
   * dm name, pool/image... everything disconnect needs.
   */
  details: Record<string, unknown>;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  volumeId: string;
  /**
   * Node-stage secrets (opt-in mode): RBD `keyring` (a full keyring file's text) or `key`
   * (the cephx key). Never logged.
   */
  secrets?: Record<string, string>;
}

export interface StorageConnector {
  readonly protocol: Protocol;
  connect(info: ConnectionInfo, opts: ConnectOptions): Promise<ConnectedDevice>;
  /** Idempotent: a device or session already gone is success. */
  disconnect(dev: ConnectedDevice, opts?: { signal?: AbortSignal }): Promise<void>;
  /** After an extend: make the new size visible to this host. */
  rescan(dev: ConnectedDevice, opts?: { signal?: AbortSignal }): Promise<void>;
  /** The device is still present (paths exist, session/map alive). */
  isConnected(dev: ConnectedDevice): Promise<boolean>;
}

/** What every connector needs from the host; the factory's ConnectorDeps adds per-transport options. */
export interface ConnectorBaseDeps {
  executor: Executor;
  paths: HostPaths;
  logger: Logger;
  lock: HostLock;
}

/** Thrown for connection_info the connectors do not support or that lacks required fields. */
export class UnsupportedConnectionError extends Error {
  override name = 'UnsupportedConnectionError';
}

/** Thrown when the storage could not be connected (login failed, device never appeared...). */
export class ConnectError extends Error {
  override name = 'ConnectError';
  /** True when retrying later may help (device not yet visible, transient tool failure). */
  readonly transient: boolean;
  constructor(message: string, opts: { transient?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.transient = opts.transient ?? false;
  }
}

export function protocolOf(info: Pick<ConnectionInfo, 'driver_volume_type'>): Protocol {
  const t = String(info.driver_volume_type ?? '').toLowerCase();
  if (t === 'iscsi') return 'iscsi';
  if (t === 'rbd') return 'rbd';
  throw new UnsupportedConnectionError(`unsupported driver_volume_type '${t}' (supported: iscsi, rbd)`);
}
