/**
 * The KubeApi over @kubernetes/client-node, for kubeconfigs the driver's own client (light-api.ts)
 * does not serve: users with exec or auth-provider plugins (or basic auth). Imported lazily by
 * `createKubeApi` only then: the library costs ~33 MiB of memory (bench/README.md).
 */
import type {
  ConfigurationOptions,
  CoreV1Api,
  KubeConfig,
  StorageV1Api,
  V1Node,
  V1VolumeAttachment,
} from '@kubernetes/client-node';
import { AbortedError, anySignal } from '../util/abort.ts';
import { KubeApiError, toKubeApiError } from './kube-errors.ts';
import type { KubeApi, KubeApiOptions, KubeCallOptions } from './kube-types.ts';
import type { ListResult, ListWatcher, WatchEvent } from './watch-cache.ts';
import { WatchGoneError } from './watch-cache.ts';

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
export async function clientNodeKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
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
