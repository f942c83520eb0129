/**
 * @kubernetes/client-node as an entry point of its own in the image's bundle (scripts/bundle.sh:
 * dist/bundle/client-node.js, sharing its chunk with main.js): the startup snapshot
 * (src/cli/snapshot.ts), which does not carry the library, loads it from there for the kubeconfigs
 * that need it (src/kube/client-node-api.ts).
 */
export * from '@kubernetes/client-node';
