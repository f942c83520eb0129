/**
 * RBD connector: `rbd map` (krbd) or `rbd-nbd map`, monitors from connection_info hosts/ports,
 * cephx id from auth_username. Cinder's RBD connection_info carries no key (only the libvirt
 * secret_uuid), so the node needs one of:
 *  - `keyringPath` (RbdOptions): a keyring file on the host, e.g. /etc/ceph/ceph.client.cinder.keyring;
 *  - node-stage secrets (opt-in mode): `keyring` (keyring file text) or `key` (the bare cephx key).
 * A secret from node-stage secrets is written to a root-only (0600) temporary keyring that is
 * removed right after the command.
 */
import { mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionInfo } from '../openstack/cinder-types.ts';
import type { Logger } from '../util/logger.ts';
import type { ConnectedDevice, ConnectOptions, ConnectorBaseDeps, StorageConnector } from './connector.ts';
import { ConnectError, UnsupportedConnectionError } from './connector.ts';
import { CommandError, type Executor } from './exec.ts';
import type { HostLock } from './lock.ts';
import type { HostPaths } from './paths.ts';
import { exists } from './scsi.ts';

export interface RbdOptions {
  /** 'krbd' (rbd map, default) or 'nbd' (rbd-nbd map). */
  mapper?: 'krbd' | 'nbd';
  /** Host keyring file used when no node-stage secret is given. */
  keyringPath?: string;
  /** Directory for temporary keyrings (default os.tmpdir()); must not be world-readable. */
  tmpDir?: string;
  /** Timeout for map/unmap (default 60 s). */
  timeoutMs?: number;
}

export interface RbdDetails {
  pool: string;
  image: string;
  mapper: 'krbd' | 'nbd';
  /** Monitors as passed to -m. */
  monitors: string;
  id?: string;
}

/** One entry of `rbd showmapped --format json` (krbd and rbd-nbd print the same fields). */
export interface MappedImage {
  id?: string;
  pool: string;
  namespace?: string;
  name: string;
  snap?: string;
  device: string;
}

export function parseShowmapped(stdout: string): MappedImage[] {
  const s = stdout.trim();
  if (!s) return [];
  const data = JSON.parse(s) as unknown;
  // Octopus+ prints an array; older releases an object keyed by id.
  const rows = Array.isArray(data) ? data : Object.values(data as Record<string, unknown>);
  return rows
    .filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null)
    .map((r) => ({
      id: r.id === undefined ? undefined : String(r.id),
      pool: String(r.pool ?? ''),
      namespace: r.namespace ? String(r.namespace) : undefined,
      name: String(r.name ?? r.image ?? ''),
      // krbd prints "-" for "no snapshot".
      snap: r.snap && r.snap !== '-' ? String(r.snap) : undefined,
      device: String(r.device ?? ''),
    }));
}

export function parseImageName(name: unknown): { pool: string; image: string } {
  if (typeof name !== 'string' || !/^[^/\s]+\/[^/\s]+$/.test(name)) {
    throw new UnsupportedConnectionError(
      `RBD connection info has an invalid name '${String(name)}' (want pool/image)`,
    );
  }
  const [pool, image] = name.split('/') as [string, string];
  return { pool, image };
}

export function monitorsOf(info: ConnectionInfo): string {
  const hosts = Array.isArray(info.hosts) ? info.hosts : [];
  const ports = Array.isArray(info.ports) ? info.ports : [];
  return hosts
    .map((h, i) => {
      const host = h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
      const port = ports[i] ?? ports[0];
      return port ? `${host}:${port}` : host;
    })
    .join(',');
}

function detailsOf(dev: ConnectedDevice): RbdDetails {
  return dev.details as unknown as RbdDetails;
}

export class RbdConnector implements StorageConnector {
  readonly protocol = 'rbd' as const;
  readonly #exec: Executor;
  readonly #paths: HostPaths;
  readonly #lock: HostLock;
  readonly #log: Logger;
  readonly #opts: RbdOptions;

  constructor(deps: ConnectorBaseDeps & { rbd?: RbdOptions }) {
    this.#exec = deps.executor;
    this.#paths = deps.paths;
    this.#lock = deps.lock;
    this.#log = deps.logger.child({ component: 'rbd' });
    this.#opts = deps.rbd ?? {};
  }

