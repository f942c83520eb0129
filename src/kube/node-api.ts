/**
 * The node plugin's Kubernetes client: the two calls it makes (read its Node for the zone label,
 * merge-patch the connector annotation) over `node:https`, without @kubernetes/client-node.
 * Loading that library costs the node plugin ~19 MiB of its idle memory (bench/README.md) for two
 * requests; the controller, which lists and watches, keeps using it (kube-api.ts).
 *
 * Credentials: the in-cluster ServiceAccount (token re-read at every request: bound tokens
 * rotate), or a kubeconfig file whose current context uses a bearer token, a token file or a
 * client certificate. Anything else in a kubeconfig (exec and auth-provider plugins, basic auth)
 * makes `nodeKubeApi` answer undefined, and the caller uses the full client instead.
 */
import { readFileSync } from 'node:fs';
import type { Agent, IncomingMessage, RequestOptions } from 'node:http';
import { dirname, resolve } from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import { AbortedError, anySignal } from '../util/abort.ts';
import { type KubeApi, KubeApiError, type KubeApiOptions, toKubeApiError } from './kube-api.ts';

export type NodeKubeApi = Pick<KubeApi, 'getNode' | 'patchNodeAnnotations'>;

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A Node object is a few KiB to a few hundred; anything bigger is not an answer we want. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Node names are DNS subdomains (RFC 1123), at most 253 characters. */
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

interface Target {
  server: URL;
  ca?: Buffer;
  insecure?: boolean;
  cert?: Buffer;
  key?: Buffer;
  /** The bearer token for one request (a token file is re-read each time). */
  token?: () => string | undefined;
}

/**
 * The node plugin's client, or undefined when the kubeconfig needs what only the full client
 * does (exec/auth-provider plugins, basic auth). Throws KubeApiError ('Config') for a missing or
 * unusable configuration, like `loadKubeConfig`.
 */
export async function nodeKubeApi(
  options: KubeApiOptions = {},
  /** The ServiceAccount's token and CA (tests). */
  serviceAccountDir = SA_DIR,
): Promise<NodeKubeApi | undefined> {
  const target = options.kubeconfig ? await fromKubeconfig(options.kubeconfig) : inCluster(serviceAccountDir);
  if (!target) return undefined;
  options.logger?.debug(
    { server: target.server.origin, credentials: options.kubeconfig ?? 'in-cluster ServiceAccount' },
    'Kubernetes API client (node)',
  );
  const https = target.server.protocol === 'https:';
  const mod = https ? await import('node:https') : await import('node:http');
  const agent: Agent = new mod.Agent({ keepAlive: true, maxSockets: 2 });
  const timeoutMs = options.requestTimeoutMs ?? 15_000;
  const request = (
    method: 'GET' | 'PATCH',
    path: string,
    what: string,
    signal: AbortSignal | undefined,
    body?: string,
  ): Promise<unknown> => call(mod.request, agent, target, timeoutMs, { method, path, what, signal, body });
  const nodePath = (name: string, what: string) => {
    if (!NODE_NAME_RE.test(name)) {
      throw new KubeApiError(`${what}: "${name.slice(0, 64)}" is not a valid node name`, 400, 'Invalid');
    }
    return `/api/v1/nodes/${name}`;
  };
  return {
    async getNode(name, opts) {
      const what = `get node ${name.slice(0, 64)}`;
      try {
        return (await request('GET', nodePath(name, what), what, opts?.signal)) as V1Node;
      } catch (err) {
        const e = toKubeApiError(err, what);
        if (e.notFound) return undefined;
        throw e;
      }
    },
    async patchNodeAnnotations(name, annotations, opts) {
      const what = `patch node ${name.slice(0, 64)}`;
      await request(
        'PATCH',
        nodePath(name, what),
        what,
        opts?.signal,
        JSON.stringify({ metadata: { annotations } }),
      );
    },
  };
}

function inCluster(dir: string): Target {
  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) throw new KubeApiError('not running in a cluster', undefined, 'Config');
  const tokenFile = `${dir}/token`;
  return {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    ca: readConfigFile(`${dir}/ca.crt`, 'in-cluster CA'),
    token: () => readConfigFile(tokenFile, 'ServiceAccount token').toString('utf8').trim(),
  };
}

type Named<T> = { name?: unknown } & T;

