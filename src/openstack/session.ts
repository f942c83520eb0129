/**
 * An authenticated OpenStack session: token cache (Keystone) or noauth identity, endpoint
 * resolution, and per-service request helpers that add the auth header and re-authenticate once
 * on 401.
 *
 * Token lifecycle:
 * - cached until `refreshAt` (min(5 min, 10% of lifetime) before expiry), then re-issued;
 * - a 401 from a service drops the token that was used and retries the request once with a new one;
 * - single-flight: however many calls need a token at the same time, one `POST /auth/tokens` runs
 *   and all of them wait for it (each with its own AbortSignal; an abort stops the wait, not the
 *   shared request);
 * - the configuration (a function) is re-evaluated for every authentication, so rotated credentials
 *   are picked up when the token is refreshed, after an authentication failure, and at once after
 *   `reloadCredentials()` (which also drops the cached token).
 *
 * noauth (standalone Cinder, `auth_strategy = noauth`): `X-Auth-Token: <user_id>:<project_id>`
 * and the configured endpoint, with `/<project_id>` appended when it ends in `/v3`. The project id
 * must match Cinder's `project_id_regex` (`[0-9a-f-]+`).
 */
import { type CloudConfig, ConfigError } from '../config/types.ts';
import { AbortedError } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import {
  findEndpoint,
  joinUrl,
  SERVICE_TYPES,
  type ServiceKind,
  substituteProjectId,
  withProjectSegment,
} from './catalog.ts';
import { OpenStackError } from './errors.ts';
import { HttpClient, type HttpObserver, type HttpRequest, type HttpResponse } from './http.ts';
import { authenticate, identityUrl, type KeystoneToken } from './keystone.ts';

export type ServiceRequest = Omit<HttpRequest, 'url'> & {
  /** '/volumes/x', relative to the service endpoint, or an absolute URL. */
  path: string;
};

export interface ServiceSession {
  readonly service: string;
  /** Base URL, incl. `/v3/<project>` for block-storage. */
  endpoint(signal?: AbortSignal): Promise<string>;
  projectId(signal?: AbortSignal): Promise<string>;
  /** Adds auth headers, re-auths once on 401 and retries, throws OpenStackError for >= 400. */
  request<T>(req: ServiceRequest): Promise<HttpResponse<T>>;
}

export interface OpenStackSessionOptions {
  config: CloudConfig | (() => CloudConfig);
  logger: Logger;
  /** Shared HTTP client; when absent the session creates (and closes) its own from the config's TLS. */
  http?: HttpClient;
  /** Metrics hook for the session's own HTTP client (a given `http` brings its own observer). */
  observer?: HttpObserver;
  /** Called after every token request (metrics: token refreshes by result). */
  onTokenRequest?: (ok: boolean) => void;
  /** Timeout of one token request (default 30 s). */
  authTimeoutMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Cinder's project_id_regex in noauth mode. */
const NOAUTH_PROJECT_RE = /^[0-9a-f-]+$/;

export class OpenStackSession {
  readonly #configSource: CloudConfig | (() => CloudConfig);
  readonly #logger: Logger;
  readonly #http: HttpClient;
  readonly #ownsHttp: boolean;
  readonly #authTimeoutMs: number;
  readonly #now: () => number;
  #config: CloudConfig;
  #token: KeystoneToken | undefined;
  #inflight: Promise<KeystoneToken> | undefined;
  #tokenRequests = 0;
  readonly #onTokenRequest: ((ok: boolean) => void) | undefined;
  readonly #services = new Map<ServiceKind, ServiceSession>();