  get #timeout(): number {
    return this.#opts.timeoutMs ?? 60_000;
  }

  #tool(mapper: 'krbd' | 'nbd'): string {
    return mapper === 'nbd' ? 'rbd-nbd' : 'rbd';
  }

  async connect(info: ConnectionInfo, opts: ConnectOptions): Promise<ConnectedDevice> {
    const { pool, image } = parseImageName(info.name);
    const monitors = monitorsOf(info);
    const mapper = this.#opts.mapper ?? 'krbd';
    const id = typeof info.auth_username === 'string' && info.auth_username ? info.auth_username : undefined;
    const details: RbdDetails = { pool, image, mapper, monitors, id };
    return this.#lock.withLock(
      async () => {
        const existing = await this.#findMapped(details, opts.signal);
        if (existing) {
          this.#log.info({ pool, image, device: existing }, 'RBD image already mapped');
          return {
            protocol: 'rbd' as const,
            devicePath: existing,
            details: details as unknown as Record<string, unknown>,
          };
        }
        await this.#map(info, details, opts);
        const device = await this.#findMapped(details, opts.signal);
        if (!device) throw new ConnectError(`RBD image ${pool}/${image} mapped but its device was not found`);
        this.#log.info({ volumeId: opts.volumeId, pool, image, device }, 'RBD volume connected');
        return {
          protocol: 'rbd' as const,
          devicePath: device,
          details: details as unknown as Record<string, unknown>,
        };
      },
      { name: 'rbd', signal: opts.signal },
    );
  }

  async #map(info: ConnectionInfo, d: RbdDetails, opts: ConnectOptions): Promise<void> {
    const tool = this.#tool(d.mapper);
    await this.#withKeyring(info, opts.secrets, async (keyringArgs, secrets) => {
      const args = ['map', `${d.pool}/${d.image}`];
      if (d.id) args.push('--id', d.id);
      if (d.monitors) args.push('-m', d.monitors);
      args.push(...keyringArgs);
      if (info.access_mode === 'ro') args.push('--read-only');
      try {
        await this.#exec.run(tool, args, { timeoutMs: this.#timeout, signal: opts.signal, secrets });
      } catch (e) {
        if (e instanceof CommandError && e.notFound) {
          throw new ConnectError(`${tool} is not installed on this node`, { cause: e });
        }
        throw new ConnectError(`mapping RBD image ${d.pool}/${d.image} failed: ${(e as Error).message}`, {
          cause: e,
          transient: true,
        });
      }
    });
  }

  /** Runs fn with keyring arguments; a temporary 0600 keyring is removed afterwards. */
  async #withKeyring(
    info: ConnectionInfo,
    secrets: Record<string, string> | undefined,
    fn: (args: string[], secretValues: string[]) => Promise<void>,
  ): Promise<void> {
    const keyring = secrets?.keyring;
    const key = secrets?.key;
    if (!keyring && !key) {
      if (this.#opts.keyringPath) return fn(['--keyring', this.#opts.keyringPath], []);
      if (info.auth_enabled) {
        this.#log.debug('no keyring configured; relying on the host ceph configuration');
      }
      return fn([], []);
    }
    const user = typeof info.auth_username === 'string' && info.auth_username ? info.auth_username : 'admin';
    const text = keyring ?? `[client.${user}]\n\tkey = ${key}\n`;
    const dir = await mkdtemp(path.join(this.#opts.tmpDir ?? os.tmpdir(), 'cinder-csi-rbd-'));
    const file = path.join(dir, 'keyring');
    try {
      await writeFile(file, text, { mode: 0o600, flag: 'wx' });
      await fn(
        ['--keyring', file],
        [keyring, key].filter((s): s is string => !!s),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Device of a mapped image: /dev/rbd/<pool>/<image> link (krbd udev rule), else showmapped. */
  async #findMapped(d: RbdDetails, signal?: AbortSignal): Promise<string | undefined> {
    if (d.mapper === 'krbd') {
      const link = this.#paths.dev(`rbd/${d.pool}/${d.image}`);
      try {
        const target = await readlink(link);
        const dev = path.isAbsolute(target)
          ? target
          : this.#paths.toHost(path.resolve(path.dirname(link), target));
        if (await exists(this.#paths.dev(dev))) return dev;
      } catch {
        /* no udev link: ask the tool */
      }
    }
    const rows = await this.#showmapped(d.mapper, signal);
    return rows.find((r) => r.pool === d.pool && r.name === d.image && !r.snap)?.device || undefined;
  }

  async #showmapped(mapper: 'krbd' | 'nbd', signal?: AbortSignal): Promise<MappedImage[]> {
    const tool = this.#tool(mapper);
    const args = mapper === 'nbd' ? ['list-mapped', '--format', 'json'] : ['showmapped', '--format', 'json'];
    const r = await this.#exec.run(tool, args, { timeoutMs: 30_000, signal });
    return parseShowmapped(r.stdout);
  }

  async disconnect(dev: ConnectedDevice, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const d = detailsOf(dev);
    const device = await this.#findMapped(d, opts.signal);
    if (!device) {
      this.#log.info({ pool: d.pool, image: d.image }, 'RBD image not mapped; nothing to do');
      return;
    }
    await this.#lock.withLock(
      async () => {
        await this.#exec
          .run('blockdev', ['--flushbufs', device], { timeoutMs: 30_000, signal: opts.signal })
          .catch((e) => this.#log.warn({ device, err: String(e) }, 'flushing buffers failed'));
        try {
          await this.#exec.run(this.#tool(d.mapper), ['unmap', device], {
            timeoutMs: this.#timeout,
            signal: opts.signal,
          });
        } catch (e) {
          // Unmapped concurrently (or by an operator) between lookup and unmap: that is success.
          if (e instanceof CommandError && !e.notFound && !(await this.#findMapped(d, opts.signal))) return;
          throw e;
        }
      },
      { name: 'rbd', signal: opts.signal },
    );
    this.#log.info({ pool: d.pool, image: d.image, device }, 'RBD volume disconnected');
  }

  /** krbd picks up a new image size by itself (watch/notify); nothing to do. */
  async rescan(): Promise<void> {}

  async isConnected(dev: ConnectedDevice): Promise<boolean> {
    return (await this.#findMapped(detailsOf(dev))) !== undefined;
  }
}
