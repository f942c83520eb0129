/**
 * The driver's own Kubernetes client: exactly the calls KubeApi makes (read and merge-patch a
 * Node; list and watch Nodes and VolumeAttachments; list PersistentVolumes; create Events) over
 * `node:https` (http/transport.ts), without @kubernetes/client-node, whose loading cost the node
 * plugin ~19 MiB and the controller ~33 MiB of idle memory (bench/README.md).
 *
 * Credentials (http/target.ts): the in-cluster ServiceAccount, or a kubeconfig with a token, a token
 * file or a client certificate; for anything else `lightKubeApi` answers undefined and
 * `createKubeApi` uses the full library. Every answer is bounded in size and shape-checked before
 * the driver reads it: a list must be `{items: [object with metadata.name], metadata}`, a watch
 * event `{type, object}`; anything else is a KubeApiError ('BadResponse'). Watches end with
 * WatchGoneError on 410 Gone (HTTP status or an ERROR event), and the WatchCache re-lists.
 */
import type { CoreV1Event, V1Node, V1PersistentVolume, V1VolumeAttachment } from '@kubernetes/client-node';
import { kubeTarget } from './http/target.ts';
import { type KubeHttp, kubeHttp } from './http/transport.ts';
import { KubeApiError, toKubeApiError } from './kube-errors.ts';
import type { KubeApi, KubeApiOptions } from './kube-types.ts';
import { type ListResult, type ListWatcher, type WatchEvent, WatchGoneError } from './watch-cache.ts';

/** Bounds of answers (bytes): one object, one page of a list, one watch event. */
export const LIMITS = {
  objectBytes: 4 * 1024 * 1024,
  pageBytes: 32 * 1024 * 1024,
  eventBytes: 4 * 1024 * 1024,
  /** Objects per list page, and pages per listing (1,000 × 500 objects). */
  pageSize: 500,
  maxPages: 1000,
};
/** Node names are DNS subdomains (RFC 1123), at most 253 characters. */
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Namespaces are DNS labels. */
const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const bad = (what: string, why: string) => new KubeApiError(`${what}: ${why}`, undefined, 'BadResponse');
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** An object with `metadata.name` (a string): what every item, Node and watched object must be. */
function checkObject<T>(v: unknown, what: string): T {
  if (!isObject(v) || !isObject(v['metadata']) || typeof v['metadata']['name'] !== 'string') {
    throw bad(what, 'the answer is not a Kubernetes object (no metadata.name)');
  }
  return v as T;
}

/** One page of a list: `{items: [...], metadata: {continue?, resourceVersion?}}`. */
function checkPage<T>(v: unknown, what: string): { items: T[]; cont?: string; rv?: string } {
  if (!isObject(v)) throw bad(what, 'the answer is not a list');
  const items = v['items'] ?? [];
  if (!Array.isArray(items)) throw bad(what, 'the answer has no items list');
  const meta = v['metadata'] ?? {};
  if (!isObject(meta)) throw bad(what, 'the list has no metadata');
  const cont = meta['continue'];
  const rv = meta['resourceVersion'];
  if ((cont !== undefined && typeof cont !== 'string') || (rv !== undefined && typeof rv !== 'string')) {
    throw bad(what, 'the list metadata is malformed');
  }
  return {
    items: items.map((i) => checkObject<T>(i, what)),
    ...(cont ? { cont } : {}),
    ...(rv !== undefined ? { rv } : {}),
  };
}

/** One watch event, or a WatchGoneError / KubeApiError for an ERROR event. */
export function parseWatchEvent<T>(
  v: unknown,
  what: string,
  resourceVersion: string,
): WatchEvent<T> | undefined {
  if (!isObject(v) || typeof v['type'] !== 'string' || !isObject(v['object'])) {
    throw bad(what, 'a watch event is not {type, object}');
  }
  const { type, object } = v as { type: string; object: Record<string, unknown> };
  if (type === 'ERROR') {
    const code = object['code'];
    const reason = object['reason'];
    if (code === 410 || reason === 'Expired' || reason === 'Gone') {
      throw new WatchGoneError(`${what}: resourceVersion ${resourceVersion} is too old`);
    }
    throw toKubeApiError({ code: typeof code === 'number' ? code : 500, body: object }, what);
  }
  if (type === 'BOOKMARK') {
    const rv = isObject(object['metadata']) ? object['metadata']['resourceVersion'] : undefined;
    if (typeof rv !== 'string' || !rv) throw bad(what, 'a bookmark without resourceVersion');
    return { type, resourceVersion: rv };
  }
  if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
    return { type, object: checkObject<T>(object, what) };
  }
  return undefined; // a type of a later API version: ignored
}

/**
 * The light client, or undefined when the kubeconfig needs what only the full client does.
 * Throws KubeApiError ('Config') for a missing or unusable configuration.
 */
