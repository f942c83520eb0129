import type { KubeApi, KubeApiOptions } from './kube-types.ts';

export { KubeApiError, toKubeApiError } from './kube-errors.ts';
export type { KubeApi, KubeApiOptions, KubeCallOptions } from './kube-types.ts';

/**
 * The driver's Kubernetes client: the own one (light-api.ts) for the in-cluster ServiceAccount and
 * kubeconfigs with a token, token file or client certificate; @kubernetes/client-node
 * (client-node-api.ts, loaded only then) for kubeconfigs with exec/auth-provider plugins.
 */
export async function createKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
  const { lightKubeApi } = await import('./light-api.ts');
  const light = await lightKubeApi(options);
  if (light) return light;
  const { clientNodeKubeApi } = await import('./client-node-api.ts');
  return clientNodeKubeApi(options);
}