  constructor(opts: OpenStackSessionOptions) {
    this.#configSource = opts.config;
    this.#logger = opts.logger;
    this.#onTokenRequest = opts.onTokenRequest;
    this.#config = this.#readConfig();
    this.#authTimeoutMs = opts.authTimeoutMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
    if (opts.http) {
      this.#http = opts.http;
      this.#ownsHttp = false;
    } else {
      this.#http = new HttpClient({
        logger: opts.logger,
        tls: this.#config.tls,
        ...(opts.observer ? { observer: opts.observer } : {}),
      });
      this.#ownsHttp = true;
    }
  }

  /** Number of `POST /auth/tokens` issued so far (tests, bench). */
  get tokenRequests(): number {
    return this.#tokenRequests;
  }

  /** The auth mode of the current configuration. */
  get noauth(): boolean {
    return this.#config.auth.type === 'noauth';
  }

  /** Re-reads the configuration and drops the cached token: the next call authenticates anew. */
  reloadCredentials(): void {
    this.#config = this.#readConfig();
    this.#token = undefined;
    this.#logger.info({ authType: this.#config.auth.type }, 'OpenStack credentials reloaded');
  }

  service(type: ServiceKind): ServiceSession {
    let s = this.#services.get(type);
    if (!s) {
      s = this.#makeService(type);
      this.#services.set(type, s);
    }
    return s;
  }

  /**
   * The value for `X-Auth-Token`: a valid (cached or new) Keystone token, or `user:project` in
   * noauth mode. Secret: never log it.
   */
  async authToken(signal?: AbortSignal): Promise<string> {
    if (this.noauth) return this.#noauthToken();
    return (await this.#validToken(signal)).value;
  }

  async close(): Promise<void> {
    if (this.#ownsHttp) await this.#http.close();
  }

  #readConfig(): CloudConfig {
    return typeof this.#configSource === 'function' ? this.#configSource() : this.#configSource;
  }

  #noauthProject(): string {
    const auth = this.#config.auth;
    const project = auth.projectId;
    if (!project) throw new ConfigError('noauth: a project id is required (auth.projectId)');
    if (!NOAUTH_PROJECT_RE.test(project)) {
      throw new ConfigError(
        `noauth: project id "${project}" does not match Cinder's project_id_regex [0-9a-f-]+ (use a hex id)`,
      );
    }
    return project;
  }

  #noauthToken(): string {
    const auth = this.#config.auth;
    const user = auth.noauthUserId ?? auth.userId ?? 'admin';
    if (user.includes(':')) throw new ConfigError(`noauth: user id "${user}" must not contain ':'`);
    return `${user}:${this.#noauthProject()}`;
  }

  /** A token that is not due for refresh; single-flight. */
  async #validToken(signal?: AbortSignal, stale?: string): Promise<KeystoneToken> {
    const cur = this.#token;
    if (cur && cur.value !== stale && this.#now() < cur.refreshAt) return cur;
    if (cur && stale !== undefined && cur.value === stale) this.#token = undefined;
    if (!this.#inflight) {
      this.#inflight = this.#issueToken().finally(() => {
        this.#inflight = undefined;
      });
      // A caller that gives up must not leave an unhandled rejection behind.
      this.#inflight.catch(() => {});
    }
    return waitWithSignal(this.#inflight, signal);
  }

  async #issueToken(): Promise<KeystoneToken> {
    // Credentials may have been rotated: read them again for every authentication.
    try {
      this.#config = this.#readConfig();
    } catch (err) {
      this.#logger.warn({ err }, 're-reading OpenStack credentials failed; using the previous ones');
    }
    const auth = this.#config.auth;
    this.#tokenRequests++;
    const started = performance.now();
    try {
      const token = await authenticate(this.#http, auth, { timeoutMs: this.#authTimeoutMs, now: this.#now });
      this.#token = token;
      this.#onTokenRequest?.(true);
      this.#logger.debug(
        {
          userId: token.userId,
          projectId: token.projectId,
          expiresAt: new Date(token.expiresAt).toISOString(),
          durationMs: Math.round(performance.now() - started),
        },
        'keystone token issued',
      );
      return token;
    } catch (err) {
      this.#token = undefined;
      this.#onTokenRequest?.(false);
      this.#logger.warn(
        { err: err instanceof Error ? err.message : String(err), authType: auth.type },
        'keystone authentication failed',
      );
      throw err;
    }
  }

  async #endpointFor(type: ServiceKind, signal?: AbortSignal): Promise<string> {
    const cfg = this.#config;
    if (cfg.auth.type === 'noauth') {
      if (type !== 'block-storage') {
        throw new ConfigError(
          `noauth: no ${type} endpoint (only block-storage is available without Keystone)`,
        );
      }
      if (!cfg.endpointOverride) {
        throw new ConfigError('noauth: the block-storage endpoint (endpointOverride) is required');
      }
      const project = this.#noauthProject();
      return withProjectSegment(substituteProjectId(cfg.endpointOverride, project), project);
    }
    if (type === 'identity') {
      if (!cfg.auth.authUrl) throw new ConfigError('Keystone auth: auth URL is required');
      return identityUrl(cfg.auth.authUrl);
    }
    const token = await this.#validToken(signal);
    if (type === 'block-storage' && cfg.endpointOverride) {
      const url = substituteProjectId(cfg.endpointOverride, token.projectId);
      return token.projectId ? withProjectSegment(url, token.projectId) : url;
    }
    const url = findEndpoint(token.catalog, SERVICE_TYPES[type], cfg.interface, cfg.region);
    return substituteProjectId(url, token.projectId).replace(/\/+$/, '');
  }

  async #projectId(signal?: AbortSignal): Promise<string> {
    if (this.noauth) return this.#noauthProject();
    const token = await this.#validToken(signal);
    if (!token.projectId) {
      throw new ConfigError('the Keystone token is not project-scoped: configure a project (id or name)');
    }
    return token.projectId;
  }

  async #request<T>(type: ServiceKind, req: ServiceRequest): Promise<HttpResponse<T>> {
    const { path, ...rest } = req;
    const send = async (token: string): Promise<HttpResponse<T>> => {
      const endpoint = /^https?:\/\//i.test(path) ? '' : await this.#endpointFor(type, req.signal);
      const url = endpoint ? joinUrl(endpoint, path) : path;
      return this.#http.request<T>({
        ...rest,
        url,
        service: rest.service ?? type,
        headers: { ...rest.headers, 'X-Auth-Token': token },
      });
    };
    if (this.noauth) return send(this.#noauthToken());
    const token = await this.#validToken(req.signal);
    try {
      return await send(token.value);
    } catch (err) {
      if (!(err instanceof OpenStackError) || !err.unauthorized) throw err;
      // The token was revoked or expired early: get another one (single-flight) and retry once.
      this.#logger.debug({ operation: req.operation, path: err.url }, 'HTTP 401: re-authenticating once');
      const fresh = await this.#validToken(req.signal, token.value);
      return send(fresh.value);
    }
  }

  #makeService(type: ServiceKind): ServiceSession {
    return {
      service: type,
      endpoint: (signal) => this.#endpointFor(type, signal),
      projectId: (signal) => this.#projectId(signal),
      request: <T>(req: ServiceRequest) => this.#request<T>(type, req),
    };
  }
}

/** Waits for a shared promise, rejecting with AbortedError when this caller's signal fires. */
function waitWithSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new AbortedError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
