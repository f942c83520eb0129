/**
 * The state and plumbing of the in-memory Cinder double (fake-cinder.ts): the stores, the options,
 * call recording, asynchronous transitions, timestamps, microversion gating and paging. The
 * resource methods are in fake-cinder-volumes.ts and fake-cinder.ts.
 */
import type { CallOptions, Microversion } from '../../../src/openstack/cinder-api.ts';
import type {
  Attachment,
  Backup,
  SchedulerPool,
  Snapshot,
  UserMessage,
  Volume,
  VolumeType,
} from '../../../src/openstack/cinder-types.ts';
import { MicroversionError, OpenStackError } from '../../../src/openstack/errors.ts';
import { throwIfAborted } from '../../../src/util/abort.ts';

export const FAST = { firstMs: 2, factor: 1.5, capMs: 20 };

export function fail(status: number, message: string): OpenStackError {
  return new OpenStackError({ status, faultMessage: message, method: 'X', url: 'http://fake-cinder/v3' });
}

export interface FakeCinderOptions {
  microversion?: string;
  /** Delay of asynchronous transitions (ms). */
  delayMs?: number;
  gigabytesQuota?: number;
  perVolumeGigabytes?: number;
  backupService?: boolean;
  /**
   * Volumes restored from a snapshot depend on it (like RBD clones): deleting such a snapshot puts
   * it back to `available` with the user message "Snapshot is busy", as Cinder's volume service does.
   */
  cowSnapshots?: boolean;
  /** Refuse the admin-only `snapshot_id` volume filter with 400 (a non-admin user). */
  nonAdmin?: boolean;
}

export interface AttachmentRec extends Attachment {
  connectorHost: string | undefined;
}

/** The double's state and shared helpers; the CinderApi methods are in its subclasses. */
export class FakeCinderBase {
  readonly volumes = new Map<string, Volume>();
  readonly snapshots = new Map<string, Snapshot>();
  readonly backups = new Map<string, Backup>();
  readonly attachments = new Map<string, AttachmentRec>();
  readonly messages: UserMessage[] = [];
  readonly types: VolumeType[] = [
    { id: 'type-fake', name: 'fake', extra_specs: { volume_backend_name: 'fake' } },
    { id: 'type-fast', name: 'fast', extra_specs: { volume_backend_name: 'fake' } },
    { id: 'type-multi', name: 'multi', extra_specs: { multiattach: '<is> True' } },
    { id: 'type-broken', name: 'broken', extra_specs: { volume_backend_name: 'nowhere' } },
  ];
  readonly calls: string[] = [];
  /** The scheduler's pools (admin view); undefined → 403 like for non-admin credentials. */
  pools: SchedulerPool[] | undefined;
  microversion: Microversion;
  delayMs: number;
  gigabytesQuota: number;
  cowSnapshots: boolean;
  nonAdmin: boolean;
  perVolumeGigabytes: number;
  backupService: boolean;
  /** cinder.conf allow_availability_zone_fallback: an unknown zone silently becomes `nova`. */
  zoneFallback = false;
  /** Makes the next N createVolume calls hang in `creating` until released. */
  holdCreating = false;
  protected seq = 0;

  constructor(opts: FakeCinderOptions = {}) {
    const [major, minor] = (opts.microversion ?? '3.70').split('.').map(Number);
    this.microversion = { major: major ?? 3, minor: minor ?? 0 };
    this.delayMs = opts.delayMs ?? 5;
    this.gigabytesQuota = opts.gigabytesQuota ?? 1000;
    this.perVolumeGigabytes = opts.perVolumeGigabytes ?? -1;
    this.backupService = opts.backupService ?? true;
    this.cowSnapshots = opts.cowSnapshots ?? false;
    this.nonAdmin = opts.nonAdmin ?? false;
  }

  protected record(name: string, opts?: CallOptions): void {
    throwIfAborted(opts?.signal);
    this.calls.push(name);
  }

  protected later(fn: () => void, ms = this.delayMs): void {
    setTimeout(fn, ms).unref?.();
  }

  protected now(): string {
    // Cinder style: UTC without zone; strictly increasing for stable ordering.
    this.seq++;
    return new Date(Date.now() - 60_000 + this.seq).toISOString().replace('Z', '000');
  }

  protected requireVersion(version: string, label: string): void {
    if (!this.supports(version)) {
      throw new MicroversionError(`${label} need Cinder API microversion ${version}`);
    }
  }

  async negotiate(): Promise<Microversion> {
    return this.microversion;
  }
  supports(version: string): boolean {
    const [maj, min] = version.split('.').map(Number);
    const m = this.microversion;
    return m.major > (maj ?? 0) || (m.major === maj && m.minor >= (min ?? 0));
  }
  async projectId(): Promise<string> {
    return 'project';
  }
}
