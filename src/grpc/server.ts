import { randomUUID } from 'node:crypto';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { CsiError, capMessage, invalidArgument } from '../csi/errors.ts';
import type { RpcContext } from '../csi/rpc.ts';
import type {
  ControllerService,
  GroupControllerService,
  IdentityService,
  NodeService,
} from '../csi/services.ts';
import { AbortedError } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import { guardDeserializers, MalformedRequest } from './decode.ts';
import { type Endpoint, parseEndpoint } from './endpoint.ts';
import { RequestLimits } from './limits.ts';
import { type CsiServiceDefinitions, loadCsiRoot, loadCsiServices } from './proto.ts';
import { type CsiRedactor, capStrings, scrubSecrets } from './redact.ts';

/** Hook for per-RPC metrics (src/metrics implements it). */
export interface RpcObserver {
  observeRpc(method: string, code: string, seconds: number): void;
  rpcInFlight?: { inc(method: string): void; dec(method: string): void };
}

export interface CsiServerOptions {
  endpoint: string;
  logger: Logger;
  identity: IdentityService;
  controller?: ControllerService;
  node?: NodeService;
  groupController?: GroupControllerService;
  /** Redacts csi_secret fields for debug request/response logs. */
  redactor: CsiRedactor;
  /** Maps a lower layer's error (cloud, host command) to a CsiError; undefined = not recognised. */
  mapError?: (err: unknown) => CsiError | undefined;
  observer?: RpcObserver;
  /** How long in-flight calls may run after a shutdown request (default 30 s). */
  shutdownGraceMs?: number;
  /** Service definitions; loaded from proto/csi.proto when not given. */
  definitions?: CsiServiceDefinitions;
  /** The CSI size limits checked before every handler; built from proto/csi.proto when not given. */
  limits?: RequestLimits;
}

/**
 * Largest request accepted (grpc-js answers RESOURCE_EXHAUSTED above it, before decoding). The
 * largest valid CSI request is a few csi_secret maps (LIMITS.secrets each) plus 4 KiB maps, far
 * below; a hostile 1 MB field still decodes and gets the size-limit INVALID_ARGUMENT that names it.
 */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? String(code);
}

/**
 * The gRPC surface: one server, the four CSI services, every RPC through one wrapper that gives it a
 * request id, a deadline-bound AbortSignal, a structured log line, metrics, and error mapping to the
 * CSI spec's codes (never a stack trace to the caller; INTERNAL only for unexpected failures).
 */
export class CsiServer {
  readonly #opts: CsiServerOptions;
  readonly #log: Logger;
  readonly #server: Server;
  readonly #endpoint: Endpoint;
  readonly #limits: RequestLimits;
  readonly #inFlight = new Set<AbortController>();
  #boundPort: number | undefined;
  #stopping: Promise<void> | undefined;

