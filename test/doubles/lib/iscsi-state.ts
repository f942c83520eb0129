/**
 * iSCSI state of the doubles: node records, sessions and their LUNs, and how a LUN becomes a loop
 * device (the tgt backend's sparse file for the target's IQN, found with `tgtadm ... --op show`).
 *
 * Shared targets: the lab's tgt gives every volume its own target, so a test can declare a
 * *virtual* target in <state>/iscsi/targets.json that bundles real targets as LUNs of one session:
 *   { "iqn.virtual:shared": { "luns": { "1": "iqn.real:volume-a", "2": "iqn.real:volume-b" } } }
 * Logging in to it authenticates against the real target of its lowest LUN.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  addBlock,
  attachLoop,
  detachLoop,
  link,
  readJson,
  real,
  removeBlock,
  stateDir,
  touch,
  under,
  writeJson,
} from './common.ts';
import { syncMaps } from './multipathd.ts';

export interface NodeRecord {
  iqn: string;
  portal: string;
  iface: string;
  /** Node settings; CHAP values included, as in open-iscsi's own node database (file mode 0600). */
  settings: Record<string, string>;
}

export interface SessionLun {
  lun: number;
  /** Backing file of the loop device. */
  file: string;
  loop: string;
  name: string;
}

export interface Session {
  sid: number;
  iqn: string;
  portal: string;
  host: number;
  luns: SessionLun[];
  /** LUNs removed through sysfs `delete`; they come back on a scan. */
  deleted: number[];
}

interface IscsiState {
  nodes: NodeRecord[];
  sessions: Session[];
  nextSid: number;
  nextHost: number;
}

const stateFile = () => path.join(stateDir(), 'iscsi', 'state.json');

export function load(): IscsiState {
  return readJson<IscsiState>(stateFile(), { nodes: [], sessions: [], nextSid: 1, nextHost: 10 });
}

export function save(s: IscsiState): void {
  writeJson(stateFile(), s);
  syncMaps(s.sessions.flatMap((x) => x.luns.map((l) => ({ name: l.name, loop: l.loop, file: l.file }))));
}

/** One real tgt target: its disk LUNs with backing files, and bound account names. */
export interface TgtTarget {
  iqn: string;
  luns: Map<number, string>;
  accounts: string[];
}

export function tgtTargets(): TgtTarget[] {
  const r = real('tgtadm', ['--lld', 'iscsi', '--mode', 'target', '--op', 'show']);
  const out: TgtTarget[] = [];
  let cur: TgtTarget | undefined;
  let lun: number | undefined;
  let inAccounts = false;
  for (const line of r.stdout.split('\n')) {
    const t = /^Target \d+: (\S+)/.exec(line);
    if (t) {
      cur = { iqn: t[1] as string, luns: new Map(), accounts: [] };
      out.push(cur);
      inAccounts = false;
      continue;
    }
    if (!cur) continue;
    const l = /^\s+LUN: (\d+)/.exec(line);
    if (l) lun = Number(l[1]);
    const b = /^\s+Backing store path: (\/\S+)/.exec(line);
    if (b && lun !== undefined && lun > 0) cur.luns.set(lun, b[1] as string);
    if (/^\s+Account information:/.test(line)) {
      inAccounts = true;
      continue;
    }
    if (/^\s+ACL information:/.test(line)) inAccounts = false;
    else if (inAccounts && line.trim()) cur.accounts.push(line.trim());
  }
  return out;
}

/** Virtual (shared) targets declared by a test. */
export function virtualTargets(): Record<string, { luns: Record<string, string> }> {
  return readJson(path.join(stateDir(), 'iscsi', 'targets.json'), {});
}

