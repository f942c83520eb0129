/**
 * What Cinder's scheduler pools (`GET /scheduler-stats/get_pools?detail=true`, visible to admin
 * credentials only) say about a size: could any pool serving the volume type hold it? Asked only
 * before re-trying a request whose last attempt Cinder could not schedule (failure-memory.ts), so
 * the normal create path makes no extra request. The bound is generous on purpose (a thin pool
 * counts with its over-subscription ratio; `infinite`/`unknown` capacity fits anything): a "no" is
 * certain, a "yes" leaves the decision to Cinder's scheduler.
 */
import type { SchedulerPool } from '../../openstack/cinder-types.ts';
import type { Controller } from './context.ts';

/** true/false when the pools tell; undefined when Cinder does not show them to these credentials. */
export async function poolsCouldFit(
  c: Controller,
  gib: number,
  type: string | undefined,
  signal: AbortSignal,
): Promise<{ fits: boolean; largestGiB: number } | undefined> {
  if (!c.cinder.listSchedulerPools) return undefined;
  let pools: SchedulerPool[];
  let backend: string | undefined;
  try {
    pools = await c.cinder.listSchedulerPools({ signal });
    if (type) backend = (await c.cinder.getVolumeType(type, { signal })).extra_specs?.['volume_backend_name'];
  } catch {
    return undefined; // not admin, or the type is gone: let Cinder answer
  }
  if (pools.length === 0) return undefined;
  const serving = backend ? pools.filter((p) => p.capabilities?.['volume_backend_name'] === backend) : pools;
  const largestGiB = Math.max(0, ...serving.map((p) => poolMaxGiB(p.capabilities ?? {})));
  return { fits: largestGiB >= gib, largestGiB };
}

const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v)
    ? v
    : typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim())
      ? Number(v)
      : undefined;

/** The largest volume a pool could possibly take (GiB); Infinity when it does not say. */
export function poolMaxGiB(cap: Record<string, unknown>): number {
  const total = num(cap['total_capacity_gb']);
  const free = num(cap['free_capacity_gb']);
  if (total === undefined || free === undefined) return Number.POSITIVE_INFINITY;
  const reserved = ((num(cap['reserved_percentage']) ?? 0) / 100) * total;
  const thin = cap['thin_provisioning_support'] === true || cap['thin_provisioning_support'] === 'True';
  if (!thin) return free - reserved;
  const ratio = num(cap['max_over_subscription_ratio']);
  if (ratio === undefined) return Number.POSITIVE_INFINITY; // 'auto' or absent
  const provisioned = num(cap['provisioned_capacity_gb']) ?? total - free;
  return total * ratio - provisioned - reserved;
}
