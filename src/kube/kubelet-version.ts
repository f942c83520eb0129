import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from '../util/logger.ts';

/**
 * The oldest kubelet the node plugin serves. Kubelets before 1.26 dial the plugin's unix socket
 * with the socket *path* as the HTTP/2 `:authority` (fixed upstream in kubernetes/kubernetes#112597),
 * and Node's HTTP/2 layer rejects that pseudo-header with PROTOCOL_ERROR before any handler runs,
 * so the driver cannot even see, let alone answer, those calls. The node plugin therefore checks
 * the version its Node reports at start and says so plainly in its log.
 */
export const MIN_KUBELET_VERSION = { major: 1, minor: 26 } as const;

export interface KubeletVersion {
  major: number;
  minor: number;
  raw: string;
}

/** `v1.20.2`, `v1.27.3-eks-a5565ad`, `1.30.0+k3s1` → major/minor; anything else → undefined. */
export function parseKubeletVersion(raw: string | undefined): KubeletVersion | undefined {
  if (typeof raw !== 'string' || raw.length > 64) return undefined;
  const m = /^v?(\d{1,3})\.(\d{1,3})(?:[.+-]|$)/.exec(raw);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), raw };
}

export type KubeletVerdict = 'supported' | 'too-old' | 'unknown';

export function kubeletVerdict(version: KubeletVersion | undefined): KubeletVerdict {
  if (!version) return 'unknown';
  const { major, minor } = MIN_KUBELET_VERSION;
  if (version.major > major || (version.major === major && version.minor >= minor)) return 'supported';
  return 'too-old';
}

/**
 * Logs (error level) when the Node's kubelet is older than MIN_KUBELET_VERSION: its CSI calls will
 * fail with PROTOCOL_ERROR on the kubelet's side and never reach the driver. Not fatal: a kubelet
 * built with the upstream fix backported (the test lab's) reports an old version and works.
 */
export function checkKubeletVersion(node: V1Node, logger?: Logger): KubeletVerdict {
  const raw = node.status?.nodeInfo?.kubeletVersion;
  const verdict = kubeletVerdict(parseKubeletVersion(raw));
  const min = `v${MIN_KUBELET_VERSION.major}.${MIN_KUBELET_VERSION.minor}`;
  const node_ = node.metadata?.name;
  const kubelet = typeof raw === 'string' ? raw.slice(0, 64) : undefined;
  if (verdict === 'too-old') {
    logger?.error(
      { node: node_, kubeletVersion: kubelet, minimum: min },
      `this node's kubelet is older than ${min}: kubelets before ${min} send the socket path as the HTTP/2 :authority, which this driver's gRPC server rejects (PROTOCOL_ERROR), so mounts on this node will fail unless the kubelet carries the upstream fix (kubernetes/kubernetes#112597); upgrade the kubelet`,
    );
  } else if (verdict === 'unknown') {
    logger?.warn(
      { node: node_, kubeletVersion: kubelet, minimum: min },
      `cannot tell this node's kubelet version; the node plugin needs kubelet ${min} or later`,
    );
  }
  return verdict;
}
