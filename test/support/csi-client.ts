import { type Client, credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { csiPackageDefinition } from '../../src/grpc/proto.ts';

type Unary = (
  req: unknown,
  md: Metadata,
  opts: { deadline?: number },
  cb: (e: ServiceError | null, r: unknown) => void,
) => void;

export interface CsiTestClient {
  call<T = Record<string, unknown>>(
    service: 'Identity' | 'Controller' | 'Node' | 'GroupController',
    method: string,
    req?: unknown,
    timeoutMs?: number,
  ): Promise<T>;
  close(): void;
}

type CsiPackage = { csi: { v1: Record<string, new (a: string, c: unknown) => Client> } };
let loaded: CsiPackage | undefined;
/** The client stubs, built once per process (benches build them before timing anything). */
export function csiClientPackage(): CsiPackage {
  loaded ??= loadPackageDefinition(csiPackageDefinition()) as unknown as CsiPackage;
  return loaded;
}

/** A real grpc-js client for the CSI services at `address` (unix:///path or host:port). */
export function csiClient(address: string): CsiTestClient {
  const pkg = csiClientPackage();
  const clients = new Map<string, Client>();
  const get = (service: string) => {
    let c = clients.get(service);
    if (!c) {
      const Ctor = pkg.csi.v1[service]!;
      c = new Ctor(address, credentials.createInsecure());
      clients.set(service, c);
    }
    return c;
  };
  return {
    call(service, method, req = {}, timeoutMs = 10_000) {
      const client = get(service) as unknown as Record<string, Unary>;
      const fn = client[method];
      if (!fn) return Promise.reject(new Error(`no method ${service}.${method}`));
      return new Promise((resolve, reject) => {
        fn.call(client, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
          err ? reject(err) : resolve(res as never),
        );
      });
    },
    close() {
      for (const c of clients.values()) c.close();
    },
  };
}

/** Collects pino lines written to it, for assertions on logs. */
export class LogCapture {
  readonly lines: string[] = [];
  write(chunk: string | Buffer): boolean {
    this.lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  }
  get text(): string {
    return this.lines.join('\n');
  }
  records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
