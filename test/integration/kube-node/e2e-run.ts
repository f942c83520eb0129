/**
 * One run of the kubelet end-to-end suite (suite.ts): its names, the components it starts and
 * stops, and its logs. What runs (docs/kubernetes.md, "End-to-end suite on the lab node"): the
 * controller as a process; the node plugin as a process or as the chart's DaemonSet pod of the
 * project's image (`variant`); the stand-ins for node-driver-registrar, external-attacher and
 * external-resizer (test/support/kube-node/); per run a driver name, CSIDriver, StorageClass,
 * namespace and cluster id, so concurrent runs and other tests never see each other's objects.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Api, StorageV1Api } from '@kubernetes/client-node';
import { connectorAnnotationKey } from '../../../src/kube/connector-annotation.ts';
import { CinderClient } from '../../../src/openstack/cinder.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { type DoublesEnv, setupDoubles } from '../../doubles/index.ts';
import type { CsiTestClient } from '../../support/csi-client.ts';
import { ExternalAttacher } from '../../support/kube-node/attacher.ts';
import {
  controllerProcess,
  type DriverProcess,
  type DriverSetup,
  type NodePlugin,
  nodeProcess,
  writeLabCloudConf,
} from '../../support/kube-node/driver.ts';
import { mountsUnder, until } from '../../support/kube-node/node-lab.ts';
import { PodNodePlugin } from '../../support/kube-node/node-pod.ts';
import { NodeDriverRegistrar } from '../../support/kube-node/registrar.ts';
import { ExternalResizer } from '../../support/kube-node/resizer.ts';
import {
  applyManifests,
  CONTROLLER_SA,
  type KubeLab,
  kubeLab,
  NODE_SA,
  RBAC_YAML,
} from '../kube/kube-lab.ts';
import { ensureKubeNode, type KubeNodeEnv } from '../kube/kube-node.ts';
import { createPodNamespace } from '../kube/pod-run.ts';
import { projectImageOnNode } from '../kube/project-image.ts';
import { type LabSession, labSession } from '../openstack/cinder-lab-session.ts';

export type NodePluginVariant = 'process' | 'pod';

/** Where a failed run leaves its driver and stand-in logs. */
const LOG_DIR = '/var/log/cinder-csi/kube-node-e2e';

export class E2eRun {
  readonly variant: NodePluginVariant;
  /** Prefix of every name of the run (PVs, snapshots, Cinder names), its namespace and cluster id. */
  readonly run: string;
  readonly ns: string;
  readonly driver: string;
  readonly sc: string;
  lab!: KubeLab;
  env!: KubeNodeEnv;
  cinder!: CinderClient;
  dir = '';
  doubles: DoublesEnv | undefined;
  controller: DriverProcess | undefined;
  node: NodePlugin | undefined;
  attacher!: ExternalAttacher;
  resizer!: ExternalResizer;
  #os: LabSession | undefined;
  #registrar: NodeDriverRegistrar | undefined;
  /** The stand-ins' log lines (printed when the run failed). */
  readonly log: string[] = [];
  /** Set when a test or the set-up failed: the logs are printed and kept at the end. */
  failed = false;

  constructor(variant: NodePluginVariant) {
    this.variant = variant;
    this.run = `e2e${variant === 'pod' ? 'p' : ''}-${randomBytes(3).toString('hex')}`;
    this.ns = this.run;
    this.driver = `${this.run}.cinder.csi.dev`;
    this.sc = this.run;
  }

  say = (m: string): void => {
    this.log.push(`${new Date().toISOString().slice(11, 23)} ${m}`);
  };
  core(): CoreV1Api {
    return this.lab.core!;
  }
  storage(): StorageV1Api {
    return this.lab.storage!;
  }
  csi(): CsiTestClient {
    return this.controller!.client();
  }

