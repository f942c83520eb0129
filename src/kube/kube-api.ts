import type {
  ConfigurationOptions,
  CoreV1Api,
  CoreV1Event,
  KubeConfig,
  StorageV1Api,
  V1Node,
  V1PersistentVolume,
  V1VolumeAttachment,
} from '@kubernetes/client-node';
import { AbortedError, anySignal } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import type { ListResult, ListWatcher, WatchEvent } from './watch-cache.ts';
import { WatchGoneError } from './watch-cache.ts';

/**
 * The slice of the Kubernetes API the driver uses, behind an interface so the CSI and reconciler
 * logic can be unit-tested with doubles. `createKubeApi` implements it with
 * `@kubernetes/client-node`, which is imported lazily (only the code paths that talk to Kubernetes
 * pay for loading it).
 *
 * Only APIs Kubernetes 1.20 serves: core v1 (nodes, persistentvolumes, events) and
 * storage.k8s.io/v1 (volumeattachments).
 */
export interface KubeApi {
  /** The Node, or undefined when it does not exist. */
  getNode(name: string, opts?: KubeCallOptions): Promise<V1Node | undefined>;
  /** JSON merge patch of metadata.annotations (a null value removes the key). */
  patchNodeAnnotations(
    name: string,
    annotations: Record<string, string | null>,
    opts?: KubeCallOptions,
  ): Promise<void>;
  nodes: ListWatcher<V1Node>;
  volumeAttachments: ListWatcher<V1VolumeAttachment>;
  listPersistentVolumes(opts?: KubeCallOptions): Promise<V1PersistentVolume[]>;
  listVolumeAttachments(opts?: KubeCallOptions): Promise<V1VolumeAttachment[]>;
  /** Creates a core v1 Event. */
  createEvent(namespace: string, event: CoreV1Event, opts?: KubeCallOptions): Promise<void>;
}

export interface KubeCallOptions {
  signal?: AbortSignal;
}

export interface KubeApiOptions {
  /** Path of a kubeconfig file (out of cluster). Without it: the in-cluster ServiceAccount. */
  kubeconfig?: string;
  /** Per-request timeout for non-watch calls (default 15 s). */
  requestTimeoutMs?: number;
  /** Server-side watch timeout; each watch is re-established after it (default 300 s). */
  watchTimeoutSeconds?: number;
  /** Logs which API server and credentials are used (debug). */
  logger?: Logger;
}

/** A failed Kubernetes API call: HTTP status (undefined for transport errors) and the server's reason. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly status: number | undefined;
  readonly reason: string | undefined;
  constructor(
    message: string,
    status: number | undefined,
    reason: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = status;
    this.reason = reason;
  }
  get forbidden(): boolean {
    return this.status === 403;
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  /** Transport failure, timeout or a 5xx/429: worth retrying. */
  get transient(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

/**
 * Converts whatever the client library threw into a KubeApiError with a short message:
 * `<what>: HTTP 403 Forbidden: nodes "n1" is forbidden: User ... cannot patch ...`.
 * Never includes request headers (the bearer token).
 */
export function toKubeApiError(err: unknown, what: string): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof AbortedError)
    return new KubeApiError(`${what}: ${err.message}`, undefined, 'Aborted', { cause: err });
  const e = err as {
    code?: unknown;
    statusCode?: unknown;
    body?: unknown;
    message?: unknown;
    name?: unknown;
  };
  const status =
    typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined) {
    let body: unknown = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // not a Status object
      }
    }
    const b = (body ?? {}) as { reason?: unknown; message?: unknown };
    const reason = typeof b.reason === 'string' ? b.reason : undefined;
    const message =
      typeof b.message === 'string' ? b.message : typeof body === 'string' ? body.slice(0, 300) : '';
    return new KubeApiError(
      `${what}: HTTP ${status}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`,
      status,
      reason,
      { cause: err },
    );
  }
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new KubeApiError(`${what}: request timed out or was cancelled`, undefined, 'Timeout', {
      cause: err,
    });
  }
  return new KubeApiError(`${what}: Kubernetes API unreachable: ${message}`, undefined, undefined, {
    cause: err,
  });
}

/** Loads the kubeconfig: the given file, else the in-cluster ServiceAccount. */
export async function loadKubeConfig(kubeconfig?: string): Promise<KubeConfig> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  if (!kc.getCurrentCluster()) {
    throw new KubeApiError(
      kubeconfig ? `kubeconfig ${kubeconfig} has no current cluster` : 'not running in a cluster',
      undefined,
      'Config',
    );
  }
  return kc;
}