export async function lightKubeApi(
  options: KubeApiOptions = {},
  /** The ServiceAccount's token and CA (tests). */
  serviceAccountDir?: string,
): Promise<KubeApi | undefined> {
  const target = await kubeTarget(options.kubeconfig, serviceAccountDir);
  if (!target) return undefined;
  options.logger?.debug(
    { server: target.server.origin, credentials: options.kubeconfig ?? 'in-cluster ServiceAccount' },
    'Kubernetes API client',
  );
  const http = await kubeHttp(target, options.requestTimeoutMs ?? 15_000);
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;
  const nodePath = (name: string, what: string) => {
    if (!NODE_NAME_RE.test(name)) {
      throw new KubeApiError(`${what}: "${name.slice(0, 64)}" is not a valid node name`, 400, 'Invalid');
    }
    return `/api/v1/nodes/${name}`;
  };
  const nodes = listWatcher<V1Node>(http, '/api/v1/nodes', 'nodes', watchTimeoutSeconds);
  const volumeAttachments = listWatcher<V1VolumeAttachment>(
    http,
    '/apis/storage.k8s.io/v1/volumeattachments',
    'volumeattachments',
    watchTimeoutSeconds,
  );
  const never = () => new AbortController().signal;
  return {
    async getNode(name, opts) {
      const what = `get node ${name.slice(0, 64)}`;
      try {
        const path = nodePath(name, what);
        const v = await http.json({
          method: 'GET',
          path,
          what,
          signal: opts?.signal,
          maxBytes: LIMITS.objectBytes,
        });
        return checkObject<V1Node>(v, what);
      } catch (err) {
        const e = toKubeApiError(err, what);
        if (e.notFound) return undefined;
        throw e;
      }
    },
    async patchNodeAnnotations(name, annotations, opts) {
      const what = `patch node ${name.slice(0, 64)}`;
      await http.json({
        method: 'PATCH',
        path: nodePath(name, what),
        what,
        signal: opts?.signal,
        body: JSON.stringify({ metadata: { annotations } }),
        contentType: 'application/merge-patch+json',
        maxBytes: LIMITS.objectBytes,
      });
    },
    nodes,
    volumeAttachments,
    async listPersistentVolumes(opts) {
      const path = '/api/v1/persistentvolumes';
      return (
        await listAll<V1PersistentVolume>(http, path, 'list persistentvolumes', opts?.signal ?? never())
      ).items;
    },
    async listVolumeAttachments(opts) {
      return (await volumeAttachments.list(opts?.signal ?? never())).items;
    },
    async createEvent(namespace, event: CoreV1Event, opts) {
      const what = `create event in ${namespace.slice(0, 64)}`;
      if (!NAMESPACE_RE.test(namespace))
        throw new KubeApiError(`${what}: not a namespace name`, 400, 'Invalid');
      await http.json({
        method: 'POST',
        path: `/api/v1/namespaces/${namespace}/events`,
        what,
        signal: opts?.signal,
        body: JSON.stringify(event),
        maxBytes: LIMITS.objectBytes,
      });
    },
  };
}

/** All pages of a list (`limit` + `continue`), at most LIMITS.maxPages. */
async function listAll<T>(
  http: KubeHttp,
  path: string,
  what: string,
  signal: AbortSignal,
): Promise<ListResult<T>> {
  const items: T[] = [];
  let cont: string | undefined;
  let resourceVersion = '';
  for (let page = 0; ; page++) {
    if (page >= LIMITS.maxPages) throw bad(what, `more than ${LIMITS.maxPages} pages`);
    const query = `?limit=${LIMITS.pageSize}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
    const v = await http.json({
      method: 'GET',
      path: `${path}${query}`,
      what,
      signal,
      maxBytes: LIMITS.pageBytes,
    });
    const res = checkPage<T>(v, what);
    for (const item of res.items) items.push(item);
    resourceVersion = res.rv ?? resourceVersion;
    cont = res.cont;
    if (!cont) return { items, resourceVersion };
  }
}

function listWatcher<T>(
  http: KubeHttp,
  path: string,
  resource: string,
  timeoutSeconds: number,
): ListWatcher<T> {
  return {
    list: (signal) => listAll<T>(http, path, `list ${resource}`, signal),
    watch: async (resourceVersion, onEvent, signal) => {
      const what = `watch ${resource}`;
      const query = `?watch=1&allowWatchBookmarks=true&timeoutSeconds=${timeoutSeconds}&resourceVersion=${encodeURIComponent(resourceVersion)}`;
      try {
        await http.stream({
          path: `${path}${query}`,
          what,
          signal,
          maxLineBytes: LIMITS.eventBytes,
          // the server ends the watch after timeoutSeconds; silence past that is a half-open connection
          idleMs: (timeoutSeconds + 30) * 1000,
          onValue: (v) => {
            const e = parseWatchEvent<T>(v, what, resourceVersion);
            if (e) onEvent(e);
          },
        });
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 410) {
          throw new WatchGoneError(`${what}: resourceVersion ${resourceVersion} is too old`);
        }
        throw err;
      }
    },
  };
}
