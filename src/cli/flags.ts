import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseEndpoint } from '../grpc/endpoint.ts';

export type Mode = 'controller' | 'node' | 'all';

export interface Flags {
  mode: Mode;
  endpoint: string;
  driverName: string;
  nodeId: string;
  cloudConfig: string[];
  logLevel: string;
  logFormat: 'json' | 'pretty';
  metricsAddress: string | undefined;
  clusterId: string;
  kubeconfig: string | undefined;
  kubeletRoot: string;
  hostRoot: string;
  stateDir: string;
  nodeZone: string | undefined;
  topologyLabel: string;
  connectorsFile: string | undefined;
  hostIp: string | undefined;
  rbdKeyring: string | undefined;
  nodeStageSecrets: boolean;
  shutdownGraceSeconds: number;
  reconcileGraceSeconds: number;
  reconcileDryRun: boolean;
}

export type CliRequest = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; flags: Flags };

/** A bad command line: exit code 2 with this one-line reason. */
export class FlagError extends Error {
  override name = 'FlagError';
}

interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  help: string;
  default?: string;
}

/** Every flag has a matching environment variable: --foo-bar ↔ CSI_FOO_BAR. The flag wins. */
export const FLAGS: Record<string, FlagSpec> = {
  mode: { type: 'string', help: 'controller | node | all (required)' },
  endpoint: {
    type: 'string',
    default: 'unix:///csi/csi.sock',
    help: 'CSI endpoint: unix:///path or tcp://host:port',
  },
  'driver-name': { type: 'string', default: 'cinder.csi.dev', help: 'CSI driver name' },
  'node-id': { type: 'string', help: "this node's id = Kubernetes node name (default: hostname)" },
  'cloud-config': {
    type: 'string',
    multiple: true,
    help: 'cloud.conf file (repeatable; later files override)',
  },
  'log-level': { type: 'string', default: 'info', help: 'fatal | error | warn | info | debug | trace' },
  'log-format': { type: 'string', default: 'json', help: 'json | pretty' },
  'metrics-address': { type: 'string', help: 'serve Prometheus metrics and /healthz on [host]:port' },
  'cluster-id': { type: 'string', default: 'kubernetes', help: 'cluster id stored in volume metadata' },
  kubeconfig: { type: 'string', help: 'kubeconfig path (default: in-cluster ServiceAccount)' },
  'kubelet-root': { type: 'string', default: '/var/lib/kubelet', help: 'kubelet root directory (node)' },
  'host-root': { type: 'string', default: '/', help: "where the host's /dev, /sys, /etc/iscsi are (node)" },
  'state-dir': {
    type: 'string',
    help: 'per-volume state files (node; default <kubelet-root>/plugins/<driver-name>/volumes)',
  },
  'node-zone': { type: 'string', help: 'static availability zone of this node (wins over the node label)' },
  'topology-label': {
    type: 'string',
    default: 'topology.kubernetes.io/zone',
    help: 'node label holding the Cinder availability zone',
  },
  'connectors-file': { type: 'string', help: 'JSON {nodeId: hostConnector} for publish without Kubernetes' },
  'host-ip': { type: 'string', help: 'IP address reported in the host connector (default: primary address)' },
  'rbd-keyring': { type: 'string', help: 'host keyring file used to map RBD volumes (node)' },
  'node-stage-secrets': { type: 'boolean', help: 'take CHAP/keyring from node-stage secrets (opt-in)' },
  'reconcile-grace': {
    type: 'string',
    default: '300',
    help: 'seconds a Cinder attachment without VolumeAttachment/Node lives before it is deleted',
  },
  'reconcile-dry-run': { type: 'boolean', help: 'stale-attachment reconciler only reports (Events, logs)' },
  'shutdown-grace': { type: 'string', default: '30', help: 'seconds in-flight calls may run after SIGTERM' },
  help: { type: 'boolean', help: 'print this help' },
  version: { type: 'boolean', help: 'print the version' },
};

