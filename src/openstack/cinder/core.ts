/**
 * The plumbing every Cinder resource module shares: microversion negotiation, one request
 * (`call`), one page of a collection (`page`), every page (`iterate`) and `POST .../action`.
 *
 * - Microversions: the first call discovers the server's range (`GET /`, fallback `GET /v3/`) and
 *   negotiates the highest version both sides support (client max 3.70, or `maxMicroversion`);
 *   `ignoreMicroversion` pins 3.0 without discovery (cloud.conf `ignore-volume-microversion`).
 *   Every request then carries `OpenStack-API-Version: volume X.Y`; a call that needs a higher
 *   version is refused locally with MicroversionError before anything is sent.
 */
import { AbortedError, throwIfAborted } from '../../util/abort.ts';
import type { Logger } from '../../util/logger.ts';
import type { CallOptions, Microversion } from '../cinder-api.ts';
import { discoverVolumeApi } from '../cinder-discovery.ts';
import { MicroversionError } from '../errors.ts';
import {
  BASE_MICROVERSION,
  type CinderFeature,
  CLIENT_MAX_MICROVERSION,
  compareMicroversions,
  formatMicroversion,
  negotiateMicroversion,
  parseMicroversion,
  requireFeature,
} from '../microversion.ts';
import type { ServiceSession } from '../session.ts';
import { type Answer, expectList, expectOne, idPath, type Shape } from './checks.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Query = Record<string, string | number | boolean | undefined>;

export interface CinderClientOptions {
  session: ServiceSession;
  logger: Logger;
  /** Cap below the client's own maximum (3.70), e.g. "3.50" to work around a server bug. */
  maxMicroversion?: string;
  /** Do not negotiate: use 3.0 (cloud.conf `ignore-volume-microversion`). */
  ignoreMicroversion?: boolean;
}

/** A page of a Cinder collection. */
export interface Page<T> {
  items: T[];
  next: string | undefined;
}

/** The page of a list whose id filter cannot match anything (see `idFiltersValid`). */
export function emptyPage<T>(): Page<T> {
  return { items: [], next: undefined };
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  query?: Query;
  body?: unknown;
  idempotent?: boolean;
  feature?: CinderFeature;
}

/** Resolves to undefined when `promise` rejects with a 404 (OpenStackError.notFound). */
export async function ignoreNotFound<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (typeof err === 'object' && err !== null && (err as { notFound?: unknown }).notFound === true) {
      return undefined;
    }
    throw err;
  }
}

/** The `marker` of the "next" link of a Cinder list response, if any. */
export function nextMarker(links: unknown): string | undefined {
  if (!Array.isArray(links)) return undefined;
  const next = links.find((l) => l && typeof l === 'object' && (l as { rel?: unknown }).rel === 'next') as
    | { href?: unknown }
    | undefined;
  if (!next || typeof next.href !== 'string') return undefined;
  try {
    return new URL(next.href, 'http://placeholder/').searchParams.get('marker') ?? undefined;
  } catch {
    return undefined;
  }
}

export function dropUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Bound of one version discovery (shared by every caller waiting for it). */
const DISCOVERY_TIMEOUT_MS = 30_000;

export class CinderCore {
  readonly session: ServiceSession;
  readonly #logger: Logger;
  readonly #clientMax: Microversion;
  readonly #ignoreMicroversion: boolean;
  #negotiated: Microversion | undefined;
  #negotiating: Promise<Microversion> | undefined;

  constructor(opts: CinderClientOptions) {
    this.session = opts.session;
    this.#logger = opts.logger;
    this.#ignoreMicroversion = opts.ignoreMicroversion ?? false;
    const builtIn = parseMicroversion(CLIENT_MAX_MICROVERSION);
    const requested = opts.maxMicroversion ? parseMicroversion(opts.maxMicroversion) : builtIn;
    this.#clientMax = compareMicroversions(requested, builtIn) < 0 ? requested : builtIn;
  }

  get microversion(): Microversion {
    if (!this.#negotiated) {
      throw new MicroversionError('Cinder microversion not negotiated yet: call negotiate() first');
    }
    return this.#negotiated;
  }

