/**
 * What the GroupController RPC modules share: options, the Cinder surface they need, the markers
 * the driver writes on Cinder groups and group snapshots, and in-flight locks.
 */
import type { CinderApi } from '../../openstack/cinder-api.ts';
import { KeyedLocks } from '../../util/keyed-lock.ts';
import type { Logger } from '../../util/logger.ts';

export interface GroupControllerOptions {
  /** Must implement the optional group methods of CinderApi (CinderClient does). */
  cinder: CinderApi;
  /** Marks this cluster's group snapshots and groups (in their description, see `marker`). */
  clusterId: string;
  driverName: string;
  logger: Logger;
  /**
   * Group type for groups the driver creates when the VolumeGroupSnapshotClass gives no
   * `groupType`; created on demand (needs an admin account) when missing. Default
   * `DEFAULT_GROUP_TYPE`.
   */
  defaultGroupType?: string;
  /**
   * How long CreateVolumeGroupSnapshot waits for `available` before answering ready_to_use=false
   * (the snapshotter calls again). Always also bounded by the call's deadline. Default 60 s.
   */
  groupSnapshotWaitMs?: number;
}

/** Group type without group specs: Cinder's generic groups, which every backend supports. */
export const DEFAULT_GROUP_TYPE = 'cinder-csi-generic';

/** The CinderApi with the group methods it declares optional. */
export type GroupCinder = CinderApi &
  Required<
    Pick<
      CinderApi,
      | 'listGroupTypes'
      | 'createGroupType'
      | 'listGroups'
      | 'listGroupSnapshots'
      | 'waitForGroup'
      | 'waitForGroupSnapshot'
    >
  >;

const GROUP_METHODS = [
  'listGroupTypes',
  'createGroupType',
  'listGroups',
  'listGroupSnapshots',
  'waitForGroup',
  'waitForGroupSnapshot',
] as const;

/** Throws (a wiring bug, not a CSI error) when `cinder` lacks a group method. */
export function requireGroupCinder(cinder: CinderApi): GroupCinder {
  const missing = GROUP_METHODS.filter((m) => typeof cinder[m] !== 'function');
  if (missing.length > 0) {
    throw new Error(
      `the Cinder client lacks group methods needed by the GroupController: ${missing.join(', ')}`,
    );
  }
  return cinder as GroupCinder;
}

export interface GroupController extends Omit<GroupControllerOptions, 'cinder'> {
  readonly cinder: GroupCinder;
  readonly locks: KeyedLocks;
  /** Resolved group type ids by requested name (or id). */
  readonly groupTypes: Map<string, string>;
}

export function makeGroupController(opts: GroupControllerOptions): GroupController {
  return {
    ...opts,
    cinder: requireGroupCinder(opts.cinder),
    locks: new KeyedLocks(),
    groupTypes: new Map(),
  };
}

/**
 * Cinder groups and group snapshots have no metadata: the driver marks the ones it creates with
 * their CSI name as `name` and this description. The cluster id makes lookups by name ignore
 * other clusters' objects of the same name.
 */
export const marker = {
  groupSnapshot: (clusterId: string) => `cinder-csi group snapshot; cluster=${clusterId}`,
  group: (clusterId: string) => `cinder-csi group for group snapshots; cluster=${clusterId}`,
};

export const lockKey = {
  name: (name: string) => `group-snapshot-name/${name}`,
  id: (id: string) => `group-snapshot/${id}`,
  volume: (id: string) => `group-volume/${id}`,
};

export { withLocks } from '../controller/context.ts';