/** A KubeApi backed by @kubernetes/client-node (loaded lazily). */
export async function createKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
  const k8s = await import('@kubernetes/client-node');
  const kc = await loadKubeConfig(options.kubeconfig);
  options.logger?.debug(
    {
      server: kc.getCurrentCluster()?.server,
      credentials: options.kubeconfig ?? 'in-cluster ServiceAccount',
    },
    'Kubernetes API client',
  );
  const core: CoreV1Api = kc.makeApiClient(k8s.CoreV1Api);
  const storage: StorageV1Api = kc.makeApiClient(k8s.StorageV1Api);
  const watch = new k8s.Watch(kc);
  const timeoutMs = options.requestTimeoutMs ?? 15_000;
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;

  /**
   * ConfigurationOptions for one call: a timeout (+ the caller's signal) and extra headers. The
   * object-parameter API runs observable middleware (the library's own minimal Observable).
   */
  const callOptions = (
    opts: KubeCallOptions | undefined,
    headers: Record<string, string> = {},
  ): ConfigurationOptions => ({
    middleware: [
      {
        pre: (ctx) => {
          const signal = anySignal(AbortSignal.timeout(timeoutMs), opts?.signal);
          if (signal) ctx.setSignal(signal);
          for (const [k, v] of Object.entries(headers)) ctx.setHeaderParam(k, v);
          return new k8s.Observable(Promise.resolve(ctx));
        },
        post: (res) => new k8s.Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append',
  });

  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toKubeApiError(err, what);
    }
  };

  /** Watch `path` from `resourceVersion`; resolves when the server ends the stream. */
  const watchPath = <T>(
    path: string,
    what: string,
    resourceVersion: string,
    onEvent: (e: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(new AbortedError(signal.reason));
        return;
      }
      let settled = false;
      let controller: AbortController | undefined;
      // the server closes the watch after timeoutSeconds; if it goes silent for longer than that
      // (half-open TCP connection), give up on it and let the caller re-list/re-watch
      const idleMs = (watchTimeoutSeconds + 30) * 1000;
      let idle = setTimeout(
        () => finish(new KubeApiError(`${what}: watch idle for ${idleMs} ms`, undefined, 'Idle')),
        idleMs,
      );
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => finish(new AbortedError(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      watch
        .watch(
          path,
          { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds },
          (type: string, obj: unknown) => {
            if (settled) return;
            clearTimeout(idle);
            idle = setTimeout(
              () => finish(new KubeApiError(`${what}: watch idle`, undefined, 'Idle')),
              idleMs,
            );
            if (type === 'ERROR') {
              const status = obj as { code?: number; reason?: string; message?: string };
              if (status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone') {
                finish(new WatchGoneError(`${what}: resourceVersion ${resourceVersion} is too old`));
              } else {
                finish(toKubeApiError({ code: status?.code ?? 500, body: status }, what));
              }
              return;
            }
            if (type === 'BOOKMARK') {
              const rv = (obj as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion;
              if (rv) onEvent({ type: 'BOOKMARK', resourceVersion: rv });
              return;
            }
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
              onEvent({ type, object: obj as T });
            }
          },
          (err: unknown) => {
            if (err && (err as { statusCode?: number }).statusCode === 410) {
              finish(new WatchGoneError(`${what}: resourceVersion ${resourceVersion} is too old`));
            } else finish(err ? toKubeApiError(err, what) : undefined);
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (err) => finish(toKubeApiError(err, what)),
        );
    });

  /** All pages of a list call. */
  const listAll = async <T>(
    what: string,
    page: (
      cont: string | undefined,
    ) => Promise<{ items: T[]; metadata?: { _continue?: string; resourceVersion?: string } }>,
  ): Promise<ListResult<T>> => {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const res = await call(what, () => page(cont));
      items.push(...res.items);
      cont = res.metadata?._continue || undefined;
      resourceVersion = res.metadata?.resourceVersion ?? resourceVersion;
    } while (cont);
    return { items, resourceVersion };
  };

  const nodes: ListWatcher<V1Node> = {
    list: (signal) =>
      listAll('list nodes', (c) => core.listNode({ limit: 500, _continue: c }, callOptions({ signal }))),
    watch: (rv, onEvent, signal) => watchPath('/api/v1/nodes', 'watch nodes', rv, onEvent, signal),
  };
  const volumeAttachments: ListWatcher<V1VolumeAttachment> = {
    list: (signal) =>
      listAll('list volumeattachments', (c) =>
        storage.listVolumeAttachment({ limit: 500, _continue: c }, callOptions({ signal })),
      ),
    watch: (rv, onEvent, signal) =>
      watchPath('/apis/storage.k8s.io/v1/volumeattachments', 'watch volumeattachments', rv, onEvent, signal),
  };

  return {
    async getNode(name, opts) {
      try {
        return await core.readNode({ name }, callOptions(opts));
      } catch (err) {
        const e = toKubeApiError(err, `get node ${name}`);
        if (e.notFound) return undefined;
        throw e;
      }
    },
    async patchNodeAnnotations(name, annotations, opts) {
      await call(`patch node ${name}`, () =>
        core.patchNode(
          { name, body: { metadata: { annotations } } },
          callOptions(opts, { 'Content-Type': 'application/merge-patch+json' }),
        ),
      );
    },
    nodes,
    volumeAttachments,
    async listPersistentVolumes(opts) {
      const signal = opts?.signal ?? new AbortController().signal;
      return (
        await listAll('list persistentvolumes', (c) =>
          core.listPersistentVolume({ limit: 500, _continue: c }, callOptions({ signal })),
        )
      ).items;
    },
    async listVolumeAttachments(opts) {
      return (await volumeAttachments.list(opts?.signal ?? new AbortController().signal)).items;
    },
    async createEvent(namespace, event, opts) {
      await call(`create event in ${namespace}`, () =>
        core.createNamespacedEvent({ namespace, body: event }, callOptions(opts)),
      );
    },
  };
}
