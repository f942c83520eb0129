/**
 * The driver as a real process for the chaos suites: `node src/cli/main.ts --mode controller` on a
 * fixed 127.0.0.1 port, noauth against a Cinder endpoint (the fault proxy), one node's host
 * connector from a connectors file. `kill()` sends SIGKILL and waits for the exit; `start()` starts
 * it again on the same port (a new gRPC client each time, as a sidecar reconnecting).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type CsiTestClient, csiClient } from '../csi-client.ts';
import { labHostConnector, labNoauth } from '../lab.ts';

const REPO = resolve(import.meta.dirname, '../../..');

export async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

export interface DriverProcessOptions {
  /** Cinder v3 endpoint the driver uses (the proxy), e.g. http://127.0.0.1:PORT/v3. */
  cinderEndpoint: string;
  clusterId: string;
  /** Node ids that get a host connector. */
  nodes: string[];
  logLevel?: string;
}

export class DriverProcess {
  readonly dir: string;
  readonly logFile: string;
  starts = 0;
  kills = 0;
  #port = 0;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #client: CsiTestClient | undefined;
  readonly #opts: DriverProcessOptions;

  constructor(opts: DriverProcessOptions) {
    this.#opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), 'chaos-driver-'));
    this.logFile = join(this.dir, 'driver.log');
    writeFileSync(
      join(this.dir, 'connectors.json'),
      JSON.stringify(Object.fromEntries(opts.nodes.map((n) => [n, labHostConnector(n)]))),
    );
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The gRPC client of the current process (a new one after each start). */
  client(): CsiTestClient {
    if (!this.#client) throw new Error('driver not started');
    return this.#client;
  }

  /** Starts the driver; a process that exits during start-up is started again (≤ 5 times, like a kubelet). */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#startOnce();
      } catch (err) {
        if (attempt >= 5 || this.running) throw err;
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }

  async #startOnce(): Promise<void> {
    if (this.running) return;
    if (!this.#port) this.#port = await freePort();
    const na = labNoauth();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (k.startsWith('OS_') || k.startsWith('CSI_') || k === 'KUBERNETES_SERVICE_HOST') continue;
      env[k] = v;
    }
    Object.assign(env, {
      OS_AUTH_TYPE: 'noauth',
      OS_USER_ID: na.userId,
      OS_PROJECT_ID: na.projectId,
      OS_ENDPOINT: this.#opts.cinderEndpoint,
    });
    const fd = openSync(this.logFile, 'a');
    const args = [
      join(REPO, 'src/cli/main.ts'),
      '--mode',
      'controller',
      '--endpoint',
      `tcp://127.0.0.1:${this.#port}`,
      '--node-id',
      'chaos-controller',
      '--cluster-id',
      this.#opts.clusterId,
      '--connectors-file',
      join(this.dir, 'connectors.json'),
      '--state-dir',
      join(this.dir, 'state'),
      '--kubelet-root',
      join(this.dir, 'kubelet'),
      '--log-level',
      this.#opts.logLevel ?? 'warn',
      '--shutdown-grace',
      '1',
    ];
    const child = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.#child = child;
    this.#exited = new Promise((res) => child.once('exit', () => res()));
    this.starts++;
    this.#client?.close();
    this.#client = csiClient(`127.0.0.1:${this.#port}`);
    // Up when the gRPC server answers (Probe readiness needs a Cinder check, which faults may delay).
    const until = Date.now() + 60_000;
    for (;;) {
      if (!this.running) throw new Error(`driver exited during start-up (see ${this.logFile})`);
      try {
        await this.#client.call('Identity', 'GetPluginInfo', {}, 2000);
        return;
      } catch {
        if (Date.now() > until) throw new Error(`driver did not come up in 60 s (see ${this.logFile})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** SIGKILL (no shutdown of any kind) and wait for the process to be gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    child.kill('SIGKILL');
    this.kills++;
    await this.#exited;
  }

  /** SIGTERM, bounded; then removes its files unless `keepFiles`. */
  async stop(keepFiles = false): Promise<void> {
    const child = this.#child;
    if (child && this.running) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await this.#exited;
      clearTimeout(t);
    }
    this.#client?.close();
    this.#client = undefined;
    if (!keepFiles) rmSync(this.dir, { recursive: true, force: true });
  }
}
