/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of a real HTTP service (the lab Cinder), for
 * the chaos suites (test/integration/chaos, bench/chaos.ts). Point the driver's Cinder endpoint at
 * `proxy.url` (noauth: `OS_ENDPOINT=<proxy.url>/v3`); the proxy forwards every request to `target`
 * and, for a fraction `rate` of them chosen by a seeded PRNG, injects one fault:
 *
 *   http500  answer 500 at once, without forwarding (Cinder never sees the request)
 *   http503  answer 503 at once, without forwarding
 *   drop     forward, let Cinder act, then reset the client's connection instead of answering
 *            (the hard case for every POST: the work is done, the caller does not know)
 *   delay    forward, let Cinder act, then hold the answer for `delayMs` (longer than the caller's
 *            deadline) before relaying it, if the caller is still there
 *
 * The decisions come from one mulberry32 stream per proxy: the same seed gives the same sequence of
 * decisions (which request gets which fault depends on the order requests arrive in, which
 * concurrency can change; the trace records what happened).
 *
 * Hooks (the crash suite kills the driver from them): `before(req)` runs before the fault decision
 * and forwarding, `after(req, status)` once Cinder has answered and before the answer is relayed.
 * A hook returning 'abort' resets the caller's connection (before: the request is not forwarded).
 *
 * Not a double: every request that is not answered by a fault reaches the real Cinder unchanged.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { resetSocket } from './reset-socket.ts';

