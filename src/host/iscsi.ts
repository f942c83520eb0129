/**
 * iSCSI connector following os-brick's ISCSIConnector:
 *  connect: per target (portal, iqn, lun): node record (`--op new`), node.startup=manual, CHAP
 *  (values masked), login (15 = already logged in), find the session, wait for the LUN's block
 *  device by sysfs (by-path as fallback) with bounded rescans; with multipath, log in to every
 *  target and use the dm map holding the paths.
 *  disconnect: flush, `multipath -f`, delete this LUN's SCSI devices, and log out (then delete the
 *  node record) only of sessions with no other LUN left: Cinder backends share targets.
 * All of it under the host-wide lock.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ConnectionInfo } from '../openstack/cinder-types.ts';
import { throwIfAborted } from '../util/abort.ts';
import type { Logger } from '../util/logger.ts';
import type { ConnectedDevice, ConnectOptions, ConnectorBaseDeps, StorageConnector } from './connector.ts';
import { ConnectError, UnsupportedConnectionError } from './connector.ts';
import { CommandError, type Executor } from './exec.ts';
import { type Chap, Iscsiadm, isAuthFailure, normalizePortal, type Target } from './iscsiadm.ts';
import type { HostLock } from './lock.ts';
import { exists, type LunDevice, Sysfs } from './scsi.ts';

export interface IscsiOptions {
  /** Use multipath when the connection info lists several targets (host connector `multipath`). */
  multipath?: boolean;
  /** How long to wait for a LUN's device after login (default 20 s). */
  deviceWaitMs?: number;
  /** Rescans issued while waiting (default 3). */
  rescans?: number;
  /** Poll interval while waiting for a device (default 200 ms). */
  pollMs?: number;
  /** How long to wait for the multipath map to form (default 10 s). */
  multipathWaitMs?: number;
}

/** One path of an iSCSI volume as stored in ConnectedDevice.details.targets. */
export interface IscsiPath extends Target {
  sessionId?: number;
  /** SCSI host number of the session. */
  hostNumber?: number;
  /** Kernel block device of this LUN on this path (sdX; loopN under test). */
  device?: string;
}

export interface IscsiDetails {
  targets: IscsiPath[];
  /** Multipath map (dm-N and its name) when the device is a multipath device. */
  multipath?: { dm: string; name?: string };
}

/** Targets from connection_info: the multi-target lists when present, else the single target. */
export function targetsOf(info: ConnectionInfo): Target[] {
  const { target_portals: ps, target_iqns: qs, target_luns: ls } = info;
  if (Array.isArray(ps) && ps.length > 0) {
    return ps.map((portal, i) => {
      const iqn = qs?.[i] ?? qs?.[0] ?? info.target_iqn;
      const lun = ls?.[i] ?? ls?.[0] ?? info.target_lun;
      if (!iqn || lun === undefined)
        throw new UnsupportedConnectionError('iSCSI connection info lacks iqn/lun');
      return { portal: normalizePortal(portal), iqn, lun: Number(lun) };
    });
  }
  if (!info.target_portal || !info.target_iqn || info.target_lun === undefined || info.target_lun === null) {
    throw new UnsupportedConnectionError(
      'iSCSI connection info lacks target_portal, target_iqn or target_lun',
    );
  }
  return [
    { portal: normalizePortal(info.target_portal), iqn: info.target_iqn, lun: Number(info.target_lun) },
  ];
}

function chapOf(method: unknown, username: unknown, password: unknown): Chap | undefined {
  if (typeof method !== 'string' || method.toUpperCase() !== 'CHAP') return undefined;
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw new UnsupportedConnectionError('CHAP requested without username/password in connection info');
  }
  return { method, username, password };
}

function detailsOf(dev: ConnectedDevice): IscsiDetails {
  const d = dev.details as unknown as IscsiDetails;
  return { targets: Array.isArray(d?.targets) ? d.targets : [], multipath: d?.multipath };
}

function sameTarget(a: { portal: string; iqn: string }, b: { portal: string; iqn: string }): boolean {
  return normalizePortal(a.portal) === normalizePortal(b.portal) && a.iqn === b.iqn;
}

