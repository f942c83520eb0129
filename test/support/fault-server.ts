/**
 * A scriptable HTTP server on 127.0.0.1 for fault tests of the OpenStack HTTP core: per-route
 * queues of scripted responses (status, headers, body, delays before headers or between body
 * chunks), connection resets, hangs, redirects, and a record of every request.
 *
 *   const srv = await FaultServer.start();
 *   srv.script('GET', '/v3/p/volumes/x', { status: 503, headers: { 'retry-after': '0' } }, { status: 200, body: {...} });
 *   // ... srv.count('GET', '/v3/p/volumes/x') === 2
 *   await srv.close();
 *
 * Each request to a route consumes the next scripted action; the last action repeats. A route may
 * also be a function of the request. Unscripted requests get 404 with a Cinder-style fault body.
 *
 * `fakeKeystone()` adds a minimal Keystone v3 token endpoint (a test double: the real Keystone is
 * exercised by the integration tests against the lab) and token checking for other routes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { resetSocket } from './reset-socket.ts';

export interface RecordedRequest {
  method: string;
  /** Path plus query, as sent. */
  url: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: unknown;
  at: number;
  /** Client port: requests with the same port came over the same (kept-alive) connection. */
  remotePort: number | undefined;
}

export type FaultAction =
  | {
      status: number;
      headers?: Record<string, string>;
      /** Objects are sent as JSON, strings as text/plain (unless headers say otherwise). */
      body?: unknown;
      /** Wait before sending the status line and headers. */
      delayMs?: number;
      /** Send the body in two halves with this pause in between. */
      bodyStallMs?: number;
    }
  /** TCP RST without any response. */
  | { reset: true }
  /** Close the socket cleanly without any response. */
  | { close: true }
  /** Never answer (until the server closes). */
  | { hang: true }
  | { redirect: string; status?: 301 | 302 | 303 | 307 | 308 };

export type FaultHandler = (req: RecordedRequest, n: number) => FaultAction | Promise<FaultAction>;

interface Route {
  method: string;
  path: string | RegExp;
  actions: FaultAction[] | FaultHandler;
  hits: number;
}

export interface FakeKeystone {
  /** Tokens issued so far, in order. */
  readonly issued: string[];
  /** Number of POST /v3/auth/tokens (accepted or not). */
  readonly tokenRequests: number;
  /** Makes every issued token invalid (services then answer 401). */
  revokeAll(): void;
  /** Lifetime of the next tokens (ms). */
  ttlMs: number;
  /** Delay before answering a token request (to widen race windows). */
  delayMs: number;
  /** Password the fake accepts (others get 401). */
  password: string;
  /** Offset of the fake's clock from ours, for issued_at/expires_at (clock-skew tests). */
  skewMs: number;
}

/** Keystone's answer to a missing, wrong or revoked credential. */
const UNAUTHORIZED: FaultAction = {
  status: 401,
  body: {
    error: {
      code: 401,
      title: 'Unauthorized',
      message: 'The request you have made requires authentication.',
    },
  },
};

export class FaultServer {
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #routes: Route[] = [];
  readonly #sockets = new Set<Socket>();
  #validTokens: Set<string> | undefined;
  url = '';

