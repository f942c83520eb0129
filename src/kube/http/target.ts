/**
 * Where the driver's own Kubernetes client (src/kube/light-api.ts) sends its requests and with
 * which credentials: the in-cluster ServiceAccount (token re-read at every request: bound tokens
 * rotate), or a kubeconfig file whose current context uses a bearer token, a token file or a
 * client certificate. Anything else in a kubeconfig (exec and auth-provider plugins, basic auth)
 * answers undefined, and the caller uses @kubernetes/client-node instead (client-node-api.ts).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KubeApiError } from '../kube-errors.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeTarget {
  server: URL;
  ca?: Buffer;
  insecure?: boolean;
  cert?: Buffer;
  key?: Buffer;
  /** The bearer token for one request (a token file is re-read each time). */
  token?: () => string | undefined;
}

/**
 * The target of `kubeconfig` (a file), else of the in-cluster ServiceAccount in `serviceAccountDir`;
 * undefined when the kubeconfig needs what only the full client does. Throws KubeApiError
 * ('Config') for a missing or unusable configuration.
 */
export async function kubeTarget(
  kubeconfig: string | undefined,
  serviceAccountDir = SERVICE_ACCOUNT_DIR,
): Promise<KubeTarget | undefined> {
  return kubeconfig ? fromKubeconfig(kubeconfig) : inCluster(serviceAccountDir);
}

function inCluster(dir: string): KubeTarget {
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

/** What a kubeconfig user may hold for this client; any other key needs the full client. */
const KNOWN_USER_KEYS = new Set([
  'token',
  'tokenFile',
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
]);

async function fromKubeconfig(file: string): Promise<KubeTarget | undefined> {
  const text = readConfigFile(file, 'kubeconfig').toString('utf8');
  let doc: Record<string, unknown>;
  try {
    // `yaml` only here: in a cluster (no kubeconfig) the driver never loads it.
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
  if (Object.keys(user).some((k) => !KNOWN_USER_KEYS.has(k))) return undefined; // exec, auth-provider, ...
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
