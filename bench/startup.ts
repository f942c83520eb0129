/**
 * Start-up and idle memory of the driver process, against bare Node in the same run.
 *   node bench/startup.ts [--runs 7] [--program image|dist] [--node-flags '...'] [--modes node,controller,node+kube+metrics,...]
 *                         [--baseline DIR] [--snapshot on|off]
 *
 * A kind is a mode (node, controller, all), optionally with `+kube` (the lab's kube-apiserver, as in
 * a cluster: the node publishes its connector, the controller watches Nodes and VolumeAttachments
 * and runs the reconciler) and `+metrics` (the metrics server): the chart deploys both modes that
 * way. `+kube` configures the driver as a pod is: the mode's ServiceAccount (deploy/rbac.yaml; a token
 * minted by test/k8s/kube-lab.sh) in /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt,
 * namespace) and KUBERNETES_SERVICE_HOST/PORT, no kubeconfig. The driver runs under `unshare -m`
 * with an overlay on /run whose upper layer holds that directory, so it exists only in the driver's
 * mount namespace (needs root; the host's /run is untouched). `+kubeconfig` instead passes the lab's
 * admin kubeconfig (`--kubeconfig`: the YAML parser is loaded), as the figures before 2026-12-01 20:00 did.
 * For `+kube` the run creates a Node object (zone label set; deleted at the end) and the node plugin
 * runs as that node: it reads its zone from it and publishes its connector on it (checked at the end).
 *
 * `--baseline DIR`: a second build to compare in the same rounds, laid out like the image (DIR/bin/
 * cinder-csi, DIR/dist/bundle, DIR/package.json; e.g. `git archive REV | tar -x -C DIR`, then
 * `bash scripts/bundle.sh` there): every driver kind runs also as `KIND@baseline`.
 *
 * `image` (default) runs bin/cinder-csi, the image's entrypoint: the esbuild bundle (scripts/bundle.sh)
 * with the image's V8 flags, started from the startup snapshot (scripts/build-snapshot.sh, made in
 * the staged copy as in the image) unless `--snapshot off` or the build has no snapshot.cjs; `dist`
 * runs the tsc output (`node dist/cli/main.js`). `--node-flags` replaces the entrypoint's V8 flags
 * (CINDER_CSI_NODE_FLAGS), to measure a flag's cost and gain.
 *
 * Each round starts bare Node (a unix-socket server) and the driver in every mode, in alternating
 * order (reversed every other round). Per start it measures:
 *  - spawn → ready: for the driver the first Probe answering ready=true (controller readiness
 *    includes a real round trip to the lab's noauth Cinder), for bare Node the first accepted
 *    connection. The gRPC client stubs are built before any timing, and the client dials only once
 *    the socket exists (gRPC's reconnect backoff is not measured);
 *  - CPU time the process had used by then (all threads, /proc/PID/task/TID/schedstat): unlike
 *    the wall time it hardly depends on the machine's load;
 *  - idle memory of the started process itself (from /proc/PID/smaps_rollup): 2 s after ready,
 *    5 samples 200 ms apart, median; RSS split into anonymous and file-backed pages.
 * Prints medians over the rounds and each figure as a ratio to bare Node. Memory figures do not
 * depend on machine load; times do (the machine is shared): read the ratios.
 * Every wait is bounded (30 s); every process is killed and every file removed in `finally`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { csiClient, csiClientPackage } from '../test/support/csi-client.ts';
import { cpuMs, idleMemory, type Mem, median, sleep } from './proc.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    program: { type: 'string', default: 'image' },
    'node-flags': { type: 'string' },
    modes: { type: 'string', default: 'node,controller,node+kube+metrics,controller+kube+metrics' },
    baseline: { type: 'string' },
    snapshot: { type: 'string', default: 'on' },
  },
});
const RUNS = Number(values.runs);
const MODES = values.modes.split(',');
const LIMIT_MS = 30_000;
const root = new URL('..', import.meta.url).pathname;
const program =
  values.program === 'dist'
    ? { cmd: process.execPath, args: [join(root, 'dist/cli/main.js')] }
    : { cmd: join(root, 'bin/cinder-csi'), args: [] };
if (
  !existsSync(program.args[0] ?? program.cmd) ||
  (values.program !== 'dist' && !existsSync(join(root, 'dist/bundle/main.js')))
) {
  throw new Error(`build first: ${values.program === 'dist' ? 'npm run build' : 'npm run bundle'}`);
}

if (values.baseline !== undefined && !existsSync(join(values.baseline, 'dist/bundle/main.js'))) {
  throw new Error(`--baseline ${values.baseline}: no dist/bundle/main.js (run scripts/bundle.sh there)`);
}

/** The lab's noauth API and project, as test/lab-up.sh records them. */
function labNoauth(): Record<string, string> {
  try {
    const text = readFileSync('/var/lib/cinder-lab/cinder-noauth/noauth.env', 'utf8');
    return Object.fromEntries(
      text
        .split('\n')
        .map((l) => /^(?:export )?([A-Z_]+)=["']?([^"']*)["']?$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    );
  } catch {
    return {};
  }
}
const lab = labNoauth();
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}`,
  OS_AUTH_TYPE: 'noauth',
  OS_USER_ID: 'admin',
  OS_PROJECT_ID: lab['CINDER_LAB_NOAUTH_PROJECT'] ?? '0123456789abcdef0123456789abcdef',
  OS_ENDPOINT: lab['CINDER_LAB_NOAUTH_ENDPOINT'] ?? 'http://127.0.0.1:8786/v3',
};
if (values['node-flags'] !== undefined) env['CINDER_CSI_NODE_FLAGS'] = values['node-flags'];

interface Sample extends Mem {
  ms: number;
  /** CPU time the process (all its threads) had used when it was ready: load-independent. */
  cpu: number;
  /** Started from the startup snapshot (node's command line has --snapshot-blob). */
  blob?: boolean;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

async function waitFor(what: string, t0: number, check: () => boolean | Promise<boolean>, everyMs: number) {
  for (;;) {
    if (await check()) return;
    if (performance.now() - t0 > LIMIT_MS) throw new Error(`${what} after ${LIMIT_MS / 1000} s`);
    await sleep(everyMs);
  }
}

async function startBare(sock: string): Promise<Sample> {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ['-e', "require('node:net').createServer((s) => s.end()).listen(process.argv[1])", sock],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    await waitFor('bare node: no socket', t0, () => existsSync(sock), 2);
    await waitFor(
      'bare node: no connection',
      t0,
      () =>
        new Promise<boolean>((resolve) => {
          const c = connect(sock);
          c.once('connect', () => resolve(true)).once('error', () => resolve(false));
          c.once('close', () => c.destroy());
        }),
      2,
    );
    const ms = performance.now() - t0;
    const cpu = cpuMs(child.pid!);
    return { ms, cpu, ...(await idleMemory(child.pid!)) };
  } finally {
    await stop(child);
  }
}

/** The lab's admin kubeconfig (test/k8s/kube-lab.sh), for the `+kubeconfig` kinds. */
const KUBECONFIG = '/var/lib/kube-lab/admin.kubeconfig';
const KUBE_LAB = join(root, 'test/k8s/kube-lab.sh');

/** The lab API server's address and CA (`kube-lab.sh env`). */
function kubeLabEnv(): Record<string, string> {
  const out = execFileSync('bash', [KUBE_LAB, 'env'], { encoding: 'utf8', timeout: 10_000 });
  return Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/**
 * An overlay upper layer for /run holding secrets/kubernetes.io/serviceaccount as the kubelet mounts
 * it for `mode`'s ServiceAccount (a freshly minted token, the lab's CA), once per mode and run.
 */
const serviceAccounts = new Map<string, string>();
function serviceAccountLayer(mode: string, dir: string): string {
  const sa = mode === 'node' ? 'cinder-csi-node' : 'cinder-csi-controller';
  const known = serviceAccounts.get(sa);
  if (known) return known;
  const lab = kubeLabEnv();
  const token = execFileSync('bash', [KUBE_LAB, 'token', 'cinder-csi', sa, '3600'], {
    encoding: 'utf8',
    timeout: 30_000,
  }).trim();
  const layer = join(dir, `sa-${sa}`);
  const sad = join(layer, 'upper/secrets/kubernetes.io/serviceaccount');
  mkdirSync(sad, { recursive: true, mode: 0o700 });
  mkdirSync(join(layer, 'work'));
  writeFileSync(join(sad, 'token'), token, { mode: 0o600 });
  copyFileSync(lab['KUBE_LAB_CA'] ?? '/var/lib/kube-lab/pki/ca.crt', join(sad, 'ca.crt'));
  writeFileSync(join(sad, 'namespace'), 'cinder-csi');
  serviceAccounts.set(sa, layer);
  return layer;
}

async function startDriver(kind: string, dir: string, sock: string): Promise<Sample> {
  // `node+kube+metrics`: mode node, as deployed in a cluster (Kubernetes client, metrics server);
  // `KIND@baseline`: the same with the --baseline build.
  const [spec = kind, build] = kind.split('@');
  const [mode = 'node', ...extras] = spec.split('+');
  const extra = [
    ...(extras.includes('kubeconfig') ? ['--kubeconfig', KUBECONFIG] : []),
    // without a Node object to read the zone label from, the node plugin is told its zone
    ...(extras.includes('kubeconfig') || (extras.includes('kube') && !benchNode)
      ? ['--node-zone', 'bench']
      : []),
    ...(extras.includes('metrics') ? ['--metrics-address', '127.0.0.1:0'] : []),
  ];
  if (extras.includes('kubeconfig') && !existsSync(KUBECONFIG)) throw new Error(`${kind}: no ${KUBECONFIG}`);
  const entry =
    build === 'baseline' ? { cmd: join(dir, 'base/bin/cinder-csi'), args: [] as string[] } : program;
  let cmd = entry.cmd;
  let pre: string[] = [];
  let childEnv = env;
  if (extras.includes('kube')) {
    // In-cluster: the ServiceAccount directory only in the driver's mount namespace. unshare and
    // sh exec the entrypoint, which execs node: the PID stays the driver's.
    const layer = serviceAccountLayer(mode, dir);
    const server = new URL(kubeLabEnv()['KUBE_LAB_SERVER'] ?? 'https://127.0.0.1:6443');
    childEnv = { ...env, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port };
    pre = [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount -t overlay overlay -o lowerdir=/run,upperdir=${layer}/upper,workdir=${layer}/work /run && exec "$@"`,
      'sh',
      cmd,
    ];
    cmd = 'unshare';
  }
  const t0 = performance.now();
  const child = spawn(
    cmd,
    [
      ...pre,
      ...entry.args,
      ...extra,
      '--mode',
      mode,
      '--endpoint',
      `unix://${sock}`,
      '--node-id',
      (extras.includes('kube') && benchNode) || 'bench-node',
      '--log-level',
      'warn',
      '--state-dir',
      join(dir, 'state'),
    ],
    { env: childEnv, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  let client: ReturnType<typeof csiClient> | undefined;
  try {
    // Dial only once the socket exists: an early dial waits out gRPC's reconnect backoff.
    await waitFor(`${kind}: no socket`, t0, () => existsSync(sock), 2);
    const c = csiClient(`unix://${sock}`);
    client = c;
    await waitFor(
      `${kind}: not ready`,
      t0,
      () =>
        c
          .call<{ ready: { value: boolean } | null }>('Identity', 'Probe', {}, 1000)
          .then((r) => r.ready?.value === true)
          .catch(() => false),
      5,
    );
    const ms = performance.now() - t0;
    const cpu = cpuMs(child.pid!);
    const blob = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').includes('--snapshot-blob');
    return { ms, cpu, blob, ...(await idleMemory(child.pid!)) };
  } finally {
    client?.close();
    await stop(child);
  }
}

/**
 * Lays a build out as the image does (bin/cinder-csi, dist/bundle/, package.json; no node_modules,
 * no .git) under `to`. Both builds of a comparison sit at paths of the same length: V8's first
 * TurboFan compile (here of path.normalize's loop, which the module paths make hot or not) touches
 * ~5 MiB more of the `node` binary's code, so a longer path alone can add 5 MiB to the controller.
 */
function stage(from: string, to: string): string {
  mkdirSync(join(to, 'dist'), { recursive: true });
  cpSync(join(from, 'bin'), join(to, 'bin'), { recursive: true });
  cpSync(join(from, 'dist/bundle'), join(to, 'dist/bundle'), { recursive: true });
  copyFileSync(join(from, 'package.json'), join(to, 'package.json'));
  // The startup snapshot, made in place as the image's runtime stage does (a blob records where
  // its builder script was); `--snapshot off`: the bundle only.
  rmSync(join(to, 'dist/bundle/snapshot.blob'), { force: true });
  const builder = join(from, 'scripts/build-snapshot.sh');
  if (values.snapshot === 'off' || !existsSync(join(to, 'dist/bundle/snapshot.cjs')) || !existsSync(builder))
    return 'bundle';
  execFileSync('sh', [builder, to], {
    env: { ...process.env, PATH: env['PATH'] },
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 120_000,
  });
  return 'startup snapshot';
}

/**
 * A Node object for the `+kube` kinds (created by the lab's admin, zone label set, deleted at the
 * end): the node plugin reads its zone from it and publishes its connector on it, as on a real node.
 */
let benchNode: string | undefined;
async function createBenchNode(): Promise<(() => Promise<void>) | undefined> {
  if (!MODES.some((m) => m.split('+').includes('kube'))) return undefined;
  const { kubeLab, runPrefix, ignore404 } = await import('../test/integration/kube/kube-lab.ts');
  const lab = await kubeLab();
  if (lab.reason) {
    lab.close();
    throw new Error(`+kube kinds need the lab's kube-apiserver: ${lab.reason}`);
  }
  const name = runPrefix('bench-startup');
  await lab.core!.createNode({
    body: { metadata: { name, labels: { 'topology.kubernetes.io/zone': 'bench' } } },
  });
  benchNode = name;
  return async () => {
    const annotations = (await lab.core!.readNode({ name })).metadata?.annotations ?? {};
    const published = Object.keys(annotations).some((k) => k.endsWith('/connector'));
    console.log(
      `Node ${name}: the node plugin's connector annotation ${published ? 'published' : 'MISSING'}`,
    );
    await ignore404(lab.core!.deleteNode({ name }));
    lab.close();
  };
}

csiClientPackage(); // the client's own proto loading, before anything is timed
const dir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
const results = new Map<string, Sample[]>();
let deleteBenchNode: (() => Promise<void>) | undefined;
try {
  deleteBenchNode = await createBenchNode();
  const starts: string[] = [];
  if (values.program !== 'dist') {
    starts.push(`this build from its ${stage(root, join(dir, 'this'))}`);
    program.cmd = join(dir, 'this/bin/cinder-csi');
  }
  if (values.baseline !== undefined)
    starts.push(`baseline from its ${stage(values.baseline, join(dir, 'base'))}`);
  const kinds = ['bare', ...MODES.flatMap((m) => (values.baseline ? [m, `${m}@baseline`] : [m]))];
  console.log(
    `start → ready and idle memory: ${RUNS} rounds, ${values.program === 'dist' ? 'node dist/cli/main.js' : 'bin/cinder-csi (bundle)'}` +
      `${values['node-flags'] !== undefined ? ` with V8 flags '${values['node-flags']}'` : ''}, node ${process.version}` +
      `${values.baseline ? `; KIND@baseline: ${values.baseline}` : ''}${starts.length ? ` (${starts.join(', ')})` : ''}`,
  );
  for (let round = 0; round < RUNS; round++) {
    const order = round % 2 ? [...kinds].reverse() : kinds;
    for (const kind of order) {
      const sock = join(dir, `${kind}-${round}.sock`);
      const s = kind === 'bare' ? await startBare(sock) : await startDriver(kind, dir, sock);
      rmSync(sock, { force: true });
      results.set(kind, [...(results.get(kind) ?? []), s]);
    }
  }
  const med = (kind: string, k: keyof Mem | 'ms' | 'cpu') =>
    median((results.get(kind) ?? []).map((s) => s[k]));
  const f0 = (x: number) => x.toFixed(0);
  const f1 = (x: number) => x.toFixed(1);
  console.log(
    '| process | start → ready (min–max) | ×bare | CPU to ready | ×bare | idle RSS MiB (anon + file) | ×bare |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const kind of kinds) {
    const ms = results.get(kind)!.map((s) => s.ms);
    const blobs = results.get(kind)!.filter((s) => s.blob).length;
    const name = kind === 'bare' ? 'bare Node' : blobs ? `${kind} (snapshot ${blobs}/${ms.length})` : kind;
    console.log(
      `| ${name} | ${f0(med(kind, 'ms'))} ms (${f0(Math.min(...ms))}–${f0(Math.max(...ms))}) | ` +
        `${(med(kind, 'ms') / med('bare', 'ms')).toFixed(2)} | ${f0(med(kind, 'cpu'))} ms | ${(med(kind, 'cpu') / med('bare', 'cpu')).toFixed(2)} | ${f1(med(kind, 'rss'))} (${f1(med(kind, 'anon'))} + ${f1(med(kind, 'file'))}) | ` +
        `${(med(kind, 'rss') / med('bare', 'rss')).toFixed(2)} |`,
    );
  }
} finally {
  await deleteBenchNode?.();
  rmSync(dir, { recursive: true, force: true });
}
