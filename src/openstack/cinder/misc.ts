/** Cinder's project-wide resources: limits, quotas, availability zones, user messages, services, pools. */
import type { CallOptions } from '../cinder-api.ts';
import type { AbsoluteLimits, AvailabilityZone, QuotaUsage, UserMessage } from '../cinder-types.ts';
import { requireFeature } from '../microversion.ts';
import type { CinderCore } from './core.ts';

/** A scheduler pool (`GET /scheduler-stats/get_pools?detail=true`, admin only). */
export interface SchedulerPool {
  name: string;
  capabilities?: Record<string, unknown>;
}

export interface CinderService {
  binary: string;
  host: string;
  zone?: string;
  status: 'enabled' | 'disabled' | string;
  state: 'up' | 'down' | string;
  updated_at?: string | null;
}

/** Generic resource filtering (`?resource_uuid=` on /messages) arrived with 3.5. */
const CINDER_FILTER_VERSION = '3.5';

export async function getAbsoluteLimits(c: CinderCore, opts: CallOptions = {}): Promise<AbsoluteLimits> {
  const res = await c.call<{ limits: { absolute: AbsoluteLimits } }>('GET', '/limits', 'limits', opts);
  return res.limits.absolute;
}

/** Quota limits with usage of this project, incl. per-type keys (`gigabytes_<type>`). */
export async function getQuotaUsage(c: CinderCore, opts: CallOptions = {}): Promise<QuotaUsage> {
  const project = await c.session.projectId(opts.signal);
  const res = await c.call<{ quota_set: Record<string, unknown> }>(
    'GET',
    `/os-quota-sets/${encodeURIComponent(project)}`,
    'quota.usage',
    { signal: opts.signal, query: { usage: true } },
  );
  const out: QuotaUsage = {};
  for (const [k, v] of Object.entries(res.quota_set)) {
    if (v && typeof v === 'object' && 'limit' in v) out[k] = v as QuotaUsage[string];
  }
  return out;
}

export async function listAvailabilityZones(
  c: CinderCore,
  opts: CallOptions = {},
): Promise<AvailabilityZone[]> {
  const res = await c.call<{ availabilityZoneInfo: AvailabilityZone[] }>(
    'GET',
    '/os-availability-zone',
    'availability_zone.list',
    opts,
  );
  return res.availabilityZoneInfo;
}

/** User messages (3.3+). Filtering by resource needs 3.5; below that it is done here. */
export async function listMessages(
  c: CinderCore,
  filters: { resource_uuid?: string } = {},
  opts: CallOptions = {},
): Promise<UserMessage[]> {
  const mv = await c.negotiate(opts);
  requireFeature(mv, 'userMessages', 'message.list');
  const serverSide = await c.atLeast(CINDER_FILTER_VERSION, opts);
  const res = await c.call<{ messages: UserMessage[] }>('GET', '/messages', 'message.list', {
    signal: opts.signal,
    query: serverSide ? { ...filters } : {},
  });
  return res.messages.filter((m) => !filters.resource_uuid || m.resource_uuid === filters.resource_uuid);
}

/** The newest user message about a resource, or undefined (also when the server lacks 3.3). */
export async function latestMessage(
  c: CinderCore,
  resourceId: string,
  opts: CallOptions = {},
): Promise<UserMessage | undefined> {
  if (!(await c.atLeast('3.3', opts))) return undefined;
  const messages = await listMessages(c, { resource_uuid: resourceId }, opts);
  return messages.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0))[0];
}

/** Admin only: Cinder's services (e.g. `binary: 'cinder-backup'` tells whether backups can work). */
export async function listServices(
  c: CinderCore,
  filters: { binary?: string; host?: string } = {},
  opts: CallOptions = {},
): Promise<CinderService[]> {
  const res = await c.call<{ services: CinderService[] }>('GET', '/os-services', 'service.list', {
    signal: opts.signal,
    query: { ...filters },
  });
  return res.services;
}

/** Admin only: the scheduler's pools with capabilities. */
export async function listSchedulerPools(c: CinderCore, opts: CallOptions = {}): Promise<SchedulerPool[]> {
  const res = await c.call<{ pools: SchedulerPool[] }>('GET', '/scheduler-stats/get_pools', 'pool.list', {
    signal: opts.signal,
    query: { detail: true },
  });
  return res.pools;
}