export function envName(flag: string): string {
  return `CSI_${flag.toUpperCase().replaceAll('-', '_')}`;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): CliRequest {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    const options = Object.fromEntries(
      Object.entries(FLAGS).map(([k, s]) => [k, { type: s.type, ...(s.multiple ? { multiple: true } : {}) }]),
    );
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | string[] | undefined>;
    });
  } catch (err) {
    throw new FlagError((err as Error).message.split('\n')[0]!.replace(/\. To specify.*$/, ''));
  }
  if (values['help']) return { kind: 'help' };
  if (values['version']) return { kind: 'version' };

  const str = (name: string): string | undefined => {
    const v = values[name];
    if (typeof v === 'string') return v;
    const e = env[envName(name)];
    if (e !== undefined && e !== '') return e;
    return FLAGS[name]!.default;
  };
  const bool = (name: string): boolean => {
    if (values[name] === true) return true;
    const e = env[envName(name)];
    if (e === undefined || e === '') return false;
    if (/^(1|true|yes)$/i.test(e)) return true;
    if (/^(0|false|no)$/i.test(e)) return false;
    throw new FlagError(`${envName(name)}=${e}: expected true or false`);
  };

  const mode = str('mode');
  if (!mode) throw new FlagError('--mode is required (controller, node or all)');
  if (mode !== 'controller' && mode !== 'node' && mode !== 'all') {
    throw new FlagError(`--mode ${mode}: expected controller, node or all`);
  }
  const endpoint = str('endpoint')!;
  try {
    parseEndpoint(endpoint);
  } catch (err) {
    throw new FlagError(`--endpoint: ${(err as Error).message}`);
  }
  const logLevel = str('log-level')!;
  if (!LOG_LEVELS.includes(logLevel))
    throw new FlagError(`--log-level ${logLevel}: expected ${LOG_LEVELS.join(', ')}`);
  const logFormat = str('log-format')!;
  if (logFormat !== 'json' && logFormat !== 'pretty')
    throw new FlagError(`--log-format ${logFormat}: expected json or pretty`);
  const metricsAddress = str('metrics-address');
  if (metricsAddress !== undefined && !/^(\[[0-9a-fA-F:]+\]|[\w.-]*):\d{1,5}$/.test(metricsAddress)) {
    throw new FlagError(`--metrics-address ${metricsAddress}: expected [host]:port`);
  }
  const seconds = (name: string): number => {
    const v = Number(str(name));
    if (!Number.isFinite(v) || v < 0) throw new FlagError(`--${name}: expected a number of seconds`);
    return v;
  };
  const grace = seconds('shutdown-grace');
  if (!Number.isFinite(grace) || grace < 0)
    throw new FlagError('--shutdown-grace: expected a number of seconds');
  const driverName = str('driver-name')!;
  if (!/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/.test(driverName)) {
    throw new FlagError(`--driver-name ${driverName}: must be a DNS-style name of at most 63 characters`);
  }
  const flagFiles = values['cloud-config'] as string[] | undefined;
  const envFiles = env[envName('cloud-config')];
  const cloudConfig = flagFiles ?? (envFiles ? envFiles.split(',').filter(Boolean) : []);

  return {
    kind: 'run',
    flags: {
      mode,
      endpoint,
      driverName,
      nodeId: str('node-id') ?? hostname(),
      cloudConfig,
      logLevel,
      logFormat,
      metricsAddress,
      clusterId: str('cluster-id')!,
      kubeconfig: str('kubeconfig'),
      kubeletRoot: str('kubelet-root')!,
      hostRoot: str('host-root')!,
      stateDir: str('state-dir') ?? `${str('kubelet-root')}/plugins/${driverName}/volumes`,
      nodeZone: str('node-zone'),
      topologyLabel: str('topology-label')!,
      connectorsFile: str('connectors-file'),
      hostIp: str('host-ip'),
      rbdKeyring: str('rbd-keyring'),
      nodeStageSecrets: bool('node-stage-secrets'),
      shutdownGraceSeconds: grace,
      reconcileGraceSeconds: seconds('reconcile-grace'),
      reconcileDryRun: bool('reconcile-dry-run'),
    },
  };
}

export function usage(): string {
  const lines = [
    'Usage: cinder-csi --mode controller|node|all [flags]',
    '',
    'Flags (each also read from the environment variable shown):',
  ];
  for (const [name, spec] of Object.entries(FLAGS)) {
    const arg = spec.type === 'string' ? ` ${name === 'cloud-config' ? 'FILE' : 'VALUE'}` : '';
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    lines.push(`  --${name}${arg}`.padEnd(34) + `${spec.help}${def}  [${envName(name)}]`);
  }
  return lines.join('\n');
}
