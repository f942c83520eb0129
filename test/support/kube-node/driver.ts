/**
 * The driver as real processes for the kubelet end-to-end suite:
 *   - the controller: `node src/cli/main.ts --mode controller` on a unix socket of the run's
 *     directory, the lab Cinder with Keystone (cloud.conf, admin), connectors from the Node
 *     annotations through --kubeconfig (the controller ServiceAccount of deploy/rbac.yaml);
 *   - the node plugin: `--mode node` listening on `<kubelet-root>/plugins/<driver>/csi.sock` (where
 *     the kubelet calls it), --kubeconfig of the node ServiceAccount (it publishes its host
 *     connector on its Node), the kubelet's root; and, because this machine has no kernel iSCSI
 *     initiator, the tool doubles of test/doubles first on PATH with their own host root (README
 *     "what is real": a real CHAP login to the lab's tgtd, the volume's real data as a loop device).
 * stop() sends SIGTERM and waits (SIGKILL after 30 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DOUBLES_BIN, type DoublesEnv } from '../../doubles/index.ts';
import { type CsiTestClient, csiClient } from '../csi-client.ts';
import { LAB_KEYSTONE_URL, LAB_REGION, labPassword } from '../lab.ts';

const REPO = resolve(import.meta.dirname, '../../..');

/** A cloud.conf (0600) for the lab's Keystone admin, as an operator's Secret would hold it. */
export function writeLabCloudConf(file: string): void {
  writeFileSync(
    file,
    [
      '[Global]',
      `auth-url = ${LAB_KEYSTONE_URL}`,
      'username = admin',
      `password = ${labPassword('admin')}`,
      'user-domain-name = Default',
      'project-name = admin',
      'project-domain-name = Default',
      `region = ${LAB_REGION}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}

/** The node plugin as the suite drives it: a host process (DriverProcess) or a pod (node-pod.ts). */
export interface NodePlugin {
  /** The plugin's socket on the host (`<kubelet-root>/plugins/<driver>/csi.sock`). */
  readonly socket: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  logTail(chars?: number): string;
}

export class DriverProcess implements NodePlugin {
  readonly name: string;
  readonly logFile: string;
  readonly socket: string;
  readonly #args: string[];
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcess | undefined;
  #exit: Promise<void> | undefined;
  #client: CsiTestClient | undefined;

  constructor(
    name: string,
    socket: string,
    args: string[],
    logFile: string,
    env: Record<string, string> = {},
  ) {
    this.name = name;
    this.socket = socket;
    this.logFile = logFile;
    this.#args = args;
    const base: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (/^(OS_|CSI_|KUBERNETES_)/.test(k)) continue;
      base[k] = v;
    }
    this.#env = { ...base, ...env };
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  client(): CsiTestClient {
    this.#client ??= csiClient(`unix://${this.socket}`);
    return this.#client;
  }

  logTail(chars = 3000): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  /** Starts the process and waits (≤ 60 s) until its gRPC server answers GetPluginInfo. */
  async start(): Promise<void> {
    const fd = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [join(REPO, 'src/cli/main.ts'), ...this.#args], {
      cwd: REPO,
      env: this.#env,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.#child = child;
    this.#exit = new Promise((res) => child.once('exit', () => res()));
    const until = Date.now() + 60_000;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited during start-up: ${this.logTail()}`);
      if (existsSync(this.socket)) {
        try {
          await this.client().call('Identity', 'GetPluginInfo', {}, 2000);
          return;
        } catch {
          /* not serving yet */
        }
      }
      if (Date.now() > until) throw new Error(`${this.name} did not come up in 60 s: ${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    this.#client?.close();
    this.#client = undefined;
    const child = this.#child;
    if (!child || !this.running) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await this.#exit;
    clearTimeout(timer);
  }
}

export interface DriverSetup {
  driverName: string;
  clusterId: string;
  nodeName: string;
  kubeletRoot: string;
  /** The run's directory (sockets, state, logs, cloud.conf). */
  dir: string;
  controllerKubeconfig: string;
  nodeKubeconfig: string;
  doubles: DoublesEnv;
}

export function controllerProcess(s: DriverSetup): DriverProcess {
  const socket = join(s.dir, 'controller.sock');
  return new DriverProcess(
    'controller',
    socket,
    [
      '--mode=controller',
      `--endpoint=unix://${socket}`,
      `--driver-name=${s.driverName}`,
      `--cluster-id=${s.clusterId}`,
      `--cloud-config=${join(s.dir, 'cloud.conf')}`,
      `--kubeconfig=${s.controllerKubeconfig}`,
      `--state-dir=${join(s.dir, 'controller-state')}`,
      `--kubelet-root=${join(s.dir, 'controller-kubelet')}`,
      '--log-level=debug',
      '--shutdown-grace=5',
    ],
    join(s.dir, 'controller.log'),
  );
}

/**
 * The node's iSCSI initiator name, as open-iscsi's package writes it on a real node, in the doubles'
 * host root (`--host-root`: the driver reads `<root>/etc/iscsi/initiatorname.iscsi`; without it the
 * node's connector has no initiator and Cinder refuses iSCSI attachments).
 */
export function writeInitiatorName(doubles: DoublesEnv, clusterId: string): void {
  mkdirSync(join(doubles.root, 'etc/iscsi'), { recursive: true });
  writeFileSync(
    join(doubles.root, 'etc/iscsi/initiatorname.iscsi'),
    `InitiatorName=iqn.2004-10.org.cinder-csi:${clusterId}\n`,
  );
}

/** The node plugin as the DaemonSet runs it, but as a host process with the doubles on PATH. */
export function nodeProcess(s: DriverSetup): DriverProcess {
  const pluginDir = join(s.kubeletRoot, 'plugins', s.driverName);
  mkdirSync(pluginDir, { recursive: true });
  writeInitiatorName(s.doubles, s.clusterId);
  const socket = join(pluginDir, 'csi.sock');
  return new DriverProcess(
    'node plugin',
    socket,
    [
      '--mode=node',
      `--endpoint=unix://${socket}`,
      `--driver-name=${s.driverName}`,
      `--node-id=${s.nodeName}`,
      `--cloud-config=${join(s.dir, 'cloud.conf')}`,
      `--kubeconfig=${s.nodeKubeconfig}`,
      `--kubelet-root=${s.kubeletRoot}`,
      `--host-root=${s.doubles.root}`,
      `--state-dir=${join(s.dir, 'node-state')}`,
      '--host-ip=127.0.0.1',
      '--log-level=debug',
      '--shutdown-grace=5',
    ],
    join(s.dir, 'node.log'),
    { ...s.doubles.env, PATH: `${DOUBLES_BIN}:${process.env['PATH'] ?? '/usr/bin:/bin'}` },
  );
}