  constructor(opts: CsiServerOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#endpoint = parseEndpoint(opts.endpoint);
    this.#server = new Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
    this.#limits = opts.limits ?? new RequestLimits(loadCsiRoot);
    // Build the size-limit plans now, not on the first caller's clock.
    this.#limits.warm(WARM_TYPES);
    const defs = opts.definitions ?? loadCsiServices();
    this.#add(defs.Identity, 'Identity', opts.identity as unknown as Record<string, unknown>);
    this.#add(defs.Controller, 'Controller', (opts.controller ?? {}) as Record<string, unknown>);
    this.#add(defs.Node, 'Node', (opts.node ?? {}) as Record<string, unknown>);
    this.#add(
      defs.GroupController,
      'GroupController',
      (opts.groupController ?? {}) as Record<string, unknown>,
    );
  }

  /** The bound TCP port (tcp endpoints), for tests using tcp://127.0.0.1:0. */
  get port(): number | undefined {
    return this.#boundPort;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async start(): Promise<void> {
    let address: string;
    if (this.#endpoint.kind === 'unix') {
      await prepareSocketPath(this.#endpoint.path);
      address = `unix://${this.#endpoint.path}`;
    } else {
      const host = this.#endpoint.host.includes(':') ? `[${this.#endpoint.host}]` : this.#endpoint.host;
      address = `${host}:${this.#endpoint.port}`;
    }
    // The socket is created with mode 0600 from the start (umask), not chmod-ed after a window.
    const oldMask = this.#endpoint.kind === 'unix' ? process.umask(0o177) : undefined;
    try {
      this.#boundPort = await new Promise<number>((resolve, reject) => {
        this.#server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(err) : resolve(port),
        );
      });
    } finally {
      if (oldMask !== undefined) process.umask(oldMask);
    }
    if (this.#endpoint.kind === 'unix') await chmod(this.#endpoint.path, 0o600);
    this.#log.info({ endpoint: this.#opts.endpoint, port: this.#boundPort }, 'CSI gRPC server listening');
  }

  /**
   * Graceful stop: no new calls, in-flight calls may finish within the grace period, then they are
   * cancelled. Removes the unix socket. Safe to call twice.
   */
  stop(graceMs = this.#opts.shutdownGraceMs ?? 30_000): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ inFlight: this.#inFlight.size, graceMs }, 'shutting down CSI gRPC server');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#log.warn({ inFlight: this.#inFlight.size }, 'grace period over: cancelling in-flight calls');
          for (const ac of this.#inFlight) ac.abort(new Error('driver shutting down'));
          this.#server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        this.#server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (this.#endpoint.kind === 'unix') await unlink(this.#endpoint.path).catch(() => undefined);
      this.#log.info('CSI gRPC server stopped');
    })();
    return this.#stopping;
  }

  #add(def: ServiceDefinition, service: string, impl: Record<string, unknown>): void {
    const handlers: UntypedServiceImplementation = {};
    for (const [method, md] of Object.entries(def)) {
      const fn = impl[method];
      const { requestType, responseType } = messageTypeNames(md, method);
      handlers[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        void this.#handle(
          `${service}/${method}`,
          requestType,
          responseType,
          typeof fn === 'function' ? (fn.bind(impl) as Handler) : undefined,
          call,
          callback,
        );
      };
    }
    this.#server.addService(guardDeserializers(def), handlers);
  }

  async #handle(
    method: string,
    requestType: string,
    responseType: string,
    fn: Handler | undefined,
    call: ServerUnaryCall<unknown, unknown>,
    callback: sendUnaryData<unknown>,
  ): Promise<void> {
    const started = performance.now();
    const requestId = randomUUID();
    const log = this.#log.child({ method, requestId });
    const ac = new AbortController();
    const deadlineRaw = call.getDeadline();
    const deadline =
      deadlineRaw instanceof Date
        ? deadlineRaw.getTime()
        : Number.isFinite(deadlineRaw)
          ? Number(deadlineRaw)
          : undefined;
    let timer: NodeJS.Timeout | undefined;
    if (deadline !== undefined) {
      timer = setTimeout(() => ac.abort(new DeadlineError()), Math.max(0, deadline - Date.now()));
    }
    call.on('cancelled', () => ac.abort(new Error('call cancelled by the client')));
    this.#inFlight.add(ac);
    this.#opts.observer?.rpcInFlight?.inc(method);
    const request = call.request;
    if (log.isLevelEnabled('debug') && !(request instanceof MalformedRequest)) {
      log.debug({ request: capStrings(this.#opts.redactor.redact(requestType, request)) }, 'request');
    }
    let code: number = status.OK;
    let message: string | undefined;
    try {
      if (!fn) throw new CsiError(status.UNIMPLEMENTED, `${method} is not implemented by this driver`);
      if (request instanceof MalformedRequest) throw invalidArgument(request.reason);
      this.#limits.check(requestType, request);
      const ctx: RpcContext = { signal: ac.signal, deadline, requestId, log };
      const response = await fn(call.request, ctx);
      if (log.isLevelEnabled('debug')) {
        log.debug({ response: capStrings(this.#opts.redactor.redact(responseType, response)) }, 'response');
      }
      callback(null, response);
    } catch (err) {
      const mapped = this.#toCsiError(err, ac.signal);
      code = mapped.code;
      // No message leaves or is logged longer than MESSAGE_MAX_BYTES, nor with a secret of the request.
      const secrets =
        request instanceof MalformedRequest ? [] : this.#opts.redactor.secretValues(requestType, request);
      if (code === status.INTERNAL) {
        log.error({ err: describeError(err, secrets) }, 'unexpected failure');
        message = `internal error (request id ${requestId}); see the driver's log`;
      } else {
        message = capMessage(scrubSecrets(mapped.message, secrets));
      }
      callback({ code, details: message });
    } finally {
      if (timer) clearTimeout(timer);
      this.#inFlight.delete(ac);
      this.#opts.observer?.rpcInFlight?.dec(method);
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      const codeStr = codeName(code);
      this.#opts.observer?.observeRpc(method, codeStr, durationMs / 1000);
      const level = code === status.OK ? 'info' : code === status.INTERNAL ? 'error' : 'warn';
      log[level]({ code: codeStr, durationMs, ...(message === undefined ? {} : { message }) }, 'rpc');
    }
  }

  #toCsiError(err: unknown, signal: AbortSignal): CsiError {
    if (err instanceof CsiError) return err;
    if (err instanceof AbortedError || (signal.aborted && isAbortLike(err))) {
      const reason = signal.reason;
      if (reason instanceof DeadlineError) {
        return new CsiError(
          status.DEADLINE_EXCEEDED,
          'the call deadline passed before the operation finished; retry',
        );
      }
      return new CsiError(status.CANCELLED, reason instanceof Error ? reason.message : 'call cancelled');
    }
    const mapped = this.#opts.mapError?.(err);
    if (mapped) return mapped;
    return new CsiError(status.INTERNAL, 'internal error');
  }
}

/** Request types whose limit plans are built at start (the rest on first use). */
const WARM_TYPES = [
  'csi.v1.CreateVolumeRequest',
  'csi.v1.NodeStageVolumeRequest',
  'csi.v1.NodePublishVolumeRequest',
];

/** An unexpected error for the log: name, message and stack, capped and scrubbed of secrets. */
function describeError(err: unknown, secrets: string[]): Record<string, string> {
  if (!(err instanceof Error)) return { message: capMessage(scrubSecrets(String(err), secrets)) };
  return {
    name: err.name,
    message: capMessage(scrubSecrets(err.message, secrets)),
    stack: capMessage(scrubSecrets(err.stack ?? '', secrets), 4096),
  };
}

/** proto-loader's method definitions carry the message descriptors; names give the redaction types. */
function messageTypeNames(md: unknown, method: string): { requestType: string; responseType: string } {
  const d = md as { requestType?: { type?: { name?: string } }; responseType?: { type?: { name?: string } } };
  return {
    requestType: `csi.v1.${d.requestType?.type?.name ?? `${method}Request`}`,
    responseType: `csi.v1.${d.responseType?.type?.name ?? `${method}Response`}`,
  };
}

type Handler = (req: unknown, ctx: RpcContext) => Promise<unknown>;

class DeadlineError extends Error {
  override name = 'DeadlineError';
  constructor() {
    super('deadline exceeded');
  }
}

function isAbortLike(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'AbortedError');
}

/** Creates the socket's directory and removes a stale socket; refuses to delete anything else. */
async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  await unlink(path);
}
