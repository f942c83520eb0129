/**
 * The operations of a chaos lifecycle (test/support/chaos/workload.ts) and what each needs: the
 * kinds in lifecycle order, those only the backup lifecycles run, the clean-up that still runs
 * after a failure, and the dependencies an exclusion follows.
 */

export const OP_KINDS = [
  'create',
  'publish',
  'node-complete',
  'expand',
  'snapshot',
  'restore-snapshot',
  'backup',
  'restore-backup',
  'unpublish',
  'modify',
  'group-snapshot',
  'delete-restored',
  'delete-restored-backup',
  'delete-snapshot',
  'delete-backup',
  'delete-group-snapshot',
  'delete',
] as const;
export type OpKind = (typeof OP_KINDS)[number];

/** The operations of the lifecycles that take a backup. */
export const BACKUP_OPS: readonly OpKind[] = [
  'backup',
  'restore-backup',
  'delete-restored-backup',
  'delete-backup',
];

/** The operations that still run after one of the lifecycle failed (as a CO cleans up). */
export const CLEANUP: ReadonlySet<OpKind> = new Set<OpKind>([
  'unpublish',
  'delete-restored',
  'delete-restored-backup',
  'delete-snapshot',
  'delete-backup',
  'delete-group-snapshot',
  'delete',
]);

/** What each operation needs before it can run (an excluded operation skips its dependents). */
export const NEEDS: Readonly<Record<OpKind, readonly OpKind[]>> = {
  create: [],
  publish: ['create'],
  'node-complete': ['publish'],
  expand: ['create'],
  snapshot: ['create'],
  'restore-snapshot': ['snapshot'],
  backup: ['create'],
  'restore-backup': ['backup'],
  unpublish: ['publish'],
  modify: ['create'],
  'group-snapshot': ['create'],
  'delete-restored': ['restore-snapshot'],
  'delete-restored-backup': ['restore-backup'],
  'delete-snapshot': ['snapshot'],
  'delete-backup': ['backup'],
  'delete-group-snapshot': ['group-snapshot'],
  delete: ['create'],
};