  /**
   * Version discovery + negotiation; single-flight, cached on success, retried after a failure.
   * The shared discovery runs under its own timeout, not a caller's signal, so one caller giving
   * up does not fail the others; each caller stops waiting when its own signal fires.
   */
  negotiate(opts: CallOptions = {}): Promise<Microversion> {
    if (this.#negotiated) return Promise.resolve(this.#negotiated);
    if (this.#ignoreMicroversion) {
      this.#negotiated = parseMicroversion(BASE_MICROVERSION);
      return Promise.resolve(this.#negotiated);
    }
    if (!this.#negotiating) {
      this.#negotiating = (async () => {
        try {
          const range = await discoverVolumeApi(this.session, AbortSignal.timeout(DISCOVERY_TIMEOUT_MS));
          const mv = negotiateMicroversion(this.#clientMax, range);
          this.#negotiated = mv;
          this.#logger.info(
            {
              microversion: formatMicroversion(mv),
              serverMin: range ? formatMicroversion(range.min) : undefined,
              serverMax: range ? formatMicroversion(range.max) : undefined,
            },
            'negotiated Cinder API microversion',
          );
          return mv;
        } finally {
          this.#negotiating = undefined;
        }
      })();
      this.#negotiating.catch(() => {});
    }
    return waitWithSignal(this.#negotiating, opts.signal);
  }

  /** True when the negotiated microversion (negotiating first if needed) is >= `version`. */
  async atLeast(version: string, opts: CallOptions = {}): Promise<boolean> {
    const mv = await this.negotiate(opts);
    return compareMicroversions(mv, parseMicroversion(version)) >= 0;
  }

  /** One request; the body is returned unchecked (use `one`/`list` for answers that are used). */
  async call<T>(method: Method, path: string, operation: string, opts: RequestOptions = {}): Promise<T> {
    return (await this.#send(method, path, operation, opts)).body as T;
  }

  /** One request whose answer must hold `key`: an object with `shape` (checks.ts). */
  async one<T>(
    method: Method,
    path: string,
    operation: string,
    key: string,
    shape: Shape,
    opts: RequestOptions = {},
  ): Promise<T> {
    return expectOne<T>(await this.#send(method, path, operation, opts), key, shape);
  }

  /** One request whose answer must hold `key`: a list of objects with `shape` (checks.ts). */
  async list<T>(
    path: string,
    operation: string,
    key: string,
    shape: Shape,
    opts: RequestOptions = {},
  ): Promise<T[]> {
    return expectList<T>(await this.#send('GET', path, operation, opts), key, shape);
  }

  async #send(method: Method, path: string, operation: string, opts: RequestOptions): Promise<Answer> {
    const mv = await this.negotiate({ signal: opts.signal });
    if (opts.feature) requireFeature(mv, opts.feature, operation);
    const res = await this.session.request<unknown>({
      method,
      path,
      headers: { 'OpenStack-API-Version': `volume ${formatMicroversion(mv)}`, Accept: 'application/json' },
      query: opts.query,
      body: opts.body,
      idempotent: opts.idempotent ?? method !== 'POST',
      signal: opts.signal,
      operation: `cinder.${operation}`,
    });
    return { status: res.status, url: res.url, method, requestId: res.requestId, body: res.body };
  }

  /** One page of `GET path` (items under `key`, each checked to have `shape`). */
  async page<T>(
    path: string,
    key: string,
    shape: Shape,
    operation: string,
    query: Query,
    opts: CallOptions & { feature?: CinderFeature },
  ): Promise<Page<T>> {
    const res = await this.#send('GET', path, operation, {
      signal: opts.signal,
      query,
      feature: opts.feature,
    });
    const items = expectList<T>(res, key, shape);
    const links = (res.body as Record<string, unknown>)[`${key}_links`];
    return { items, next: items.length > 0 ? nextMarker(links) : undefined };
  }

  async *iterate<T>(
    fetchPage: (marker: string | undefined) => Promise<Page<T>>,
    marker?: string,
  ): AsyncGenerator<T> {
    let next = marker;
    const seen = new Set<string>();
    do {
      const page = await fetchPage(next);
      yield* page.items;
      next = page.next;
      // A server that keeps answering the same marker would loop forever; stop instead.
      if (next !== undefined) {
        if (seen.has(next)) throw new Error(`Cinder pagination loop: marker ${next} returned twice`);
        seen.add(next);
      }
    } while (next !== undefined);
  }

  async action(
    kind: 'volumes' | 'attachments' | 'groups',
    id: string,
    operation: string,
    body: unknown,
    opts: { signal?: AbortSignal | undefined; feature?: CinderFeature; idempotent?: boolean },
  ): Promise<unknown> {
    return this.call('POST', idPath(kind, id, '/action', 'POST'), operation, { ...opts, body });
  }
}

/** Waits for a shared promise; rejects with AbortedError as soon as this caller's signal fires. */
function waitWithSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  throwIfAborted(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
