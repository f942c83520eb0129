/** Cinder's project-wide resources: limits, quotas, availability zones, user messages, services, pools. */
import type { CallOptions } from '../cinder-api.ts';
import type {
  AbsoluteLimits,
  AvailabilityZone,
  QuotaUsage,
  SchedulerPool,
  UserMessage,
} from '../cinder-types.ts';

export type { SchedulerPool } from '../cinder-types.ts';

import { requireFeature } from '../microversion.ts';
import { isCinderId, SHAPES } from './checks.ts';
import type { CinderCore } from './core.ts';

export interface CinderService {
  binary: string;
  host: string;
  zone?: string;
  status: 'enabled' | 'disabled' | string;
  state: 'up' | 'down' | string;
  updated_at?: string | null;
}

const SERVICE_SHAPE = { binary: 'string', host: 'string', status: 'string', state: 'string' } as const;
const MESSAGE_SHAPE = { id: 'string', created_at: 'string', user_message: 'string' } as const;

/** Generic resource filtering (`?resource_uuid=` on /messages) arrived with 3.5. */
const CINDER_FILTER_VERSION = '3.5';

export async function getAbsoluteLimits(c: CinderCore, opts: CallOptions = {}): Promise<AbsoluteLimits> {
  const limits = await c.one<{ absolute: unknown }>(
    'GET',
    '/limits',
    'limits',
    'limits',
    { absolute: 'object' },
    opts,
  );
  return limits.absolute as AbsoluteLimits;
}

/** Quota limits with usage of this project, incl. per-type keys (`gigabytes_<type>`). */
export async function getQuotaUsage(c: CinderCore, opts: CallOptions = {}): Promise<QuotaUsage> {
  const project = await c.session.projectId(opts.signal);
  const quotaSet = await c.one<Record<string, unknown>>(
    'GET',
    `/os-quota-sets/${encodeURIComponent(project)}`,
    'quota.usage',
    'quota_set',
    SHAPES.any,
    { signal: opts.signal, query: { usage: true } },
  );
  const out: QuotaUsage = {};
  for (const [k, v] of Object.entries(quotaSet)) {
    if (v && typeof v === 'object' && 'limit' in v) out[k] = v as QuotaUsage[string];
  }
  return out;
}

export async function listAvailabilityZones(
  c: CinderCore,
  opts: CallOptions = {},
): Promise<AvailabilityZone[]> {
  return c.list<AvailabilityZone>(
    '/os-availability-zone',
    'availability_zone.list',
    'availabilityZoneInfo',
    { zoneName: 'string' },
    opts,
  );
}

/** User messages (3.3+). Filtering by resource needs 3.5; below that it is done here. */
export async function listMessages(
  c: CinderCore,
  filters: { resource_uuid?: string } = {},
  opts: CallOptions = {},
): Promise<UserMessage[]> {
  // Messages are about Cinder objects: a resource that is not a Cinder id has none.
  if (filters.resource_uuid !== undefined && !isCinderId(filters.resource_uuid)) return [];
  const mv = await c.negotiate(opts);
  requireFeature(mv, 'userMessages', 'message.list');
  const serverSide = await c.atLeast(CINDER_FILTER_VERSION, opts);
  const messages = await c.list<UserMessage>('/messages', 'message.list', 'messages', MESSAGE_SHAPE, {
    signal: opts.signal,
    query: serverSide ? { ...filters } : {},
  });
  return messages.filter((m) => !filters.resource_uuid || m.resource_uuid === filters.resource_uuid);
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
  return c.list<CinderService>('/os-services', 'service.list', 'services', SERVICE_SHAPE, {
    signal: opts.signal,
    query: { ...filters },
  });
}

/** Admin only: the scheduler's pools with capabilities. */
export async function listSchedulerPools(c: CinderCore, opts: CallOptions = {}): Promise<SchedulerPool[]> {
  return c.list<SchedulerPool>(
    '/scheduler-stats/get_pools',
    'pool.list',
    'pools',
    { name: 'string' },
    {
      signal: opts.signal,
      query: { detail: true },
    },
  );
}