export const FAULT_KINDS = ['http500', 'http503', 'drop', 'delay'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** mulberry32: a small, fast, seedable PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ProxiedRequest {
  /** 1-based arrival number. */
  seq: number;
  method: string;
  /** Path without query. */
  path: string;
  /** Path with query. */
  url: string;
  body: string;
}

export type HookResult = undefined | 'abort';

export interface FaultProxyOptions {
  /** Origin of the real service, e.g. http://127.0.0.1:8786. */
  target: string;
  seed: number;
  /** Fraction of eligible requests that get a fault (0..1). */
  rate: number;
  /** Relative weights of the fault kinds (default: all 1). */
  weights?: Partial<Record<FaultKind, number>>;
  /** How long `delay` holds an answer (default 12 s). */
  delayMs?: number;
  /** Which requests may get a fault (default: every request). */
  eligible?: (req: ProxiedRequest) => boolean;
  before?: (req: ProxiedRequest) => HookResult | Promise<HookResult>;
  after?: (req: ProxiedRequest, status: number) => HookResult | Promise<HookResult>;
  /** Trace entries kept (default 20,000; the oldest are dropped). */
  traceLimit?: number;
}

export interface TraceEntry {
  seq: number;
  at: number;
  method: string;
  url: string;
  fault?: FaultKind;
  /** Cinder's status (absent when the request was not forwarded or the forward failed). */
  status?: number;
  /** Hook outcome or forward failure. */
  note?: string;
  /** The first 160 characters of a POST/PUT body (names and ids, for the violation trace). */
  body?: string;
}

export interface ProxyStats {
  requests: number;
  forwarded: number;
  faults: Record<FaultKind, number>;
  /** Faults by kind and method, e.g. `drop POST`. */
  byMethod: Record<string, number>;
}

const MAX_BODY = 16 * 1024 * 1024;

export class FaultProxy {
  url = '';
  rate: number;
  readonly trace: TraceEntry[] = [];
  readonly stats: ProxyStats = {
    requests: 0,
    forwarded: 0,
    faults: { http500: 0, http503: 0, drop: 0, delay: 0 },
    byMethod: {},
  };
  readonly #opts: FaultProxyOptions;
  readonly #rand: () => number;
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 32 });
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<() => void>();
  readonly #target: URL;
  #seq = 0;

  private constructor(opts: FaultProxyOptions) {
    this.#opts = opts;
    this.rate = opts.rate;
    this.#rand = mulberry32(opts.seed);
    this.#target = new URL(opts.target);
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => res.destroy());
    });
    this.#server.keepAliveTimeout = 30_000;
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(opts);
    await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
    p.url = `http://127.0.0.1:${(p.#server.address() as AddressInfo).port}`;
    return p;
  }

  /** The trace as text lines: the last `n` entries, only those mentioning one of `terms` if given. */
  traceText(n = 200, terms?: readonly string[]): string {
    const hit = (e: TraceEntry) => !terms || terms.some((t) => e.url.includes(t) || e.body?.includes(t));
    return this.trace
      .filter(hit)
      .slice(-n)
      .map(
        (e) =>
          `#${e.seq} ${new Date(e.at).toISOString().slice(11, 23)} ${e.method} ${e.url}` +
          `${e.fault ? ` FAULT=${e.fault}` : ''}${e.status !== undefined ? ` -> ${e.status}` : ''}` +
          `${e.note ? ` (${e.note})` : ''}${e.body ? ` body=${e.body}` : ''}`,
      )
      .join('\n');
  }

  async close(): Promise<void> {
    for (const cancel of this.#timers) cancel();
    for (const s of this.#sockets) s.destroy();
    this.#agent.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #pick(): FaultKind | undefined {
    const hit = this.#rand() < this.rate;
    const r = this.#rand(); // always drawn: the stream stays aligned whatever the rate
    if (!hit) return undefined;
    const w = FAULT_KINDS.map((k) => Math.max(0, this.#opts.weights?.[k] ?? 1));
    const total = w.reduce((a, b) => a + b, 0);
    let x = r * total;
    for (let i = 0; i < FAULT_KINDS.length; i++) {
      x -= w[i] ?? 0;
      if (x < 0) return FAULT_KINDS[i];
    }
    return undefined;
  }

  #record(e: TraceEntry): TraceEntry {
    this.trace.push(e);
    const limit = this.#opts.traceLimit ?? 20_000;
    if (this.trace.length > limit) this.trace.splice(0, this.trace.length - limit);
    return e;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        return;
      }
      chunks.push(c as Buffer);
    }
    const body = Buffer.concat(chunks);
    const url = req.url ?? '/';
    const info: ProxiedRequest = {
      seq: ++this.#seq,
      method: req.method ?? 'GET',
      path: url.split('?')[0] ?? '/',
      url,
      body: body.toString('utf8'),
    };
    this.stats.requests++;
    const entry = this.#record({ seq: info.seq, at: Date.now(), method: info.method, url });
    if (info.method === 'POST' || info.method === 'PUT') entry.body = info.body.slice(0, 160);

    if ((await this.#opts.before?.(info)) === 'abort') {
      entry.note = 'aborted before forwarding';
      resetSocket(req.socket);
      return;
    }
    const eligible = this.#opts.eligible?.(info) ?? true;
    const fault = eligible ? this.#pick() : undefined;
    if (fault) {
      entry.fault = fault;
      this.stats.faults[fault]++;
      const key = `${fault} ${info.method}`;
      this.stats.byMethod[key] = (this.stats.byMethod[key] ?? 0) + 1;
    }
    if (fault === 'http500' || fault === 'http503') {
      const status = fault === 'http500' ? 500 : 503;
      const payload = JSON.stringify({
        computeFault: { code: status, message: `chaos proxy: injected HTTP ${status}` },
      });
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
      });
      res.end(payload);
      return;
    }

    let upstream: { status: number; headers: Record<string, string | string[]>; body: Buffer };
    try {
      upstream = await this.#forward(req, body);
      this.stats.forwarded++;
      entry.status = upstream.status;
    } catch (err) {
      entry.note = `forward failed: ${(err as Error).message}`;
      resetSocket(req.socket);
      return;
    }
    if ((await this.#opts.after?.(info, upstream.status)) === 'abort') {
      entry.note = 'aborted after Cinder answered';
      resetSocket(req.socket);
      return;
    }
    if (fault === 'drop') {
      resetSocket(req.socket);
      return;
    }
    if (fault === 'delay') {
      await this.#sleepUnlessClosed(this.#opts.delayMs ?? 12_000, req.socket);
      if (res.destroyed || req.socket.destroyed) return;
    }
    res.writeHead(upstream.status, upstream.headers);
    res.end(upstream.body);
  }

  #forward(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k)) continue;
      headers[k] = v;
    }
    headers['host'] = this.#target.host;
    headers['content-length'] = String(body.length);
    return new Promise((resolve, reject) => {
      const out = httpRequest(
        {
          protocol: this.#target.protocol,
          hostname: this.#target.hostname,
          port: this.#target.port,
          method: req.method,
          path: req.url,
          headers,
          agent: this.#agent,
          timeout: 120_000,
        },
        (up) => {
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('error', reject);
          up.on('end', () => {
            const data = Buffer.concat(chunks);
            const h: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(up.headers)) {
              if (v === undefined || HOP_BY_HOP.has(k)) continue;
              h[k] = v;
            }
            h['content-length'] = String(data.length);
            resolve({ status: up.statusCode ?? 502, headers: h, body: data });
          });
        },
      );
      out.on('timeout', () => out.destroy(new Error('upstream timeout')));
      out.on('error', reject);
      out.end(body);
    });
  }

  #sleepUnlessClosed(ms: number, socket: Socket): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        socket.off('close', done);
        this.#timers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      socket.once('close', done);
      this.#timers.add(done);
    });
  }
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
]);
