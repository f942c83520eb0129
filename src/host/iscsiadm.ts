/**
 * iscsiadm invocations and output parsing (open-iscsi). Exit codes from iscsiadm(8):
 * 15 = session already exists (already logged in), 21 = no records/sessions found,
 * 24 = login failed due to authorization failure.
 */
import { CommandError, type ExecOptions, type Executor } from './exec.ts';

export const ISCSI_ERR = {
  SESS_EXISTS: 15,
  NO_OBJS_FOUND: 21,
  LOGIN_AUTH_FAILED: 24,
} as const;

export interface IscsiSession {
  transport: string;
  sid: number;
  /** host:port as iscsiadm prints it (IPv6 in brackets). */
  portal: string;
  tpgt: number;
  iqn: string;
}

/**
 * Parses `iscsiadm -m session` lines:
 * `tcp: [3] 127.0.0.1:3260,1 iqn.2010-10.org.openstack:volume-1 (non-flash)`.
 * Unrecognised lines are skipped.
 */
export function parseSessions(stdout: string): IscsiSession[] {
  const out: IscsiSession[] = [];
  const re = /^(\S+):\s+\[(\d+)\]\s+(\S+),(\d+)\s+(\S+)/;
  for (const line of stdout.split('\n')) {
    const m = re.exec(line.trim());
    if (!m) continue;
    out.push({
      transport: m[1] as string,
      sid: Number(m[2]),
      portal: m[3] as string,
      tpgt: Number(m[4]),
      iqn: m[5] as string,
    });
  }
  return out;
}

/** Normalises a portal for comparison: lower-case, default port 3260 added. */
export function normalizePortal(portal: string): string {
  const p = portal.trim().toLowerCase();
  if (p.startsWith('[')) return p.includes(']:') ? p : `${p}:3260`;
  const colons = (p.match(/:/g) ?? []).length;
  if (colons === 0) return `${p}:3260`;
  if (colons > 1) return `[${p}]:3260`; // bare IPv6 address
  return p;
}

export interface Target {
  portal: string;
  iqn: string;
  lun: number;
}

export interface Chap {
  method: string;
  username: string;
  password: string;
}

/** Thin typed wrapper around the iscsiadm command line. */
export class Iscsiadm {
  readonly #exec: Executor;
  readonly #timeoutMs: number;

  constructor(exec: Executor, timeoutMs = 30_000) {
    this.#exec = exec;
    this.#timeoutMs = timeoutMs;
  }

  #run(args: string[], opts: ExecOptions = {}) {
    return this.#exec.run('iscsiadm', args, { timeoutMs: this.#timeoutMs, ...opts });
  }

  #node(t: Pick<Target, 'portal' | 'iqn'>): string[] {
    return ['-m', 'node', '-T', t.iqn, '-p', t.portal];
  }

  async sessions(signal?: AbortSignal): Promise<IscsiSession[]> {
    const r = await this.#run(['-m', 'session'], { okCodes: [0, ISCSI_ERR.NO_OBJS_FOUND], signal });
    return r.code === 0 ? parseSessions(r.stdout) : [];
  }

  async createNode(t: Target, signal?: AbortSignal): Promise<void> {
    await this.#run([...this.#node(t), '--interface', 'default', '--op', 'new'], { signal });
  }

  async updateNode(
    t: Target,
    name: string,
    value: string,
    opts: { secret?: boolean; signal?: AbortSignal } = {},
  ) {
    await this.#run([...this.#node(t), '--op', 'update', '-n', name, '-v', value], {
      signal: opts.signal,
      secrets: opts.secret ? [value] : undefined,
    });
  }

  /** Sets CHAP (session or discovery) on the node record; values are masked in logs. */
  async setChap(t: Target, chap: Chap, kind: 'session' | 'discovery', signal?: AbortSignal): Promise<void> {
    const prefix = kind === 'session' ? 'node.session.auth' : 'discovery.sendtargets.auth';
    await this.updateNode(t, `${prefix}.authmethod`, chap.method, { signal });
    await this.updateNode(t, `${prefix}.username`, chap.username, { secret: true, signal });
    await this.updateNode(t, `${prefix}.password`, chap.password, { secret: true, signal });
  }

  /** Logs in; "already logged in" (15) is success. */
  async login(t: Target, signal?: AbortSignal): Promise<void> {
    await this.#run([...this.#node(t), '--login'], { okCodes: [0, ISCSI_ERR.SESS_EXISTS], signal });
  }

  /** Logs out; no such session (21) is success. */
  async logout(t: Pick<Target, 'portal' | 'iqn'>, signal?: AbortSignal): Promise<void> {
    await this.#run([...this.#node(t), '--logout'], { okCodes: [0, ISCSI_ERR.NO_OBJS_FOUND], signal });
  }

  /** Deletes the node record; no such record (21) is success. */
  async deleteNode(t: Pick<Target, 'portal' | 'iqn'>, signal?: AbortSignal): Promise<void> {
    await this.#run([...this.#node(t), '--op', 'delete'], { okCodes: [0, ISCSI_ERR.NO_OBJS_FOUND], signal });
  }

  async rescanSession(sid: number, signal?: AbortSignal): Promise<void> {
    await this.#run(['-m', 'session', '-r', String(sid), '--rescan'], { signal });
  }
}

export function isAuthFailure(e: unknown): boolean {
  return e instanceof CommandError && e.code === ISCSI_ERR.LOGIN_AUTH_FAILED;
}