/** LUN number → backing file, for a real or virtual target; `auth` is the real IQN to log in to. */
export function lunsOf(
  iqn: string,
): { luns: Map<number, string>; auth: { iqn: string; lun: number } } | undefined {
  const targets = tgtTargets();
  const v = virtualTargets()[iqn];
  if (v) {
    const luns = new Map<number, string>();
    let auth: { iqn: string; lun: number } | undefined;
    for (const [n, realIqn] of Object.entries(v.luns).sort((a, b) => Number(a[0]) - Number(b[0]))) {
      const t = targets.find((x) => x.iqn === realIqn);
      const file = t?.luns.get(1) ?? [...(t?.luns.values() ?? [])][0];
      if (!file) continue;
      luns.set(Number(n), file);
      auth ??= { iqn: realIqn, lun: 1 };
    }
    return auth ? { luns, auth } : undefined;
  }
  const t = targets.find((x) => x.iqn === iqn);
  if (!t || t.luns.size === 0) return undefined;
  return { luns: t.luns, auth: { iqn, lun: [...t.luns.keys()][0] as number } };
}

// ---- sysfs tree of a session --------------------------------------------------------------

function sessionSys(s: Session): string {
  return under(`/sys/class/iscsi_session/session${s.sid}`);
}

export function byPathLink(s: Pick<Session, 'portal' | 'iqn'>, lun: number): string {
  return under(`/dev/disk/by-path/ip-${s.portal}-iscsi-${s.iqn}-lun-${lun}`);
}

export function createSessionTree(s: Session): void {
  touch(path.join(sessionSys(s), 'targetname'), `${s.iqn}\n`);
  touch(under(`/sys/class/scsi_host/host${s.host}/scan`));
  mkdirSync(under(`/sys/class/iscsi_host/host${s.host}/device/session${s.sid}`), { recursive: true });
  for (const l of s.luns) addLunTree(s, l);
}

function lunDir(s: Session, lun: number): string {
  return path.join(sessionSys(s), 'device', `target${s.host}:0:0`, `${s.host}:0:0:${lun}`);
}

function addLunTree(s: Session, l: SessionLun): void {
  touch(path.join(lunDir(s, l.lun), 'block', l.name, 'dev'), '');
  addBlock(l.name, l.loop, true);
  link(byPathLink(s, l.lun), l.loop);
}

/** Attaches a LUN's backing file as a loop device and exposes it in the tree. */
export function addLun(s: Session, lun: number, file: string): SessionLun {
  const loop = attachLoop(file);
  const l: SessionLun = { lun, file, loop, name: path.basename(loop) };
  s.luns.push(l);
  s.deleted = s.deleted.filter((d) => d !== lun);
  addLunTree(s, l);
  return l;
}

/** Kernel-side removal of a LUN's SCSI device: tree gone, loop detached. */
export function removeLun(s: Session, lun: number, remember: boolean): void {
  const l = s.luns.find((x) => x.lun === lun);
  if (!l) return;
  rmSync(lunDir(s, lun), { recursive: true, force: true });
  removeBlock(l.name);
  rmSync(byPathLink(s, lun), { force: true });
  detachLoop(l.loop);
  s.luns = s.luns.filter((x) => x.lun !== lun);
  if (remember && !s.deleted.includes(lun)) s.deleted.push(lun);
}

export function removeSessionTree(s: Session): void {
  for (const l of [...s.luns]) removeLun(s, l.lun, false);
  rmSync(sessionSys(s), { recursive: true, force: true });
  rmSync(under(`/sys/class/scsi_host/host${s.host}`), { recursive: true, force: true });
  rmSync(under(`/sys/class/iscsi_host/host${s.host}`), { recursive: true, force: true });
}

/** Scan: LUNs of the target not yet present (and matching `only`, if given) are added. */
export function scanSession(s: Session, only?: number): void {
  const t = lunsOf(s.iqn);
  if (!t) return;
  for (const [lun, file] of t.luns) {
    if (only !== undefined && lun !== only) continue;
    if (s.luns.some((x) => x.lun === lun)) continue;
    addLun(s, lun, file);
  }
}
