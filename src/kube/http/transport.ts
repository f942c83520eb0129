/**
 * HTTP for the driver's own Kubernetes client (light-api.ts) over `node:https` (`node:http` for a
 * plain-HTTP server in a kubeconfig): one keep-alive agent, TLS verified against the cluster's CA
 * (unless the kubeconfig says insecure-skip-tls-verify), every answer bounded in size, requests
 * bounded in time, watch streams bounded per line and by an idle timer. Errors are KubeApiErrors
 * (`<what>: HTTP 404 NotFound: ...`) that never carry the bearer token.
 */
import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type { SecureContext } from 'node:tls';
import { AbortedError, anySignal } from '../../util/abort.ts';
import { KubeApiError, toKubeApiError } from '../kube-errors.ts';
import type { KubeTarget } from './target.ts';

export interface JsonRequest {
  method: 'GET' | 'PATCH' | 'POST';
  /** Path and query below the server's URL, e.g. `/api/v1/nodes?limit=500`. */
  path: string;
  /** For messages: `list nodes`, `get node n1`. */
  what: string;
  signal?: AbortSignal | undefined;
  body?: string;
  contentType?: string;
  /** Largest answer accepted (bytes). */
  maxBytes: number;
}

export interface StreamRequest {
  path: string;
  what: string;
  signal: AbortSignal;
  /** Largest line (one watch event) accepted (bytes). */
  maxLineBytes: number;
  /** The stream fails when nothing arrives for this long. */
  idleMs: number;
  /** Each newline-delimited JSON value; a throw ends the stream with that error. */
  onValue(value: unknown): void;
}

export interface KubeHttp {
  /** One request; resolves with the parsed JSON answer (undefined when empty), rejects on non-2xx. */
  json(r: JsonRequest): Promise<unknown>;
  /** A streamed GET (watch); resolves when the server ends the stream. */
  stream(r: StreamRequest): Promise<void>;
}

type RequestFn = (
  options: RequestOptions & { secureContext?: SecureContext; rejectUnauthorized?: boolean },
  cb: (res: IncomingMessage) => void,
) => ClientRequest;

