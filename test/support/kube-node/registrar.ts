/**
 * STAND-IN for the Kubernetes sidecar node-driver-registrar (the real image cannot be fetched
 * here), kept to its documented behaviour and nothing more:
 *   - asks the CSI driver for its name (Identity.GetPluginInfo on --csi-address), retrying until
 *     the driver answers;
 *   - removes a stale socket, then serves the kubelet's plugin-registration API (pluginregistration
 *     v1, ./pluginregistration.proto) on `<kubelet-root>/plugins_registry/<driver>-reg.sock`:
 *     `GetInfo` → `{type: "CSIPlugin", name, endpoint: --kubelet-registration-path,
 *     supported_versions: ["1.0.0"]}`; `NotifyRegistrationStatus` records the kubelet's answer (the
 *     real sidecar exits when registration failed; here `failed` is set and `registered` rejects);
 *   - on stop removes the socket, so the kubelet deregisters the plugin (CSINode entry removed).
 * Everything the kubelet does with it (NodeGetInfo, CSINode, node labels) is the real kubelet.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  type GrpcObject,
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceClientConstructor,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { csiClient } from '../csi-client.ts';

const PROTO = join(import.meta.dirname, 'pluginregistration.proto');

export interface RegistrarOptions {
  /** The driver's socket as this process reaches it (unix:///path). */
  csiAddress: string;
  /** The driver's socket path as the kubelet reaches it (--kubelet-registration-path). */
  kubeletRegistrationPath: string;
  /** `<kubelet-root>/plugins_registry`. */
  registrationDir: string;
  log?: (msg: string) => void;
}

export class NodeDriverRegistrar {
  readonly #opts: RegistrarOptions;
  #server: Server | undefined;
  #socket = '';
  #resolve: (() => void) | undefined;
  #reject: ((e: Error) => void) | undefined;
  /** Resolves when the kubelet reports the plugin registered; rejects when it reports a failure. */
  readonly registered: Promise<void>;
  failed: string | undefined;
  driverName = '';

  constructor(opts: RegistrarOptions) {
    this.#opts = opts;
    this.registered = new Promise<void>((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    this.registered.catch(() => undefined); // observed by whoever awaits it
  }

  get socket(): string {
    return this.#socket;
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const log = this.#opts.log ?? (() => undefined);
    const client = csiClient(this.#opts.csiAddress);
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        try {
          const info = await client.call<{ name: string }>('Identity', 'GetPluginInfo', {}, 5000);
          this.driverName = info.name;
          break;
        } catch (err) {
          if (Date.now() > deadline)
            throw new Error(`registrar: the driver at ${this.#opts.csiAddress} did not answer: ${err}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      client.close();
    }
    const def = loadSync(PROTO, { keepCase: true, defaults: true });
    const pkg = loadPackageDefinition(def)['pluginregistration'] as GrpcObject;
    const service = (pkg['Registration'] as ServiceClientConstructor).service;
    const server = new Server();
    server.addService(service, {
      GetInfo: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
        log(`registrar: GetInfo from the kubelet`);
        cb(null, {
          type: 'CSIPlugin',
          name: this.driverName,
          endpoint: this.#opts.kubeletRegistrationPath,
          supported_versions: ['1.0.0'],
        });
      },
      NotifyRegistrationStatus: (
        call: ServerUnaryCall<{ plugin_registered: boolean; error: string }, unknown>,
        cb: sendUnaryData<unknown>,
      ) => {
        const { plugin_registered: ok, error } = call.request;
        log(`registrar: registration status from the kubelet: ${ok ? 'registered' : `failed: ${error}`}`);
        if (ok) this.#resolve?.();
        else {
          this.failed = error || 'registration failed';
          this.#reject?.(new Error(`kubelet refused the plugin: ${this.failed}`));
        }
        cb(null, {});
      },
    });
    this.#socket = join(this.#opts.registrationDir, `${this.driverName}-reg.sock`);
    rmSync(this.#socket, { force: true });
    await new Promise<void>((res, rej) =>
      server.bindAsync(`unix://${this.#socket}`, ServerCredentials.createInsecure(), (err) =>
        err ? rej(err) : res(),
      ),
    );
    this.#server = server;
    log(`registrar: serving ${this.#socket} for ${this.driverName}`);
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((res) => server.tryShutdown(() => res()));
    if (this.#socket && existsSync(this.#socket)) rmSync(this.#socket, { force: true });
  }
}
