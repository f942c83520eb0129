import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from './metrics.ts';

export interface HealthResult {
  ok: boolean;
  /** Short human-readable reason; returned in the /healthz body, so never put secrets here. */
  detail?: string;
}

export interface MetricsServerOptions {
  /** '[host]:port': ':9808' (all interfaces), '127.0.0.1:9808', '[::1]:9808'; port 0 = any free port. */
  address: string;
  metrics: Metrics;
  /** Liveness check behind GET /healthz: 200 when ok, 503 otherwise. */
  health: () => Promise<HealthResult>;
  logger: Logger;
  /** A health check that takes longer than this fails (default 5000 ms). */
  healthTimeoutMs?: number;
}

export interface MetricsServer {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/** Splits '[::1]:9808' / '127.0.0.1:9808' / ':9808' into host (undefined = all interfaces) and port. */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([\w.-]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`metrics address ${address}: expected [host]:port, e.g. :9808`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

const MAX_DETAIL = 512;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`health check did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Serves GET /metrics (Prometheus text format from the instance's own registry) and GET /healthz
 * (the driver's liveness: 200 "ok" or 503 with the reason) over plain HTTP. Meant for the pod
 * network or localhost: it exposes no secrets and accepts no input.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(opts.address);
  const log = opts.logger.child({ component: 'metrics-server' });
  const healthTimeoutMs = opts.healthTimeoutMs ?? 5000;

  const send = (res: ServerResponse, code: number, type: string, body: string, head: boolean) => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(head ? undefined : body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
      return;
    }
    if (path === '/metrics') {
      const body = await opts.metrics.registry.metrics();
      send(res, 200, opts.metrics.registry.contentType, body, head);
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      let result: HealthResult;
      try {
        result = await withTimeout(opts.health(), healthTimeoutMs);
      } catch (err) {
        result = { ok: false, detail: err instanceof Error ? err.message : String(err) };
      }
      const detail = (result.detail ?? (result.ok ? 'ok' : 'unhealthy')).slice(0, MAX_DETAIL);
      if (!result.ok) log.warn({ detail }, 'health check failed');
      send(res, result.ok ? 200 : 503, 'text/plain; charset=utf-8', `${detail}\n`, head);
      return;
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /healthz\n', head);
  };

  // `node:http` without its ESM facade: an ES `import` of `node:http` reads every export, and the
  // lazy `WebSocket`/`MessageEvent`/`CloseEvent` getters load Node's internal copy of undici (fetch,
  // web streams): ~3 MiB of idle memory for a server that needs `createServer` only
  // (bench/README.md, "Idle memory as deployed, fourth pass"). getBuiltinModule hands over the
  // CommonJS module object, whose getters stay untouched.
  const { createServer } = process.getBuiltinModule('node:http');
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'metrics request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n', false);
      else res.destroy();
    });
  });
  // Scrapes are small and quick: bound how long a slow or idle client can hold a socket.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  log.info({ address: opts.address, port: bound }, 'serving /metrics and /healthz');

  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