export class IscsiConnector implements StorageConnector {
  readonly protocol = 'iscsi' as const;
  readonly #adm: Iscsiadm;
  readonly #sys: Sysfs;
  readonly #exec: Executor;
  readonly #lock: HostLock;
  readonly #log: Logger;
  readonly #opts: Required<IscsiOptions>;

  constructor(deps: ConnectorBaseDeps & { iscsi?: IscsiOptions }) {
    this.#exec = deps.executor;
    this.#adm = new Iscsiadm(deps.executor);
    this.#sys = new Sysfs(deps.paths, deps.executor);
    this.#lock = deps.lock;
    this.#log = deps.logger.child({ component: 'iscsi' });
    this.#opts = {
      multipath: deps.iscsi?.multipath ?? false,
      deviceWaitMs: deps.iscsi?.deviceWaitMs ?? 20_000,
      rescans: deps.iscsi?.rescans ?? 3,
      pollMs: deps.iscsi?.pollMs ?? 200,
      multipathWaitMs: deps.iscsi?.multipathWaitMs ?? 10_000,
    };
  }

  async connect(info: ConnectionInfo, opts: ConnectOptions): Promise<ConnectedDevice> {
    const targets = targetsOf(info);
    const chap = chapOf(info.auth_method, info.auth_username, info.auth_password);
    const discoveryChap = chapOf(
      info.discovery_auth_method,
      info.discovery_auth_username,
      info.discovery_auth_password,
    );
    const useMultipath = this.#opts.multipath && targets.length > 1;
    return this.#lock.withLock(
      async () => {
        const paths: IscsiPath[] = [];
        const failures: string[] = [];
        for (const t of targets) {
          throwIfAborted(opts.signal);
          try {
            paths.push(await this.#connectPath(t, chap, discoveryChap, opts.signal));
            if (!useMultipath) break; // single path: the first target that works
          } catch (e) {
            if (isAuthFailure(e)) {
              throw new ConnectError(
                `iSCSI login to ${t.iqn} at ${t.portal} failed: CHAP authentication refused`,
                {
                  cause: e,
                },
              );
            }
            failures.push(`${t.portal}: ${e instanceof Error ? e.message : String(e)}`);
            this.#log.warn({ portal: t.portal, iqn: t.iqn, lun: t.lun, err: String(e) }, 'iSCSI path failed');
          }
        }
        if (paths.length === 0) {
          throw new ConnectError(
            `could not connect volume ${opts.volumeId} over iSCSI: ${failures.join('; ')}`,
            {
              transient: true,
            },
          );
        }
        const details: IscsiDetails = { targets: paths };
        let devicePath = `/dev/${paths[0]?.device}`;
        if (useMultipath) {
          const mp = await this.#waitMultipath(paths, opts.signal);
          if (mp) {
            details.multipath = mp;
            devicePath = `/dev/${mp.dm}`;
          } else {
            this.#log.warn({ volumeId: opts.volumeId }, 'no multipath map formed; using a single path');
          }
        }
        this.#log.info(
          { volumeId: opts.volumeId, devicePath, paths: paths.length },
          'iSCSI volume connected',
        );
        return { protocol: 'iscsi', devicePath, details: details as unknown as Record<string, unknown> };
      },
      { signal: opts.signal },
    );
  }

  async #connectPath(
    t: Target,
    chap: Chap | undefined,
    discoveryChap: Chap | undefined,
    signal?: AbortSignal,
  ): Promise<IscsiPath> {
    let session = (await this.#adm.sessions(signal)).find((s) => sameTarget(s, t));
    if (session) {
      const dev = await this.#waitLun(session.sid, t, signal);
      return { ...t, sessionId: session.sid, hostNumber: dev.host, device: dev.name };
    }
    // A new session: on any failure, undo it (and the node record, which holds the CHAP secret)
    // unless another LUN of it appeared meanwhile.
    try {
      await this.#adm.createNode(t, signal);
      await this.#adm.updateNode(t, 'node.startup', 'manual', { signal });
      if (chap) await this.#adm.setChap(t, chap, 'session', signal);
      if (discoveryChap) await this.#adm.setChap(t, discoveryChap, 'discovery', signal);
      await this.#adm.login(t, signal);
      session = (await this.#adm.sessions(signal)).find((s) => sameTarget(s, t));
      if (!session)
        throw new ConnectError(`logged in to ${t.iqn} but no session is listed`, { transient: true });
      const dev = await this.#waitLun(session.sid, t, signal);
      return { ...t, sessionId: session.sid, hostNumber: dev.host, device: dev.name };
    } catch (e) {
      await this.#undoPath(t, session?.sid);
      throw e;
    }
  }

  /** Best-effort cleanup of a failed new path: logout when the session has no LUN, delete the record. */
  async #undoPath(t: Target, sid: number | undefined): Promise<void> {
    try {
      if (sid !== undefined) {
        if ((await this.#sys.sessionLuns(sid)).length > 0) return;
        await this.#adm.logout(t);
      }
      await this.#adm.deleteNode(t);
    } catch (e) {
      this.#log.warn({ iqn: t.iqn, portal: t.portal, err: String(e) }, 'cleanup after a failed login failed');
    }
  }

  /** Waits for the LUN's block device, rescanning a bounded number of times. */
  async #waitLun(sid: number, t: Target, signal?: AbortSignal): Promise<LunDevice> {
    const deadline = Date.now() + this.#opts.deviceWaitMs;
    const rescanEvery = Math.max(
      this.#opts.pollMs,
      Math.floor(this.#opts.deviceWaitMs / (this.#opts.rescans + 1)),
    );
    let nextRescan = Date.now() + rescanEvery;
    let rescans = 0;
    for (;;) {
      throwIfAborted(signal);
      const found = await this.#sys.findLun(sid, t.lun);
      if (found && (await this.#sys.blockExists(found.name))) return found;
      if (!found) {
        const byPath = await this.#sys.byPath(t.portal, t.iqn, t.lun);
        if (byPath && (await exists(this.#sys.paths.dev(byPath)))) {
          const host = await this.#sys.sessionHost(sid);
          return {
            host: host ?? -1,
            channel: 0,
            target: 0,
            lun: t.lun,
            name: byPath.replace(/^\/dev\//, ''),
          };
        }
      }
      if (Date.now() >= deadline) {
        throw new ConnectError(
          `LUN ${t.lun} of ${t.iqn} (session ${sid}) did not appear within ${this.#opts.deviceWaitMs} ms`,
          { transient: true },
        );
      }
      if (Date.now() >= nextRescan && rescans < this.#opts.rescans) {
        rescans++;
        nextRescan = Date.now() + rescanEvery;
        await this.#rescanLun(sid, t.lun, signal);
      }
      await delay(this.#opts.pollMs, undefined, { signal });
    }
  }

  async #rescanLun(sid: number, lun: number, signal?: AbortSignal): Promise<void> {
    const host = await this.#sys.sessionHost(sid);
    this.#log.debug({ sid, lun, host }, 'rescanning iSCSI session');
    try {
      if (host !== undefined) await this.#sys.scanHost(host, lun, {}, signal);
      else await this.#adm.rescanSession(sid, signal);
    } catch (e) {
      this.#log.warn({ sid, lun, err: String(e) }, 'rescan failed');
    }
  }

  async #waitMultipath(
    paths: IscsiPath[],
    signal?: AbortSignal,
  ): Promise<{ dm: string; name?: string } | undefined> {
    const deadline = Date.now() + this.#opts.multipathWaitMs;
    for (;;) {
      for (const p of paths) {
        if (!p.device) continue;
        const dm = (await this.#sys.holders(p.device))[0];
        if (dm) return { dm, name: await this.#sys.dmName(dm) };
      }
      if (Date.now() >= deadline) return undefined;
      await delay(this.#opts.pollMs, undefined, { signal });
    }
  }

  async disconnect(dev: ConnectedDevice, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { targets, multipath } = detailsOf(dev);
    const signal = opts.signal;
    await this.#lock.withLock(
      async () => {
        const sessions = await this.#adm.sessions(signal);
        // Current devices of this volume's LUN on each path (names may differ after a restart).
        const devices: string[] = [];
        for (const t of targets) {
          const s = sessions.find((x) => sameTarget(x, t));
          if (!s) continue;
          const lun = await this.#sys.findLun(s.sid, t.lun);
          if (lun) devices.push(lun.name);
        }
        if (multipath && (await exists(this.#sys.paths.sys(`block/${multipath.dm}`)))) {
          await this.#flush(`/dev/${multipath.dm}`, signal);
          await this.#exec
            .run('multipath', ['-f', multipath.name ?? multipath.dm], { timeoutMs: 30_000, signal })
            .catch((e) => {
              throw new ConnectError(`could not flush multipath map ${multipath.name ?? multipath.dm}`, {
                cause: e,
              });
            });
        }
        for (const name of devices) {
          await this.#flush(`/dev/${name}`, signal);
          await this.#sys.deleteDevice(name, signal);
        }
        await this.#waitRemoved(devices, signal);
        // Log out only of sessions that have no LUN left (shared targets).
        for (const t of targets) {
          const s = sessions.find((x) => sameTarget(x, t));
          if (s) {
            const left = await this.#sys.sessionLuns(s.sid);
            if (left.length > 0) {
              this.#log.info(
                { iqn: t.iqn, portal: t.portal, sid: s.sid, otherLuns: left.map((l) => l.lun) },
                'session still used by other LUNs; staying logged in',
              );
              continue;
            }
            await this.#adm.logout(t, signal);
          }
          await this.#adm.deleteNode(t, signal);
        }
        this.#log.info({ devicePath: dev.devicePath, removed: devices }, 'iSCSI volume disconnected');
      },
      { signal },
    );
  }

  async #flush(devicePath: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#exec.run('blockdev', ['--flushbufs', devicePath], { timeoutMs: 30_000, signal });
    } catch (e) {
      // A device that vanished has nothing to flush; anything else is worth a warning but must not
      // leave the session half torn down.
      if (!(e instanceof CommandError) || e.notFound || e.timedOut) throw e;
      this.#log.warn({ devicePath, err: e.message }, 'flushing buffers failed');
    }
  }

  async #waitRemoved(names: string[], signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.#opts.deviceWaitMs;
    for (;;) {
      const left: string[] = [];
      for (const n of names) if (await exists(this.#sys.paths.sys(`block/${n}`))) left.push(n);
      if (left.length === 0) return;
      if (Date.now() >= deadline) {
        throw new ConnectError(`SCSI devices ${left.join(', ')} were not removed in time`, {
          transient: true,
        });
      }
      await delay(this.#opts.pollMs, undefined, { signal });
    }
  }

  async rescan(dev: ConnectedDevice, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { targets, multipath } = detailsOf(dev);
    await this.#lock.withLock(
      async () => {
        const sessions = await this.#adm.sessions(opts.signal);
        for (const t of targets) {
          const s = sessions.find((x) => sameTarget(x, t));
          const lun = s ? await this.#sys.findLun(s.sid, t.lun) : undefined;
          if (lun) await this.#sys.rescanDevice(lun.name, opts.signal);
        }
        if (multipath) {
          await this.#exec.run('multipathd', ['resize', 'map', multipath.name ?? multipath.dm], {
            timeoutMs: 30_000,
            signal: opts.signal,
          });
        }
      },
      { signal: opts.signal },
    );
  }

  async isConnected(dev: ConnectedDevice): Promise<boolean> {
    const { targets, multipath } = detailsOf(dev);
    if (multipath) return this.#sys.blockExists(multipath.dm);
    const sessions = await this.#adm.sessions();
    for (const t of targets) {
      const s = sessions.find((x) => sameTarget(x, t));
      if (!s) continue;
      const lun = await this.#sys.findLun(s.sid, t.lun);
      if (lun && (await this.#sys.blockExists(lun.name))) return true;
    }
    return false;
  }
}
