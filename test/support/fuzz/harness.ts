/**
 * The fuzz run: the driver as a real process (`--mode all`, every root under a temp dir, the lab
 * Cinder through a throw-away Keystone user whose password is the planted secret), N generated
 * hostile requests over one gRPC channel with a concurrent Probe loop, and the invariants:
 *   0 INTERNAL, 0 UNKNOWN, every reply under 5 s (unless the lab's own Cinder GETs were slow at that
 *   moment: counted and printed, not failed), no message over ~1 KiB, the planted secret never
 *   in a reply or a log line, the connection never torn down (the channel never leaves READY and
 *   every Probe succeeds), the process alive, no file created outside its roots.
 * Every violation carries the seed and the (capped) request, so it can be replayed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, connectivityState, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { loadCsiRoot } from '../../../src/grpc/proto.ts';
import { LAB_CINDER_URL, LAB_KEYSTONE_URL } from '../lab.ts';
import {
  CODE_NAMES,
  cleanupThroughDriver,
  LAB_SLOW_MS,
  LONG_OPERATIONS,
  learn,
  MESSAGE_MAX,
  type Method,
  methods,
  SLOW_MS,
} from './calls.ts';
import { describeRequest, type FuzzEnv, type Learned, RequestGenerator } from './generate.ts';
import { createFuzzUser, keystoneToken, sweepCluster } from './keystone.ts';
import { isKnown, type KnownViolation } from './known.ts';
import { Prng } from './prng.ts';

export interface Violation {
  kind: string;
  rpc: string;
  request: string;
  code?: string;
  message?: string;
  latencyMs?: number;
  known?: KnownViolation;
}

export interface FuzzResult {
  seed: number;
  requests: number;
  rawFrames: number;
  codes: Record<string, number>;
  maxLatencyMs: number;
  maxLatencyRpc: string;
  p99LatencyMs: number;
  probes: { ok: number; failed: number };
  teardowns: number;
  /** Replies over SLOW_MS while the lab's own baseline GETs were slow too (not counted as violations). */
  slowWhileLabSlow: number;
  /** Successful LONG_OPERATIONS over SLOW_MS (not violations). */
  longOperations: number;
  /** The lab's baseline: direct Cinder GETs during the run (max latency, answers other than 404). */
  labMaxMs: number;
  labFailed: number;
  violations: Violation[];
  knownViolations: Violation[];
  leftoversSwept: number;
  logBytes: number;
}

export interface FuzzOptions {
  seed: number;
  requests: number;
  concurrency?: number;
  /** Progress lines (bench). */
  progress?: (line: string) => void;
}

