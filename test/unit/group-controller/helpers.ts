/** Fixtures of the GroupController unit tests: the service on the group double, requests. */
import { createGroupControllerService } from '../../../src/csi/group-controller/index.ts';
import { logger } from '../controller/helpers.ts';
import { FakeGroupCinder, type FakeGroupCinderOptions } from './fake-group-cinder.ts';

export const CLUSTER = 'unit-cluster';

export function setup(
  opts: FakeGroupCinderOptions = {},
  extra: { clusterId?: string; groupSnapshotWaitMs?: number; defaultGroupType?: string } = {},
) {
  const cinder = new FakeGroupCinder(opts);
  const svc = createGroupControllerService({
    cinder: cinder.api,
    clusterId: extra.clusterId ?? CLUSTER,
    driverName: 'cinder.csi.dev',
    logger,
    ...(extra.defaultGroupType ? { defaultGroupType: extra.defaultGroupType } : {}),
    ...(extra.groupSnapshotWaitMs !== undefined ? { groupSnapshotWaitMs: extra.groupSnapshotWaitMs } : {}),
  });
  return { cinder, svc };
}

export { groupSnapshotIdReq as idReq, groupSnapshotReq as createReq } from '../../support/group-requests.ts';

export const count = (calls: string[], name: string) => calls.filter((c) => c === name).length;
