import { sleep } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import { type KubeApi, KubeApiError, toKubeApiError } from './kube-api.ts';
import { checkKubeletVersion } from './kubelet-version.ts';

/** The well-known zone label kubelets (or the cloud controller manager) set on Nodes. */
export const DEFAULT_ZONE_LABEL = 'topology.kubernetes.io/zone';

export interface ZoneLookupOptions {
  /** Tries while the API is unreachable (transport errors, 5xx, 429); default 5. */
  attempts?: number;
  /** First retry delay, doubled each time; default 1 s (5 attempts ≈ 15 s in all). */
  backoffMs?: number;
  signal?: AbortSignal;
}

/**
 * The Cinder availability zone of a node for NodeGetInfo's accessible topology: the value of
 * `labelKey` on the node's Node object, or undefined when the label is absent or empty (logged,
 * since volumes are then not placed by zone). Retries briefly while the API is unreachable, then
 * throws KubeApiError, as it does at once for a missing Node or a 403: NodeGetInfo must not
 * register the node without its zone. A static zone flag, when given, wins (the caller's choice).
 */
export async function zoneFromNodeLabel(
  api: Pick<KubeApi, 'getNode'>,
  nodeName: string,
  labelKey: string = DEFAULT_ZONE_LABEL,
  logger?: Logger,
  options: ZoneLookupOptions = {},
): Promise<string | undefined> {
  const attempts = Math.max(1, options.attempts ?? 5);
  let delay = options.backoffMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const node = await api.getNode(nodeName, { signal: options.signal });
      if (!node) {
        throw new KubeApiError(
          `get node ${nodeName}: the Node does not exist (the node plugin must be given the Kubernetes node name)`,
          404,
          'NotFound',
        );
      }
      checkKubeletVersion(node, logger);
      const zone = node.metadata?.labels?.[labelKey] || undefined;
      if (zone === undefined) {
        logger?.warn(
          { node: nodeName, label: labelKey },
          'the Node has no zone label: the node reports no topology, so volumes are not placed by availability zone',
        );
      } else {
        logger?.info({ node: nodeName, label: labelKey, zone }, 'node zone from the Node label');
      }
      return zone;
    } catch (err) {
      const e = toKubeApiError(err, `get node ${nodeName}`);
      if (!e.transient || attempt >= attempts || options.signal?.aborted) throw e;
      logger?.warn(
        { node: nodeName, err: e.message, retryInMs: delay },
        'cannot read the Node for its zone label; retrying',
      );
      await sleep(delay, options.signal);
      delay *= 2;
    }
  }
}