/** Runs the whole fuzz session and cleans up everything it created (temp dir, user, volumes). */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const run = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'csi-fuzz-'));
  const secret = `FUZZ-SECRET-${randomBytes(12).toString('hex')}`;
  const env: FuzzEnv = {
    kubeletRoot: join(dir, 'kubelet'),
    hostRoot: join(dir, 'hostroot'),
    stateDir: join(dir, 'state'),
    outside: join(dir, 'outside'),
    regularFile: join(dir, 'kubelet', 'regular-file'),
    escapeLink: join(dir, 'kubelet', 'escape-link'),
    markers: [`/var/tmp/cinder-csi-fuzz-escape-${run}`, `/var/tmp/cinder-csi-fuzz-escape-${run}/x`],
    nodeId: `fuzz-node-${run}`,
    secret,
    names: [0, 1, 2].map((i) => `pvc-fuzz-${run}-${i}`),
  };
  for (const d of [env.kubeletRoot, env.hostRoot, env.stateDir, env.outside, join(dir, 'cwd')]) {
    mkdirSync(d, { recursive: true });
  }
  writeFileSync(env.regularFile, 'not a directory\n');
  writeFileSync(join(env.outside, 'sentinel'), 'the driver must not touch this directory\n');
  symlinkSync(env.outside, env.escapeLink);
  const clusterId = `fuzz-${run}`;
  const user = await createFuzzUser(`csi-fuzz-${run}`, secret);
  const logPath = join(dir, 'driver.log');
  let child: ChildProcess | undefined;
  /** Background loops (Probe, lab baseline) run while this is true. */
  const loops = { on: true };
  let client: Client | undefined;
  const learned: Learned = { volumes: new Set(), snapshots: new Set(), groupSnapshots: new Set() };
  try {
    writeFileSync(
      join(dir, 'cloud.conf'),
      [
        '[Global]',
        `auth-url = ${LAB_KEYSTONE_URL}`,
        `username = ${user.name}`,
        `password = ${secret}`,
        'user-domain-name = Default',
        'project-name = admin',
        'project-domain-name = Default',
        'region = RegionOne',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const sock = join(dir, 'csi.sock');
    const childEnv: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!/^(OS_|CSI_|KUBERNETES_)/.test(k)) childEnv[k] = v;
    }
    const log = createWriteStream(logPath);
    child = spawn(
      process.execPath,
      [
        new URL('../../../src/cli/main.ts', import.meta.url).pathname,
        '--mode=all',
        `--endpoint=unix://${sock}`,
        `--node-id=${env.nodeId}`,
        `--cloud-config=${join(dir, 'cloud.conf')}`,
        `--kubelet-root=${env.kubeletRoot}`,
        `--host-root=${env.hostRoot}`,
        `--state-dir=${env.stateDir}`,
        `--cluster-id=${clusterId}`,
        '--node-zone=nova',
        '--log-level=debug',
        '--shutdown-grace=2',
      ],
      { cwd: join(dir, 'cwd'), env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    let exited: string | undefined;
    child.on('exit', (code, sig) => {
      exited = `driver exited (code ${code}, signal ${sig})`;
    });
    for (let i = 0; !existsSync(sock); i++) {
      if (exited) throw new Error(`${exited}: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
      if (i > 600) throw new Error('driver socket did not appear in 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    client = new Client(`unix://${sock}`, credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
    });
    const all = methods();
    const probe = all.find((m) => m.name === 'Probe')!;
    const call = (m: Method, req: unknown, raw: boolean, timeoutMs = 10_000) =>
      new Promise<{ err: ServiceError | null; res: unknown }>((resolve) => {
        client!.makeUnaryRequest(
          m.path,
          raw ? (b: unknown) => b as Buffer : m.serialize,
          m.deserialize,
          req,
          new Metadata(),
          { deadline: Date.now() + timeoutMs },
          (err, res) => resolve({ err: err ?? null, res }),
        );
      });
    // Ready: Probe answers ready (Cinder reachable with the fuzz user's password).
    for (let i = 0; ; i++) {
      const { err, res } = await call(probe, {}, false, 2000);
      if (!err && (res as { ready?: { value?: boolean } }).ready?.value) break;
      if (exited || i > 300)
        throw new Error(`driver never became ready: ${exited ?? err?.message ?? 'not ready'}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // Warm-up: the lab's cinder-api validates a new user's token against Keystone on its first
    // calls (seconds on a busy machine); that is the lab's cold cache, not the driver's latency.
    const list = all.find((m) => m.name === 'ListVolumes')!;
    for (let i = 0; i < 60; i++) {
      const t0 = performance.now();
      const { err } = await call(list, { max_entries: 1 }, false, 30_000);
      if (!err && performance.now() - t0 < 1000) break;
    }

    // The lab's baseline during the run: a direct Cinder GET every 250 ms. A reply over SLOW_MS is
    // a violation only when the lab answered its own GETs quickly at that time: on a machine too
    // loaded for Cinder itself, the driver cannot be faster than the Cinder it waits for.
    const labToken = await keystoneToken(user.name, secret);
    const baseline: { t0: number; t1: number; ok: boolean }[] = [];
    const baselineLoop = (async () => {
      while (loops.on) {
        const t0 = performance.now();
        // A random id: Cinder answers 404 when healthy (a 5xx makes the driver back off and retry).
        const status = await fetch(
          `${new URL(LAB_CINDER_URL).origin}/v3/${user.projectId}/volumes/${randomUUID()}`,
          { headers: { 'x-auth-token': labToken }, signal: AbortSignal.timeout(30_000) },
        )
          .then(async (r) => {
            await r.arrayBuffer();
            return r.status;
          })
          .catch(() => 0);
        baseline.push({ t0, t1: performance.now(), ok: status === 404 });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const labSlowDuring = (t0: number, t1: number) =>
      baseline.some((b) => b.t1 >= t0 && b.t0 <= t1 && (!b.ok || b.t1 - b.t0 >= LAB_SLOW_MS));
    let slowWhileLabSlow = 0;
    let longOperations = 0;
    const pendingSlow: { t0: number; t1: number; v: Violation }[] = [];

    // Teardown detector: the channel must stay READY from now on.
    let teardowns = 0;
    let watching = true;
    const channel = client.getChannel();
    const watch = (state: connectivityState) => {
      if (!watching) return;
      channel.watchConnectivityState(state, Date.now() + 3_600_000, () => {
        const now = channel.getConnectivityState(false);
        if (now === connectivityState.SHUTDOWN) return;
        if (watching && now !== connectivityState.READY) teardowns++;
        watch(now);
      });
    };
    watch(channel.getConnectivityState(false));

    const violations: Violation[] = [];
    const knownViolations: Violation[] = [];
    const report = (v: Violation) => {
      const known = isKnown(v);
      if (known) knownViolations.push({ ...v, known });
      else violations.push(v);
    };
    const probes = { ok: 0, failed: 0 };
    const probeLoop = (async () => {
      while (loops.on) {
        const { err } = await call(probe, {}, false, 5000);
        if (err) {
          probes.failed++;
          report({
            kind: 'probe-failed',
            rpc: 'Identity/Probe',
            request: '{}',
            code: CODE_NAMES[err.code],
            message: err.details,
          });
        } else probes.ok++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const rng = new Prng(opts.seed);
    const gen = new RequestGenerator(loadCsiRoot(), env, learned, rng);
    const codes: Record<string, number> = {};
    const latencies: number[] = [];
    let maxLatency = { ms: 0, rpc: '' };
    let rawFrames = 0;
    let next = 0;
    const one = async (i: number) => {
      const m = rng.pick(all);
      const raw = rng.chance(0.04);
      const req = raw ? gen.rawFrame(m.requestType) : gen.request(m.requestType);
      if (raw) rawFrames++;
      const rpc = `${m.service}/${m.name}`;
      const shown = raw ? `raw:${(req as Buffer).subarray(0, 64).toString('hex')}` : describeRequest(req);
      const t0 = performance.now();
      const { err, res } = await call(m, req, raw);
      const ms = performance.now() - t0;
      latencies.push(ms);
      if (ms > maxLatency.ms) maxLatency = { ms, rpc };
      const code = CODE_NAMES[err ? err.code : status.OK] ?? String(err?.code);
      codes[code] = (codes[code] ?? 0) + 1;
      const base = {
        rpc,
        request: shown,
        code,
        latencyMs: Math.round(ms),
        ...(err ? { message: err.details.slice(0, 300) } : {}),
      };
      if (code === 'INTERNAL' || code === 'UNKNOWN') report({ kind: code, ...base });
      if (ms > SLOW_MS && !err && LONG_OPERATIONS.has(m.name)) longOperations++;
      else if (ms > SLOW_MS) pendingSlow.push({ t0, t1: t0 + ms, v: { kind: 'slow', ...base } });
      if (err && Buffer.byteLength(err.details) > MESSAGE_MAX) report({ kind: 'long-message', ...base });
      const replyText = err ? `${err.details}` : JSON.stringify(res);
      if (replyText.includes(secret)) report({ kind: 'secret-in-reply', ...base });
      if (!err) learn(m.name, res, learned);
      if (opts.progress && i > 0 && i % 2000 === 0) opts.progress(`${i} requests`);
    };
    const workers = Array.from({ length: opts.concurrency ?? 8 }, async () => {
      while (next < opts.requests && !exited) await one(next++);
    });
    await Promise.all(workers);
    loops.on = false;
    await probeLoop;
    loops.on = false;
    await baselineLoop;
    for (const p of pendingSlow) {
      if (labSlowDuring(p.t0, p.t1)) slowWhileLabSlow++;
      else report(p.v);
    }

    // Clean up through the driver: what the run created and learned about.
    await cleanupThroughDriver(call, all, learned, env.nodeId);
    watching = false;
    if (teardowns > 0) report({ kind: 'connection-torn-down', rpc: '-', request: `${teardowns} times` });
    if (exited) report({ kind: 'process-died', rpc: '-', request: exited });

    // Files outside the roots.
    for (const mk of env.markers)
      if (existsSync(mk)) report({ kind: 'file-outside-roots', rpc: '-', request: mk });
    const outside = readdirSync(env.outside);
    if (outside.join() !== 'sentinel')
      report({ kind: 'file-outside-roots', rpc: '-', request: `${env.outside}: ${outside.join(', ')}` });
    const cwd = readdirSync(join(dir, 'cwd'));
    if (cwd.length > 0) report({ kind: 'file-outside-roots', rpc: '-', request: `cwd: ${cwd.join(', ')}` });
    const top = readdirSync(dir).filter(
      (f) =>
        !['kubelet', 'hostroot', 'state', 'outside', 'cwd', 'csi.sock', 'cloud.conf', 'driver.log'].includes(
          f,
        ),
    );
    if (top.length > 0)
      report({ kind: 'file-outside-roots', rpc: '-', request: `${dir}: ${top.join(', ')}` });

    // Stop the driver, then search its whole log for the planted secret.
    child.kill('SIGTERM');
    await new Promise<void>((r) => (child!.exitCode !== null ? r() : child!.once('exit', () => r())));
    await new Promise<void>((r) => log.end(r));
    const logText = readFileSync(logPath, 'utf8');
    const keep = process.env['CSI_FUZZ_KEEP_LOG'];
    if (keep) writeFileSync(keep, logText);
    if (logText.includes(secret)) {
      const line = logText.split('\n').find((l) => l.includes(secret)) ?? '';
      report({ kind: 'secret-in-log', rpc: '-', request: line.replaceAll(secret, '<SECRET>').slice(0, 500) });
    }
    const token = await keystoneToken(user.name, secret);
    const leftovers = await sweepCluster(token, user.projectId, clusterId);
    latencies.sort((a, b) => a - b);
    return {
      seed: opts.seed,
      requests: next,
      rawFrames,
      codes,
      maxLatencyMs: Math.round(maxLatency.ms),
      maxLatencyRpc: maxLatency.rpc,
      p99LatencyMs: Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
      probes,
      teardowns,
      slowWhileLabSlow,
      longOperations,
      labMaxMs: Math.round(Math.max(0, ...baseline.map((b) => b.t1 - b.t0))),
      labFailed: baseline.filter((b) => !b.ok).length,
      violations,
      knownViolations,
      leftoversSwept: leftovers,
      logBytes: logText.length,
    };
  } finally {
    loops.on = false;
    client?.close();
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await user.remove().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export { formatResult, formatViolation } from './report.ts';