  private constructor() {
    this.#server = createServer((req, res) => {
      void this.#handle(req, res);
    });
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(): Promise<FaultServer> {
    const srv = new FaultServer();
    await new Promise<void>((resolve) => srv.#server.listen(0, '127.0.0.1', resolve));
    const addr = srv.#server.address() as AddressInfo;
    srv.url = `http://127.0.0.1:${addr.port}`;
    return srv;
  }

  /** Scripts a route: each request takes the next action; the last one repeats. */
  script(method: string, path: string | RegExp, ...actions: FaultAction[]): this {
    if (actions.length === 0) throw new Error('script needs at least one action');
    this.#routes.unshift({ method, path, actions, hits: 0 });
    return this;
  }

  /** Routes to a handler function (called with the request and its 1-based hit count). */
  handle(method: string, path: string | RegExp, handler: FaultHandler): this {
    this.#routes.unshift({ method, path, actions: handler, hits: 0 });
    return this;
  }

  /** Requests received, optionally filtered by method and exact path (without query). */
  count(method?: string, path?: string): number {
    return this.requests.filter((r) => (!method || r.method === method) && (!path || r.path === path)).length;
  }

  /** Open TCP connections (for keep-alive assertions). */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /**
   * A minimal Keystone v3: `POST /v3/auth/tokens` accepts password auth for any user with
   * `password`, issues `tok-N` with the configured lifetime and a catalog whose block-storage
   * endpoint is this server (`/v3/<project>`); afterwards every other route requires a valid token.
   */
  fakeKeystone(opts: { project?: string; password?: string; ttlMs?: number } = {}): FakeKeystone {
    const project = opts.project ?? 'p1';
    const valid = new Set<string>();
    this.#validTokens = valid;
    const state = {
      issued: [] as string[],
      tokenRequests: 0,
      ttlMs: opts.ttlMs ?? 3_600_000,
      delayMs: 0,
      password: opts.password ?? 'pw',
      skewMs: 0,
      revokeAll: () => valid.clear(),
    };
    this.handle('POST', '/v3/auth/tokens', async (req) => {
      state.tokenRequests++;
      if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
      const body = req.json as { auth?: { identity?: { password?: { user?: { password?: string } } } } };
      if (body?.auth?.identity?.password?.user?.password !== state.password) {
        return UNAUTHORIZED;
      }
      const tok = `tok-${state.issued.length + 1}`;
      state.issued.push(tok);
      valid.add(tok);
      const now = Date.now() + state.skewMs;
      return {
        status: 201,
        headers: { 'x-subject-token': tok, 'x-openstack-request-id': `req-auth-${state.issued.length}` },
        body: {
          token: {
            issued_at: new Date(now).toISOString(),
            expires_at: new Date(now + state.ttlMs).toISOString(),
            user: { id: 'u1' },
            project: { id: project, name: 'proj' },
            roles: [{ name: 'member' }],
            catalog: [
              {
                type: 'volumev3',
                endpoints: [
                  { interface: 'public', region_id: 'R1', url: `${this.url}/v3/%(project_id)s` },
                  { interface: 'internal', region_id: 'R2', url: `${this.url}/internal/v3/${project}` },
                ],
              },
            ],
          },
        },
      };
    });
    return state;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    let json: unknown;
    try {
      json = body ? JSON.parse(body) : undefined;
    } catch {
      json = undefined;
    }
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      url,
      path,
      headers: req.headers,
      body,
      json,
      at: Date.now(),
      remotePort: req.socket.remotePort,
    };
    this.requests.push(rec);
    const route = this.#routes.find(
      (r) => r.method === rec.method && (typeof r.path === 'string' ? r.path === path : r.path.test(path)),
    );
    let action: FaultAction;
    if (!route) {
      action = {
        status: 404,
        body: { itemNotFound: { message: `no route ${rec.method} ${path}`, code: 404 } },
      };
    } else {
      route.hits++;
      const isTokenRoute = path === '/v3/auth/tokens';
      const token = req.headers['x-auth-token'];
      if (
        this.#validTokens &&
        !isTokenRoute &&
        (typeof token !== 'string' || !this.#validTokens.has(token))
      ) {
        action = UNAUTHORIZED;
      } else if (typeof route.actions === 'function') {
        action = await route.actions(rec, route.hits);
      } else {
        action = route.actions[Math.min(route.hits, route.actions.length) - 1]!;
      }
    }
    await this.#respond(req, res, action);
  }

  async #respond(req: IncomingMessage, res: ServerResponse, action: FaultAction): Promise<void> {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    if ('reset' in action) {
      resetSocket(req.socket);
      return;
    }
    if ('close' in action) {
      req.socket.destroy();
      return;
    }
    if ('hang' in action) return;
    if ('redirect' in action) {
      res.writeHead(action.status ?? 302, { location: action.redirect, 'content-length': '0' });
      res.end();
      return;
    }
    if (action.delayMs) await sleep(action.delayMs);
    if (res.destroyed) return;
    const headers: Record<string, string> = { ...action.headers };
    let payload = '';
    if (action.body !== undefined) {
      if (typeof action.body === 'string') {
        payload = action.body;
        headers['content-type'] ??= 'text/plain';
      } else {
        payload = JSON.stringify(action.body);
        headers['content-type'] ??= 'application/json';
      }
    }
    headers['content-length'] = String(Buffer.byteLength(payload));
    res.writeHead(action.status, headers);
    if (action.bodyStallMs && payload.length > 1) {
      const half = Math.floor(payload.length / 2);
      res.write(payload.slice(0, half));
      await sleep(action.bodyStallMs);
      if (!res.destroyed) res.end(payload.slice(half));
      return;
    }
    res.end(payload);
  }
}
