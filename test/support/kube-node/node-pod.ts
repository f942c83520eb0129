/**
 * The node plugin as a pod of the project's image, the way the chart describes it: the DaemonSet
 * of deploy/node.yaml (generated from charts/cinder-csi) taken as is — privileged, root, host
 * network, host /dev and /sys, the kubelet's directory with Bidirectional mount propagation, the
 * image's own host tools (mkfs, mount, blkid, xfs_growfs, ...), the node ServiceAccount in-cluster
 * — with only what the lab forces changed:
 *   - the lab kubelet's root instead of /var/lib/kubelet (same path inside and outside), this
 *     run's driver name, image and cloud-config Secret, its state directory; host directories the
 *     DaemonSet would create (/etc/iscsi, /var/lib/iscsi, /etc/multipath, /etc/ceph, /run/udev)
 *     point into the run's directory instead, so the test creates nothing in the host's /etc;
 *     /lib/modules too (this machine has none; the doubles load no kernel module);
 *   - the sidecar containers are dropped: node-driver-registrar is the stand-in host process of
 *     registrar.ts, the liveness probe sidecar (and the probe on its port) has no image here;
 *     metrics off (a fixed host port);
 *   - KUBERNETES_SERVICE_HOST/PORT = the lab API server (no kube-proxy: the Service IP the kubelet
 *     injects is not routed on this machine);
 *   - this machine has no kernel iSCSI initiator: the image's iscsiadm (and tee for the sysfs
 *     control files, blockdev, multipath, multipathd) are shadowed by small wrappers (first on
 *     PATH) that run the test doubles of test/doubles on the host (`chroot /host`, the host's /
 *     mounted read-write), exactly the doubles the process variant uses, with `--host-root` at
 *     their host root and its initiator name (driver.ts writeInitiatorName). `/host` is test-only
 *     and has no mount propagation: this machine's / is a private mount (no systemd), on which
 *     containerd refuses HostToContainer; the doubles need none (their loop devices appear in the
 *     host's /dev, their files are plain files). The kubelet directory keeps the chart's
 *     Bidirectional propagation: the kubelet makes its root an rshared mount, as on any node.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type {
  AppsV1Api,
  CoreV1Api,
  V1Container,
  V1DaemonSet,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { DOUBLES_BIN, type DoublesEnv } from '../../doubles/index.ts';
import { csiClient } from '../csi-client.ts';
import { readContainerLog } from './container-log.ts';
import { writeInitiatorName } from './driver.ts';
import { until } from './node-lab.ts';

const REPO = resolve(import.meta.dirname, '../../..');
export const NODE_YAML = join(REPO, 'deploy/node.yaml');

export interface NodePodOptions {
  run: string;
  driverName: string;
  kubeletRoot: string;
  nodeName: string;
  /** The kubelet's pod log directory (container logs: the lab API server cannot proxy them). */
  podLogs: string;
  image: string;
  namespace: string;
  cloudConfigSecret: string;
  /** The run's host directory (state, wrappers, stand-in host directories). */
  dir: string;
  doubles: DoublesEnv;
  apiHost: string;
  apiPort: string;
}

