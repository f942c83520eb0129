/**
 * Waiting for an asynchronous OpenStack resource (volume, snapshot, backup, ...) to reach a status.
 *
 * Polling schedule (adaptive, see also bench/README.md):
 *   the first GET goes out `firstMs` (75 ms) after the wait starts, then each delay is the previous
 *   one × `factor` (1.5) up to `capMs` (2.5 s):
 *     75, 113, 169, 253, 380, 570, 854, 1281, 1922, 2500, 2500, ... ms
 *   so the checks happen at about 0.08, 0.19, 0.36, 0.61, 0.99, 1.56, 2.41, 3.7, 5.6, 8.1, 10.6 s...
 *   On the lab a volume create takes 0.3-0.7 s: it is seen `available` at most ~0.4 s late with five
 *   GETs, while a slow backend (minutes) costs one GET per 2.5 s instead of ten per second.
 * The wait ends:
 *   - with the object when its status is one of `target`;
 *   - with `undefined` when `gone` is set and the GET answers 404 (waiting for a delete);
 *   - with WaitFailedError as soon as the status is one of `failOn` (default: any status starting
 *     with "error": error, error_deleting, error_extending, error_restoring, error_backing-up, ...);
 *     `explain` may add the reason (for volumes: the latest Cinder user message);
 *   - with WaitAbortedError (an AbortedError) when the caller's signal fires (gRPC deadline/cancel),
 *     or when `timeoutMs` elapses; in-flight GETs are cancelled with the same signal.
 * Transient GET failures (errors whose `retryable` is true, after the HTTP layer's own retries) are
 * tolerated `maxTransientErrors` times in a row; any other error ends the wait at once.
 */
import { AbortedError, anySignal, sleep, throwIfAborted } from '../util/abort.ts';
import type { WaitOptions } from './cinder-api.ts';

export interface PollSchedule {
  /** Delay before the first check. */
  firstMs: number;
  /** Growth of each following delay. */
  factor: number;
  /** Largest delay. */
  capMs: number;
}

export const DEFAULT_POLL_SCHEDULE: Readonly<PollSchedule> = Object.freeze({
  firstMs: 75,
  factor: 1.5,
  capMs: 2500,
});

/** The delays of `schedule`, endlessly (rounded to whole ms). */
export function* pollDelays(schedule: PollSchedule = DEFAULT_POLL_SCHEDULE): Generator<number, never> {
  let delay = schedule.firstMs;
  for (;;) {
    yield Math.round(Math.min(delay, schedule.capMs));
    delay = Math.min(delay * schedule.factor, schedule.capMs);
  }
}

/** The resource reached a failure status. `status` is the last one seen; `reason` the explanation, if any. */
export class WaitFailedError extends Error {
  override name = 'WaitFailedError';
  readonly resource: string;
  readonly id: string;
  readonly status: string;
  readonly target: readonly string[];
  readonly reason: string | undefined;
  constructor(resource: string, id: string, status: string, target: readonly string[], reason?: string) {
    super(
      `${resource} ${id} went to status "${status}" while waiting for ` +
        (target.length > 0 ? target.join('/') : 'its deletion') +
        (reason ? `: ${reason}` : ''),
    );
    this.resource = resource;
    this.id = id;
    this.status = status;
    this.target = target;
    this.reason = reason;
  }
}

/** The wait was cancelled (caller's signal or `timeoutMs`). Carries the last status seen. */
export class WaitAbortedError extends AbortedError {
  override name = 'WaitAbortedError';
  readonly lastStatus: string | undefined;
  constructor(reason: unknown, what: string, lastStatus: string | undefined) {
    super(reason);
    this.lastStatus = lastStatus;
    const base = reason instanceof Error ? reason.message : 'aborted';
    this.message = `${base} while waiting for ${what} (last status: ${lastStatus ?? 'not seen yet'})`;
  }
}

export interface WaitForStatusOptions<T> {
  /** For messages: "volume", "snapshot", ... */
  resource: string;
  id: string;
  /** One GET of the resource; must pass the signal on to the HTTP call. */
  fetch: (signal: AbortSignal | undefined) => Promise<T>;
  status: (obj: T) => string;
  target: readonly string[];
  /** Failure statuses; default: every status starting with "error". */
  failOn?: readonly string[];
  /** 404 ends the wait successfully with `undefined`. */
  gone?: boolean;
  signal?: AbortSignal;
  /** Upper bound of the whole wait, in addition to `signal`. */
  timeoutMs?: number;
  schedule?: PollSchedule;
  /** Consecutive retryable GET failures tolerated (default 3). */
  maxTransientErrors?: number;
  /** Looks up why the resource failed (best effort; its errors are ignored). */
  explain?: (obj: T, signal: AbortSignal | undefined) => Promise<string | undefined>;
}

/** Whether `status` ends a wait as failed: one of `failOn`, or by default any status starting with "error". */
export function isFailureStatus(status: string, failOn: readonly string[] | undefined): boolean {
  return failOn ? failOn.includes(status) : status.startsWith('error');
}

function flag(err: unknown, name: 'notFound' | 'retryable'): boolean {
  return typeof err === 'object' && err !== null && (err as Record<string, unknown>)[name] === true;
}

export async function waitForStatus<T>(opts: WaitForStatusOptions<T>): Promise<T | undefined> {
  const timeout = opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined;
  const signal = anySignal(opts.signal, timeout);
  const what = `${opts.resource} ${opts.id} to become ${opts.gone ? 'deleted' : opts.target.join('/')}`;
  const maxTransient = opts.maxTransientErrors ?? 3;
  let lastStatus: string | undefined;
  let transient = 0;
  try {
    for (const delay of pollDelays(opts.schedule)) {
      await sleep(delay, signal);
      let obj: T;
      try {
        obj = await opts.fetch(signal);
        transient = 0;
      } catch (err) {
        throwIfAborted(signal);
        if (opts.gone && flag(err, 'notFound')) return undefined;
        if (flag(err, 'retryable') && ++transient <= maxTransient) continue;
        throw err;
      }
      lastStatus = opts.status(obj);
      if (opts.target.includes(lastStatus)) return obj;
      if (isFailureStatus(lastStatus, opts.failOn)) {
        let reason: string | undefined;
        if (opts.explain) reason = await opts.explain(obj, signal).catch(() => undefined);
        throw new WaitFailedError(opts.resource, opts.id, lastStatus, opts.target, reason);
      }
    }
  } catch (err) {
    if (signal?.aborted && !(err instanceof WaitFailedError)) {
      throw new WaitAbortedError(signal.reason, what, lastStatus);
    }
    throw err;
  }
  throw new Error('unreachable');
}

/**
 * `waitForStatus` for an object with a `status` field, as every `CinderApi.waitForX(id, wait)`
 * does (volumes, snapshots, backups, groups, group snapshots, and the tests' doubles): the caller's
 * `WaitOptions` bound the wait (target, failure statuses, 404 as done, signal); `more` adds the
 * reason lookup or another polling schedule.
 */
export function waitForObject<T extends { status: string }>(
  resource: string,
  id: string,
  fetch: (signal: AbortSignal | undefined) => Promise<T>,
  wait: WaitOptions,
  more: Pick<WaitForStatusOptions<T>, 'explain' | 'schedule' | 'timeoutMs' | 'maxTransientErrors'> = {},
): Promise<T | undefined> {
  return waitForStatus<T>({
    resource,
    id,
    fetch,
    status: (o) => o.status,
    target: wait.target,
    failOn: wait.failOn,
    gone: wait.gone,
    signal: wait.signal,
    ...more,
  });
}
