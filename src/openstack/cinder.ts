/**
 * The Cinder v3 client (`CinderClient`, implementing `CinderApi`) and the types of its public
 * surface. The code lives in src/openstack/cinder/: one module per resource plus core.ts.
 */

export { CinderClient } from './cinder/client.ts';
export { type CinderClientOptions, ignoreNotFound, nextMarker, type Page } from './cinder/core.ts';
export type { CreateGroupRequest, CreateGroupTypeRequest } from './cinder/groups.ts';
export type { CinderService, SchedulerPool } from './cinder/misc.ts';
export type { BackupListFilters, GroupType, SnapshotListFilters } from './cinder-types.ts';