/** Writes the wrappers that run the doubles on the host; returns their directory. */
function writeWrappers(o: NodePodOptions): string {
  const bin = join(o.dir, 'pod-bin');
  mkdirSync(bin, { recursive: true });
  const hostPath = `${DOUBLES_BIN}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;
  for (const tool of ['iscsiadm', 'tee', 'blockdev', 'multipath', 'multipathd']) {
    const f = join(bin, tool);
    writeFileSync(
      f,
      [
        '#!/bin/sh',
        `# e2e: runs test/doubles/bin/${tool} on the host (this machine has no kernel iSCSI initiator)`,
        `exec chroot /host /usr/bin/env PATH='${hostPath}' HOME=/root ${DOUBLES_BIN}/${tool} "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(f, 0o755);
  }
  return bin;
}

export function nodePluginDaemonSet(o: NodePodOptions): V1DaemonSet {
  const docs = parseAllDocuments(readFileSync(NODE_YAML, 'utf8')).map((d) => d.toJSON() as { kind?: string });
  const ds = structuredClone(docs.find((d) => d?.kind === 'DaemonSet')) as V1DaemonSet | undefined;
  if (!ds?.spec?.template.spec) throw new Error(`${NODE_YAML} has no DaemonSet`);
  const wrappers = writeWrappers(o);
  writeInitiatorName(o.doubles, o.run);
  const state = join(o.dir, 'pod-state');
  const hostDirs = join(o.dir, 'pod-host');
  const labels = { ...ds.spec.selector.matchLabels, 'e2e.cinder.csi.dev/run': o.run };
  ds.metadata = { ...ds.metadata, name: `${o.run}-node`, namespace: o.namespace, labels };
  ds.spec.selector = { matchLabels: labels };
  ds.spec.template.metadata = { ...ds.spec.template.metadata, labels };
  const pod = ds.spec.template.spec;
  pod.nodeSelector = { ...pod.nodeSelector, 'kubernetes.io/hostname': o.nodeName };
  pod.terminationGracePeriodSeconds = 30;
  const main = pod.containers.find((c) => c.name === 'cinder-csi') as V1Container;
  pod.containers = [main];
  main.image = o.image;
  main.imagePullPolicy = 'Never';
  delete main.livenessProbe;
  main.ports = [];
  const set = (flag: string, value: string | undefined) => {
    main.args = (main.args ?? []).filter((a) => !a.startsWith(`--${flag}=`));
    if (value !== undefined) main.args.push(`--${flag}=${value}`);
  };
  set('driver-name', o.driverName);
  set('kubelet-root', o.kubeletRoot);
  set('metrics-address', undefined);
  set('host-root', o.doubles.root);
  set('log-level', 'debug');
  set('shutdown-grace', '5');
  main.env = [
    ...(main.env ?? []),
    { name: 'KUBERNETES_SERVICE_HOST', value: o.apiHost },
    { name: 'KUBERNETES_SERVICE_PORT', value: o.apiPort },
    {
      name: 'PATH',
      value: `${wrappers}:/opt/cinder-csi/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    },
    ...Object.entries(o.doubles.env).map(([name, value]) => ({ name, value })),
  ];
  // Host paths: the lab kubelet's root; host directories of the run instead of the host's /etc.
  const redirect: Record<string, string> = {
    'plugin-dir': join(o.kubeletRoot, 'plugins', o.driverName),
    'kubelet-dir': o.kubeletRoot,
    'state-dir': state,
    'iscsi-config': join(hostDirs, 'etc-iscsi'),
    'iscsi-state': join(hostDirs, 'var-lib-iscsi'),
    'multipath-config': join(hostDirs, 'etc-multipath'),
    'ceph-config': join(hostDirs, 'etc-ceph'),
    'run-udev': join(hostDirs, 'run-udev'),
    // this machine has no /lib/modules (and the doubles load no kernel module)
    'lib-modules': join(hostDirs, 'lib-modules'),
  };
  const volumes: V1Volume[] = [];
  for (const v of pod.volumes ?? []) {
    if (v.name === 'registration-dir') continue;
    if (v.name === 'cloud-config' && v.secret) v.secret.secretName = o.cloudConfigSecret;
    const to = redirect[v.name];
    if (to && v.hostPath) {
      mkdirSync(to, { recursive: true });
      v.hostPath = { path: to, type: 'Directory' };
    }
    volumes.push(v);
  }
  volumes.push(
    { name: 'e2e-host', hostPath: { path: '/', type: 'Directory' } },
    { name: 'e2e-wrappers', hostPath: { path: wrappers, type: 'Directory' } },
    { name: 'e2e-doubles-root', hostPath: { path: resolve(o.doubles.root, '..'), type: 'Directory' } },
  );
  pod.volumes = volumes;
  const mounts: V1VolumeMount[] = (main.volumeMounts ?? []).map((m) =>
    m.name === 'kubelet-dir' ? { ...m, mountPath: o.kubeletRoot } : m,
  );
  mounts.push(
    // no propagation: the host's / is a private mount here (containerd refuses HostToContainer on it)
    { name: 'e2e-host', mountPath: '/host' },
    { name: 'e2e-wrappers', mountPath: wrappers, readOnly: true },
    { name: 'e2e-doubles-root', mountPath: resolve(o.doubles.root, '..') },
  );
  main.volumeMounts = mounts;
  return ds;
}