async function fromKubeconfig(file: string): Promise<Target | undefined> {
  const text = readConfigFile(file, 'kubeconfig').toString('utf8');
  let doc: Record<string, unknown>;
  try {
    // `yaml` only here: in a cluster (no kubeconfig) the node plugin never loads it.
    const yaml = await import('yaml');
    // (the image's bundle may hand a CommonJS module over as `default` only)
    const parse = yaml.parse ?? (yaml as unknown as { default: typeof yaml }).default.parse;
    doc = (parse(text, { maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw new KubeApiError(
      `kubeconfig ${file}: not YAML: ${(err as Error).message.slice(0, 200)}`,
      undefined,
      'Config',
    );
  }
  const pick = <T>(list: unknown, name: unknown): T | undefined =>
    Array.isArray(list) ? (list as Named<T>[]).find((e) => e && e.name === name) : undefined;
  const context = pick<{ context?: { cluster?: string; user?: string } }>(
    doc['contexts'],
    doc['current-context'],
  )?.context;
  const cluster = pick<{ cluster?: Record<string, unknown> }>(doc['clusters'], context?.cluster)?.cluster;
  const user = pick<{ user?: Record<string, unknown> }>(doc['users'], context?.user)?.user ?? {};
  if (!context || !cluster || typeof cluster['server'] !== 'string') {
    throw new KubeApiError(`kubeconfig ${file} has no current cluster`, undefined, 'Config');
  }
  const known = new Set([
    'token',
    'tokenFile',
    'client-certificate',
    'client-certificate-data',
    'client-key',
    'client-key-data',
  ]);
  if (Object.keys(user).some((k) => !known.has(k))) return undefined; // exec, auth-provider, ...
  const base = dirname(resolve(file));
  const material = (data: unknown, path: unknown, what: string): Buffer | undefined =>
    typeof data === 'string'
      ? Buffer.from(data, 'base64')
      : typeof path === 'string'
        ? readConfigFile(resolve(base, path), `${what} of kubeconfig ${file}`)
        : undefined;
  let server: URL;
  try {
    server = new URL(cluster['server']);
  } catch {
    throw new KubeApiError(`kubeconfig ${file}: server is not a URL`, undefined, 'Config');
  }
  const token = user['token'];
  const tokenFile = user['tokenFile'];
  const ca = material(cluster['certificate-authority-data'], cluster['certificate-authority'], 'CA');
  const cert = material(user['client-certificate-data'], user['client-certificate'], 'client certificate');
  const key = material(user['client-key-data'], user['client-key'], 'client key');
  return {
    server,
    ...(ca ? { ca } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecure: true } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(typeof token === 'string'
      ? { token: () => token }
      : typeof tokenFile === 'string'
        ? {
            token: () =>
              readConfigFile(resolve(base, tokenFile), `token file of kubeconfig ${file}`)
                .toString('utf8')
                .trim(),
          }
        : {}),
  };
}

function readConfigFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new KubeApiError(
      `cannot read the ${what} (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      undefined,
      'Config',
    );
  }
}

type RequestFn = (
  options: RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean },
  cb: (res: IncomingMessage) => void,
) => import('node:http').ClientRequest;

/** One JSON request; non-2xx → an error toKubeApiError turns into `<what>: HTTP 404 NotFound: ...`. */
function call(
  request: RequestFn,
  agent: Agent,
  t: Target,
  timeoutMs: number,
  r: { method: string; path: string; what: string; signal: AbortSignal | undefined; body?: string },
): Promise<unknown> {
  const signal = anySignal(AbortSignal.timeout(timeoutMs), r.signal) ?? AbortSignal.timeout(timeoutMs);
  return new Promise((resolvePromise, reject) => {
    if (signal.aborted) {
      reject(new AbortedError(signal.reason));
      return;
    }
    let token: string | undefined;
    try {
      token = t.token?.();
    } catch (err) {
      reject(err);
      return;
    }
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token) headers['Authorization'] = `Bearer ${token}`;
    if (r.body !== undefined) {
      headers['Content-Type'] = 'application/merge-patch+json';
      headers['Content-Length'] = String(Buffer.byteLength(r.body));
    }
    const req = request(
      {
        agent,
        protocol: t.server.protocol,
        hostname: t.server.hostname.replace(/^\[|\]$/g, ''),
        port: t.server.port || (t.server.protocol === 'https:' ? 443 : 80),
        method: r.method,
        path: `${t.server.pathname.replace(/\/$/, '')}${r.path}`,
        headers,
        signal,
        ...(t.ca ? { ca: t.ca } : {}),
        ...(t.cert ? { cert: t.cert } : {}),
        ...(t.key ? { key: t.key } : {}),
        ...(t.insecure ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy(
              new KubeApiError(`${r.what}: answer over ${MAX_RESPONSE_BYTES} bytes`, undefined, 'TooLarge'),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) => reject(toKubeApiError(err, r.what)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(toKubeApiError({ code: status, body: text }, r.what));
            return;
          }
          try {
            resolvePromise(text ? JSON.parse(text) : undefined);
          } catch {
            reject(new KubeApiError(`${r.what}: the answer is not JSON`, status, 'BadResponse'));
          }
        });
      },
    );
    req.on('error', (err) =>
      reject(
        signal.aborted && !r.signal?.aborted
          ? toKubeApiError({ name: 'TimeoutError' }, r.what)
          : toKubeApiError(err, r.what),
      ),
    );
    req.end(r.body);
  });
}