export async function kubeHttp(t: KubeTarget, timeoutMs: number): Promise<KubeHttp> {
  const https = t.server.protocol === 'https:';
  // not `import()`: the ESM facade of node:http loads Node's internal undici (src/metrics/server.ts)
  const mod = https ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
  // two watches, three lists of a reconciler pass and a GET or an Event may be in flight at once
  const agent: Agent = new mod.Agent({ keepAlive: true, maxSockets: 8 });
  // One TLS context (CA, client certificate) built once for every connection: given `ca`/`cert`/`key`
  // per request, Node parses them into a new OpenSSL context at every connect.
  const secureContext =
    https && (t.ca || t.cert || t.key)
      ? process.getBuiltinModule('node:tls').createSecureContext({
          ...(t.ca ? { ca: t.ca } : {}),
          ...(t.cert ? { cert: t.cert } : {}),
          ...(t.key ? { key: t.key } : {}),
        })
      : undefined;
  const request: RequestFn = mod.request;
  const prefix = t.server.pathname.replace(/\/$/, '');

  /** Starts a request; the token is read now (a rotated token file is picked up). */
  const open = (
    method: string,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    cb: (res: IncomingMessage) => void,
  ): ClientRequest => {
    const token = t.token?.();
    if (token) headers['Authorization'] = `Bearer ${token}`;
    return request(
      {
        agent,
        protocol: t.server.protocol,
        hostname: t.server.hostname.replace(/^\[|\]$/g, ''),
        port: t.server.port || (t.server.protocol === 'https:' ? 443 : 80),
        method,
        path: `${prefix}${path}`,
        headers,
        signal,
        ...(secureContext ? { secureContext } : {}),
        ...(t.insecure ? { rejectUnauthorized: false } : {}),
      },
      cb,
    );
  };

  return {
    json(r) {
      const signal = anySignal(AbortSignal.timeout(timeoutMs), r.signal) ?? AbortSignal.timeout(timeoutMs);
      return new Promise((resolve, reject) => {
        if (signal.aborted) {
          reject(new AbortedError(signal.reason));
          return;
        }
        const headers: Record<string, string> = { Accept: 'application/json' };
        if (r.body !== undefined) {
          headers['Content-Type'] = r.contentType ?? 'application/json';
          headers['Content-Length'] = String(Buffer.byteLength(r.body));
        }
        let req: ClientRequest;
        try {
          req = open(r.method, r.path, headers, signal, (res) =>
            readBounded(res, r.what, r.maxBytes)
              .then((text) => {
                const status = res.statusCode ?? 0;
                if (status < 200 || status >= 300) throw toKubeApiError({ code: status, body: text }, r.what);
                try {
                  return text ? (JSON.parse(text) as unknown) : undefined;
                } catch {
                  throw new KubeApiError(`${r.what}: the answer is not JSON`, status, 'BadResponse');
                }
              })
              .then(resolve, reject),
          );
        } catch (err) {
          reject(toKubeApiError(err, r.what));
          return;
        }
        req.on('error', (err) => reject(transportError(err, r.what, signal, r.signal)));
        req.end(r.body);
      });
    },

    stream(r) {
      return new Promise((resolve, reject) => {
        if (r.signal.aborted) {
          reject(new AbortedError(r.signal.reason));
          return;
        }
        let settled = false;
        let req: ClientRequest | undefined;
        let idle: NodeJS.Timeout | undefined;
        const finish = (err?: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(idle);
          r.signal.removeEventListener('abort', onAbort);
          req?.destroy();
          if (err) reject(err);
          else resolve();
        };
        const onAbort = () => finish(new AbortedError(r.signal.reason));
        const touch = () => {
          clearTimeout(idle);
          idle = setTimeout(
            () => finish(new KubeApiError(`${r.what}: stream idle for ${r.idleMs} ms`, undefined, 'Idle')),
            r.idleMs,
          );
        };
        r.signal.addEventListener('abort', onAbort, { once: true });
        touch();
        try {
          req = open('GET', r.path, { Accept: 'application/json' }, r.signal, (res) => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) {
              readBounded(res, r.what, 64 * 1024).then(
                (text) => finish(toKubeApiError({ code: status, body: text }, r.what)),
                finish,
              );
              return;
            }
            const lines = new LineSplitter(r.maxLineBytes, r.what);
            res.on('data', (chunk: Buffer) => {
              if (settled) return;
              touch();
              try {
                for (const line of lines.push(chunk)) r.onValue(parseLine(line, r.what));
              } catch (err) {
                finish(err);
              }
            });
            res.on('error', (err) => finish(transportError(err, r.what, r.signal, r.signal)));
            res.on('end', () => finish());
          });
        } catch (err) {
          finish(toKubeApiError(err, r.what));
          return;
        }
        req.on('error', (err) => finish(transportError(err, r.what, r.signal, r.signal)));
        req.end();
      });
    },
  };
}

/** The body as text, or a KubeApiError ('TooLarge') as soon as it passes `max` bytes. */
function readBounded(res: IncomingMessage, what: string, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        res.destroy(new KubeApiError(`${what}: answer over ${max} bytes`, undefined, 'TooLarge'));
        return;
      }
      chunks.push(c);
    });
    res.on('error', (err) => reject(err instanceof KubeApiError ? err : toKubeApiError(err, what)));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** A socket error, or the timeout (`signal` fired but not the caller's own `callerSignal`). */
function transportError(
  err: unknown,
  what: string,
  signal: AbortSignal,
  callerSignal: AbortSignal | undefined,
): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (signal.aborted && !callerSignal?.aborted) return toKubeApiError({ name: 'TimeoutError' }, what);
  return toKubeApiError(err, what);
}

function parseLine(line: Buffer, what: string): unknown {
  try {
    return JSON.parse(line.toString('utf8'));
  } catch {
    throw new KubeApiError(`${what}: a streamed line is not JSON`, undefined, 'BadResponse');
  }
}

/** Splits a byte stream into lines, none longer than `max` bytes (else a 'TooLarge' error). */
export class LineSplitter {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  readonly #max: number;
  readonly #what: string;
  constructor(max: number, what: string) {
    this.#max = max;
    this.#what = what;
  }

  /** The complete, non-empty lines that `chunk` ends. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.#add(nl - start);
      const part = chunk.subarray(start, nl);
      const line = this.#pending.length ? Buffer.concat([...this.#pending, part]) : part;
      this.#pending = [];
      this.#pendingBytes = 0;
      start = nl + 1;
      if (line.length > 0) out.push(line);
    }
    if (start < chunk.length) {
      this.#add(chunk.length - start);
      this.#pending.push(chunk.subarray(start));
    }
    return out;
  }

  #add(bytes: number): void {
    this.#pendingBytes += bytes;
    if (this.#pendingBytes > this.#max) {
      throw new KubeApiError(`${this.#what}: a streamed line over ${this.#max} bytes`, undefined, 'TooLarge');
    }
  }
}