/** The DaemonSet above as a NodePlugin (driver.ts): created with its cloud-config Secret, removed by stop(). */
export class PodNodePlugin {
  readonly socket: string;
  readonly #o: NodePodOptions;
  readonly #apps: AppsV1Api;
  readonly #core: CoreV1Api;
  readonly #cloudConf: string;
  /** The node plugin container's log directory (read by container-log.ts). */
  #podLog = '';
  /** The pod's log as read just before its deletion (the kubelet removes the file with the pod). */
  #lastLog: string | undefined;

  constructor(o: NodePodOptions, api: { apps: AppsV1Api; core: CoreV1Api }, cloudConf: string) {
    this.#o = o;
    this.#apps = api.apps;
    this.#core = api.core;
    this.#cloudConf = cloudConf;
    this.socket = join(o.kubeletRoot, 'plugins', o.driverName, 'csi.sock');
  }

  logTail(chars = 3000): string {
    try {
      return readContainerLog(this.#podLog, chars).slice(-chars);
    } catch {
      return this.#lastLog?.slice(-chars) ?? `(no pod log in ${this.#podLog || '?'})`;
    }
  }

  async start(): Promise<void> {
    const o = this.#o;
    await this.#core.createNamespacedSecret({
      namespace: o.namespace,
      body: {
        metadata: { name: o.cloudConfigSecret },
        stringData: { 'cloud.conf': readFileSync(this.#cloudConf, 'utf8') },
      },
    });
    await this.#apps.createNamespacedDaemonSet({ namespace: o.namespace, body: nodePluginDaemonSet(o) });
    const selector = `e2e.cinder.csi.dev/run=${o.run}`;
    const client = csiClient(`unix://${this.socket}`);
    try {
      await until(
        'the node plugin pod to serve its socket',
        async () => {
          const pods = await this.#core.listNamespacedPod({
            namespace: o.namespace,
            labelSelector: selector,
          });
          const p = pods.items[0];
          if (p?.metadata?.uid)
            this.#podLog = join(
              o.podLogs,
              `${o.namespace}_${p.metadata.name}_${p.metadata.uid}`,
              'cinder-csi',
            );
          if (!existsSync(this.socket)) return false;
          await client.call('Identity', 'GetPluginInfo', {}, 2000);
          return true;
        },
        180_000,
        async () => {
          const pods = await this.#core.listNamespacedPod({
            namespace: o.namespace,
            labelSelector: selector,
          });
          return `${JSON.stringify(pods.items.map((p) => p.status))}\n${this.logTail()}`;
        },
        500,
      );
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    const o = this.#o;
    if (this.#podLog && existsSync(this.#podLog)) {
      try {
        this.#lastLog = readContainerLog(this.#podLog);
      } catch {
        /* no log file yet */
      }
    }
    await this.#apps
      .deleteNamespacedDaemonSet({
        namespace: o.namespace,
        name: `${o.run}-node`,
        propagationPolicy: 'Foreground',
      })
      .catch(() => undefined);
    await until(
      'the node plugin pod to be gone',
      async () =>
        (
          await this.#core.listNamespacedPod({
            namespace: o.namespace,
            labelSelector: `e2e.cinder.csi.dev/run=${o.run}`,
          })
        ).items.length === 0,
      120_000,
    ).catch(() => undefined);
    await this.#core
      .deleteNamespacedSecret({ namespace: o.namespace, name: o.cloudConfigSecret })
      .catch(() => undefined);
  }
}
