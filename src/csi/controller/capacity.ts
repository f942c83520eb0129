/**
 * GetCapacity from the project's Cinder quota: `gigabytes` limit minus in use and reserved, and,
 * with StorageClass parameter `type`, also the per-type `gigabytes_<type>` quota; the smaller wins.
 * `maximum_volume_size` is the `per_volume_gigabytes` quota when set. A topology segment (or the
 * `availability` parameter) naming a zone Cinder does not have, or that is down, gives 0.
 *
 * Unlimited quota (-1 everywhere) is reported as UNLIMITED_BYTES (1 EiB): CSI has no "unlimited",
 * and Kubernetes only compares the number with the PVC size. The quota usage API
 * (os-quota-sets?usage=true) is tried first; when it is refused, the absolute limits are used.
 */

import type { QuotaUsage } from '../../openstack/cinder-types.ts';
import { fromCloudError } from '../cloud-errors.ts';
import { invalidArgument } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import type { RpcContext } from '../rpc.ts';
import { toInt64 } from '../rpc.ts';
import type { Controller } from './context.ts';
import { GiB } from './convert.ts';
import { capabilityProblem, parseVolumeParams } from './params.ts';

export const UNLIMITED_BYTES = 1n << 60n;

interface Budget {
  limit: number;
  used: number;
}

function remainingGiB(budgets: Budget[]): bigint | undefined {
  let best: bigint | undefined;
  for (const b of budgets) {
    if (b.limit < 0) continue;
    const left = BigInt(Math.max(0, b.limit - b.used));
    best = best === undefined || left < best ? left : best;
  }
  return best;
}

export async function getCapacity(
  c: Controller,
  req: csi.GetCapacityRequest__Output,
  ctx: RpcContext,
): Promise<csi.GetCapacityResponse> {
  const params = parseVolumeParams(req.parameters);
  for (const cap of req.volume_capabilities ?? []) {
    // A multi-node request can only be met by a multiattach type; that is decided at create time.
    const problem = capabilityProblem(cap, true);
    if (problem) throw invalidArgument(`volume_capabilities: ${problem}`);
  }
  const zone = params.availability ?? req.accessible_topology?.segments?.[c.topologyKey];
  try {
    if (zone && !c.ignoreVolumeAZ) {
      const zones = await c.cinder.listAvailabilityZones({ signal: ctx.signal });
      if (!zones.some((z) => z.zoneName === zone && z.zoneState?.available)) {
        return { available_capacity: '0', minimum_volume_size: { value: toInt64(GiB) } };
      }
    }
    let quota: QuotaUsage | undefined;
    try {
      quota = await c.cinder.getQuotaUsage({ signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      ctx.log.debug(
        { err: (err as Error).message },
        'GetCapacity: quota usage refused; using absolute limits',
      );
    }
    const budgets: Budget[] = [];
    let perVolume = -1;
    if (quota) {
      const total = quota['gigabytes'];
      if (total) budgets.push({ limit: total.limit, used: total.in_use + (total.reserved ?? 0) });
      const typed = params.type ? quota[`gigabytes_${params.type}`] : undefined;
      if (typed) budgets.push({ limit: typed.limit, used: typed.in_use + (typed.reserved ?? 0) });
      perVolume = quota['per_volume_gigabytes']?.limit ?? -1;
    } else {
      const abs = await c.cinder.getAbsoluteLimits({ signal: ctx.signal });
      budgets.push({ limit: abs.maxTotalVolumeGigabytes, used: abs.totalGigabytesUsed });
    }
    const left = remainingGiB(budgets);
    const res: csi.GetCapacityResponse = {
      available_capacity: toInt64(left === undefined ? UNLIMITED_BYTES : left * GiB),
      minimum_volume_size: { value: toInt64(GiB) },
    };
    if (perVolume > 0) res.maximum_volume_size = { value: toInt64(BigInt(perVolume) * GiB) };
    return res;
  } catch (err) {
    throw fromCloudError(err, 'get capacity', { signal: ctx.signal });
  }
}