  /** Everything up: the node Ready, the run's API objects, driver, registration, stand-ins. */
  async setUp(): Promise<void> {
    this.lab = await kubeLab();
    if (this.lab.reason) throw new Error(this.lab.reason);
    this.env = await ensureKubeNode(this.core());
    this.#os = await labSession('keystone');
    if (this.#os.reason) throw new Error(this.#os.reason);
    this.cinder = new CinderClient({ session: this.#os.session!, logger: silentLogger() });
    await applyManifests(this.lab.kc!, RBAC_YAML);
    this.dir = mkdtempSync(join(tmpdir(), `${this.run}-`));
    writeLabCloudConf(join(this.dir, 'cloud.conf'));
    this.doubles = setupDoubles(`${this.run}-doubles`);
    const setup: DriverSetup = {
      driverName: this.driver,
      clusterId: this.run,
      nodeName: this.env.name,
      kubeletRoot: this.env.kubeletRoot,
      dir: this.dir,
      controllerKubeconfig: await this.lab.serviceAccountKubeconfig(CONTROLLER_SA),
      nodeKubeconfig: await this.lab.serviceAccountKubeconfig(NODE_SA),
      doubles: this.doubles,
    };
    await createPodNamespace(this.core(), this.ns);
    await this.storage().createCSIDriver({
      body: {
        metadata: { name: this.driver },
        spec: { attachRequired: true, podInfoOnMount: true, volumeLifecycleModes: ['Persistent'] },
      },
    });
    await this.storage().createStorageClass({
      body: {
        metadata: { name: this.sc },
        provisioner: this.driver,
        allowVolumeExpansion: true,
        reclaimPolicy: 'Retain',
        parameters: { type: 'tgt' },
      },
    });
    this.controller = controllerProcess(setup);
    this.node = this.variant === 'process' ? nodeProcess(setup) : await this.#podPlugin(setup);
    await Promise.all([this.controller.start(), this.node.start()]);
    await this.#register();
    this.attacher = new ExternalAttacher({
      driverName: this.driver,
      csi: this.csi(),
      core: this.core(),
      storage: this.storage(),
      log: this.say,
    });
    this.resizer = new ExternalResizer({
      driverName: this.driver,
      csi: this.csi(),
      core: this.core(),
      namespaces: [this.ns],
      log: this.say,
    });
    this.attacher.start();
    this.resizer.start();
  }

  /** The chart's node DaemonSet (node-pod.ts) of the image of this source tree. */
  async #podPlugin(setup: DriverSetup): Promise<NodePlugin> {
    const image = await projectImageOnNode(this.env, this.say);
    const server = new URL(this.lab.kc!.getCurrentCluster()!.server);
    const { AppsV1Api } = await import('@kubernetes/client-node');
    return new PodNodePlugin(
      {
        run: this.run,
        driverName: this.driver,
        kubeletRoot: this.env.kubeletRoot,
        nodeName: this.env.name,
        podLogs: this.env.podLogs,
        image,
        namespace: NODE_SA.namespace,
        cloudConfigSecret: `${this.run}-cloud-config`,
        dir: this.dir,
        doubles: setup.doubles,
        apiHost: server.hostname,
        apiPort: server.port || '443',
      },
      { apps: this.lab.kc!.makeApiClient(AppsV1Api), core: this.core() },
      join(this.dir, 'cloud.conf'),
    );
  }

  /** The registrar stand-in; the kubelet calls NodeGetInfo and writes the node id into CSINode. */
  async #register(): Promise<void> {
    const node = this.node!;
    this.#registrar = new NodeDriverRegistrar({
      csiAddress: `unix://${node.socket}`,
      kubeletRegistrationPath: node.socket,
      registrationDir: join(this.env.kubeletRoot, 'plugins_registry'),
      log: this.say,
    });
    await this.#registrar.start();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#registrar.registered,
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error('the kubelet did not register the plugin in 60 s')), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    await until(
      'the CSINode entry of the driver',
      async () =>
        (await this.storage().readCSINode({ name: this.env.name })).spec.drivers.find(
          (d) => d.name === this.driver,
        )?.nodeID === this.env.name,
      30_000,
    );
  }

  /**
   * Stops the stand-ins, the node plugin and the controller, and removes the run's API objects
   * (connector annotation, CSIDriver, StorageClass, namespace) and host state (the doubles' loop
   * devices, the run's directory). Idempotent; what it could not remove goes into `errors`.
   */
  async stop(errors: string[]): Promise<void> {
    await this.attacher?.stop();
    await this.resizer?.stop();
    await this.#registrar?.stop();
    await this.node?.stop();
    await this.controller?.stop();
    const lab = this.lab;
    // The node plugin's connector annotation on the (shared) Node: this run's driver name only.
    if (lab?.admin && this.env)
      await lab.admin
        .patchNodeAnnotations(this.env.name, { [connectorAnnotationKey(this.driver)]: null })
        .catch(() => undefined);
    for (const m of this.dir ? mountsUnder(this.dir) : []) errors.push(`left mounted: ${m}`);
    this.doubles?.teardown();
    if (lab?.storage) {
      await this.storage()
        .deleteCSIDriver({ name: this.driver })
        .catch(() => undefined);
      await this.storage()
        .deleteStorageClass({ name: this.sc })
        .catch(() => undefined);
    }
    if (lab?.core)
      await this.core()
        .deleteNamespace({ name: this.ns })
        .catch(() => undefined);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Closes the clients (after stop()). */
  async close(): Promise<void> {
    await this.#os?.close();
    this.lab?.close();
  }

  /** On failure: the stand-ins' log and the driver log tails to stderr, the full logs kept in LOG_DIR. */
  dumpLogs(): void {
    process.stderr.write(`--- ${this.run} stand-ins' log:\n${this.log.join('\n')}\n`);
    process.stderr.write(`--- node plugin log tail:\n${this.node?.logTail(6000)}\n`);
    process.stderr.write(`--- controller log tail:\n${this.controller?.logTail(3000)}\n`);
    const keep = join(LOG_DIR, this.run);
    mkdirSync(keep, { recursive: true });
    writeFileSync(join(keep, 'node-plugin.log'), this.node?.logTail(50 * 1024 * 1024) ?? '');
    writeFileSync(join(keep, 'controller.log'), this.controller?.logTail(50 * 1024 * 1024) ?? '');
    writeFileSync(join(keep, 'stand-ins.log'), this.log.join('\n'));
    process.stderr.write(`--- full logs: ${keep}\n`);
  }
}
