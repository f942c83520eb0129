/**
 * The one way host commands are run: argument arrays (never a shell), per-command timeouts that
 * kill the whole process group, bounded output capture, exit codes kept, secrets masked in every
 * logged command line and error message, an optional host wrapper (nsenter/chroot) for running
 * inside the node container, and a PATH prefix so tests can put the tool doubles first.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../util/logger.ts';

export interface ExecOptions {
  /** Kill the command after this long (default 30 s; 0 = no timeout, e.g. mkfs on big devices). */
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed (without it, stdin is /dev/null). */
  input?: string;
  /** Extra environment variables (merged over the executor's environment). */
  env?: Record<string, string>;
  /** Aborting kills the process group; the command then fails with `aborted` set. */
  signal?: AbortSignal;
  /** Values masked (as `***`) in logged command lines, errors and captured output. */
  secrets?: string[];
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface Executor {
  run(cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
/** Captured bytes per stream; the tail beyond this is dropped (the head is what parsers need). */
export const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
const MASK = '***';

/** Replaces every occurrence of each secret in `text` (longest first, empty ones ignored). */
export function maskSecrets(text: string, secrets: readonly string[] | undefined): string {
  if (!secrets || secrets.length === 0 || text.length === 0) return text;
  let out = text;
  for (const s of [...secrets].filter((x) => x.length > 0).sort((a, b) => b.length - a.length)) {
    out = out.split(s).join(MASK);
  }
  return out;
}

/** A command that failed: non-ok exit code, killed by timeout/abort, or not found. */
export class CommandError extends Error {
  override name = 'CommandError';
  readonly cmd: string;
  /** Arguments with secrets masked. */
  readonly args: string[];
  /** Exit code, or null when the process was killed or could not start. */
  readonly code: number | null;
  /** Captured stderr (masked, trimmed to 2 KiB). */
  readonly stderr: string;
  readonly stdout: string;
  readonly timedOut: boolean;
  /** The executable does not exist (ENOENT): the tool is not installed on the host. */
  readonly notFound: boolean;
  readonly aborted: boolean;
  readonly durationMs: number;

  constructor(f: {
    cmd: string;
    args: string[];
    code: number | null;
    stderr: string;
    stdout?: string;
    timedOut?: boolean;
    notFound?: boolean;
    aborted?: boolean;
    durationMs?: number;
    signalName?: string | null;
  }) {
    const line = [f.cmd, ...f.args].join(' ');
    const err = f.stderr.trim().slice(-2048);
    let why: string;
    if (f.notFound) why = `${f.cmd}: command not found`;
    else if (f.timedOut) why = `timed out after ${f.durationMs ?? '?'} ms`;
    else if (f.aborted) why = 'aborted';
    else if (f.code === null) why = `killed by ${f.signalName ?? 'signal'}`;
    else why = `exit code ${f.code}`;
    super(`command failed (${why}): ${line}${err ? `: ${err}` : ''}`);
    this.cmd = f.cmd;
    this.args = f.args;
    this.code = f.code;
    this.stderr = err;
    this.stdout = (f.stdout ?? '').slice(0, 2048);
    this.timedOut = f.timedOut ?? false;
    this.notFound = f.notFound ?? false;
    this.aborted = f.aborted ?? false;
    this.durationMs = f.durationMs ?? 0;
  }
}

export interface HostExecutorOptions {
  logger: Logger;
  /** Prefix for every command, e.g. ['nsenter', '--mount=/host/proc/1/ns/mnt', '--'] or ['chroot', '/host']. */
  wrapper?: string[];
  /** Directories put first on PATH (tests: the doubles folder). */
  pathPrepend?: string[];
  /** Base environment (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Default timeout (default 30 s). */
  defaultTimeoutMs?: number;
}

/** Collects a stream up to `limit` bytes. */
class Capture {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  truncated = false;
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  push(b: Buffer): void {
    if (this.#size >= this.#limit) {
      this.truncated = true;
      return;
    }
    const room = this.#limit - this.#size;
    const part = b.length > room ? b.subarray(0, room) : b;
    if (part.length < b.length) this.truncated = true;
    this.#chunks.push(part);
    this.#size += part.length;
  }
  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}

export class HostExecutor implements Executor {
  readonly #log: Logger;
  readonly #wrapper: string[];
  readonly #env: NodeJS.ProcessEnv;
  readonly #defaultTimeout: number;

  constructor(opts: HostExecutorOptions) {
    this.#log = opts.logger;
    this.#wrapper = opts.wrapper ?? [];
    this.#defaultTimeout = opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const base = { ...(opts.env ?? process.env) };
    if (opts.pathPrepend && opts.pathPrepend.length > 0) {
      base.PATH = [
        ...opts.pathPrepend,
        base.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ].join(':');
    }
    this.#env = base;
  }

  run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const secrets = opts.secrets;
    const maskedArgs = args.map((a) => maskSecrets(a, secrets));
    const okCodes = opts.okCodes ?? [0];
    const timeoutMs = opts.timeoutMs ?? this.#defaultTimeout;
    const [file, argv] =
      this.#wrapper.length > 0
        ? [this.#wrapper[0] as string, [...this.#wrapper.slice(1), cmd, ...args]]
        : [cmd, args];
    const started = performance.now();
    const line = [cmd, ...maskedArgs].join(' ');

    return new Promise<ExecResult>((resolve, reject) => {
      if (opts.signal?.aborted) {
        reject(new CommandError({ cmd, args: maskedArgs, code: null, stderr: '', aborted: true }));
        return;
      }
      const child = spawn(file, argv, {
        env: opts.env ? { ...this.#env, ...opts.env } : this.#env,
        // stdin is /dev/null unless there is input: one pipe and stream fewer per command.
        stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        // Own process group, so a timeout kills helpers the tool forked too.
        detached: true,
        windowsHide: true,
      });
      const out = new Capture(MAX_OUTPUT_BYTES);
      const err = new Capture(MAX_OUTPUT_BYTES);
      let timedOut = false;
      let aborted = false;
      let settled = false;

      const killGroup = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              timedOut = true;
              killGroup();
            }, timeoutMs)
          : undefined;
      const onAbort = () => {
        aborted = true;
        killGroup();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };

      child.stdout?.on('data', (b: Buffer) => out.push(b));
      child.stderr?.on('data', (b: Buffer) => err.push(b));
      if (opts.input !== undefined && child.stdin) {
        child.stdin.on('error', () => {
          /* EPIPE when the tool exits without reading stdin: not our failure. */
        });
        child.stdin.end(opts.input);
      }

      child.on('error', (e: NodeJS.ErrnoException) => {
        const durationMs = Math.round(performance.now() - started);
        finish(() => {
          const notFound = e.code === 'ENOENT';
          this.#log.debug({ cmd: line, durationMs, notFound }, 'command could not start');
          reject(
            new CommandError({
              cmd,
              args: maskedArgs,
              code: null,
              stderr: notFound ? '' : maskSecrets(e.message, secrets),
              notFound,
              durationMs,
            }),
          );
        });
      });

      child.on('close', (code, signalName) => {
        const durationMs = Math.round(performance.now() - started);
        finish(() => {
          const stdout = maskSecrets(out.text(), secrets);
          const stderr = maskSecrets(err.text(), secrets);
          this.#log.debug({ cmd: line, code, signal: signalName, durationMs, timedOut }, 'command finished');
          if (code !== null && okCodes.includes(code) && !timedOut && !aborted) {
            resolve({ code, stdout, stderr, durationMs });
            return;
          }
          reject(
            new CommandError({
              cmd,
              args: maskedArgs,
              code: timedOut || aborted ? null : code,
              stderr,
              stdout,
              timedOut,
              aborted,
              durationMs,
              signalName,
            }),
          );
        });
      });
    });
  }
}

/** True for a CommandError with one of these exit codes. */
export function exitedWith(e: unknown, ...codes: number[]): e is CommandError {
  return e instanceof CommandError && e.code !== null && codes.includes(e.code);
}
