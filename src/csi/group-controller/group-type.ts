/**
 * The Cinder group type of the groups the driver creates: VolumeGroupSnapshotClass parameter
 * `groupType` (name or id; must exist), else the configured default (created on demand without
 * group specs, i.e. Cinder's generic groups: snapshots of the members taken one after the other by
 * the volume service, crash-consistent per volume but not across them; creating it needs an admin
 * account, otherwise an operator creates it once: `cinder group-type-create cinder-csi-generic`).
 */
import { fromCloudError } from '../cloud-errors.ts';
import { failedPrecondition, invalidArgument } from '../errors.ts';
import type { RpcContext } from '../rpc.ts';
import { DEFAULT_GROUP_TYPE, type GroupController } from './context.ts';

export async function resolveGroupType(
  c: GroupController,
  requested: string | undefined,
  ctx: RpcContext,
): Promise<string> {
  const wanted = requested ?? c.defaultGroupType ?? DEFAULT_GROUP_TYPE;
  const cached = c.groupTypes.get(wanted);
  if (cached) return cached;
  const types = await c.cinder.listGroupTypes({ signal: ctx.signal });
  let found = types.find((t) => t.id === wanted || t.name === wanted);
  if (!found && requested !== undefined) {
    throw invalidArgument(`parameter groupType: Cinder has no group type ${requested}`);
  }
  if (!found) {
    found = await c.cinder
      .createGroupType(
        { name: wanted, description: `Generic groups for ${c.driverName} group snapshots`, is_public: true },
        { signal: ctx.signal },
      )
      .catch(async (err: unknown) => {
        // A concurrent create by another controller replica: use theirs.
        const again = (await c.cinder.listGroupTypes({ signal: ctx.signal })).find((t) => t.name === wanted);
        if (again) return again;
        const e = err as { forbidden?: boolean; unauthorized?: boolean };
        if (e.forbidden) {
          throw failedPrecondition(
            `Cinder group type ${wanted} does not exist and the driver's account may not create it; ` +
              `an administrator must create it (without group specs) or set groupType in the VolumeGroupSnapshotClass`,
          );
        }
        throw fromCloudError(err, `create group type ${wanted}`, { signal: ctx.signal });
      });
    ctx.log.info({ groupType: wanted, id: found.id }, 'created Cinder group type');
  }
  c.groupTypes.set(wanted, found.id);
  return found.id;
}
