/**
 * An in-memory iSCSI host for unit tests of the connector logic: an Executor that answers
 * iscsiadm from a small session table, and emulates the kernel's reaction to sysfs writes
 * (`tee -a .../scan|delete|rescan`) on a prepared tree. The integration tests use the real tool
 * doubles (test/doubles/bin) against the lab instead.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandError, type ExecOptions, type ExecResult, type Executor } from '../../src/host/exec.ts';

export interface Call {
  cmd: string;
  args: string[];
  opts: ExecOptions;
}

export interface FakeLun {
  lun: number;
  name: string;
  /** Appears only after a scan of the host. */
  hidden?: boolean;
}

export interface FakeSession {
  sid: number;
  portal: string;
  iqn: string;
  host: number;
  luns: FakeLun[];
  loggedIn: boolean;
}

export class FakeIscsiHost implements Executor {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'fake-host-'));
  readonly calls: Call[] = [];
  readonly sessions: FakeSession[] = [];
  /** Exit code for the next login, e.g. 24 for a CHAP failure. */
  loginExit = 0;
  /** dm holders to create when all of these devices exist: name → [dm, mapName]. */
  multipath?: { dm: string; name: string; paths: string[] };

  addTarget(s: Omit<FakeSession, 'loggedIn'>, loggedIn = false): FakeSession {
    const full = { ...s, loggedIn };
    this.sessions.push(full);
    if (loggedIn) this.#materialise(full);
    return full;
  }

  p(rel: string): string {
    return path.join(this.root, rel);
  }

  #lunDir(s: FakeSession, lun: number): string {
    return this.p(`sys/class/iscsi_session/session${s.sid}/device/target${s.host}:0:0/${s.host}:0:0:${lun}`);
  }

  #addLun(s: FakeSession, l: FakeLun): void {
    mkdirSync(path.join(this.#lunDir(s, l.lun), 'block', l.name), { recursive: true });
    mkdirSync(this.p(`sys/block/${l.name}/device`), { recursive: true });
    mkdirSync(this.p(`sys/block/${l.name}/holders`), { recursive: true });
    mkdirSync(this.p('dev'), { recursive: true });
    writeFileSync(this.p(`dev/${l.name}`), '');
    l.hidden = false;
    const mp = this.multipath;
    if (mp?.paths.includes(l.name)) {
      mkdirSync(this.p(`sys/block/${l.name}/holders/${mp.dm}`), { recursive: true });
      mkdirSync(this.p(`sys/block/${mp.dm}/dm`), { recursive: true });
      writeFileSync(this.p(`sys/block/${mp.dm}/dm/name`), `${mp.name}\n`);
      writeFileSync(this.p(`dev/${mp.dm}`), '');
    }
  }

  #materialise(s: FakeSession): void {
    mkdirSync(this.p(`sys/class/iscsi_session/session${s.sid}/device`), { recursive: true });
    writeFileSync(this.p(`sys/class/iscsi_session/session${s.sid}/targetname`), `${s.iqn}\n`);
    mkdirSync(this.p(`sys/class/scsi_host/host${s.host}`), { recursive: true });
    mkdirSync(this.p(`sys/class/iscsi_host/host${s.host}/device/session${s.sid}`), { recursive: true });
    for (const l of s.luns) if (!l.hidden) this.#addLun(s, l);
  }

  #removeLun(name: string): void {
    for (const s of this.sessions) {
      const l = s.luns.find((x) => x.name === name);
      if (!l) continue;
      rmSync(this.#lunDir(s, l.lun), { recursive: true, force: true });
      rmSync(this.p(`sys/block/${name}`), { recursive: true, force: true });
      rmSync(this.p(`dev/${name}`), { force: true });
      s.luns = s.luns.filter((x) => x !== l);
    }
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Calls rendered as command lines (for sequence assertions). */
  lines(): string[] {
    return this.calls.map((c) => [c.cmd, ...c.args].join(' '));
  }

  async run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ cmd, args, opts });
    const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '', durationMs: 1 });
    const fail = (code: number, stderr = ''): never => {
      if (opts.okCodes?.includes(code)) throw Object.assign(new Error('ok-code'), { okCode: code });
      throw new CommandError({ cmd, args, code, stderr });
    };
    try {
      if (cmd === 'iscsiadm') return this.#iscsiadm(args, ok, fail);
      if (cmd === 'tee') return this.#tee(args[1] as string, opts.input ?? '', ok, fail);
      if (cmd === 'blockdev' || cmd === 'multipath' || cmd === 'multipathd') {
        if (cmd === 'multipath' && this.multipath)
          rmSync(this.p(`sys/block/${this.multipath.dm}`), { recursive: true });
        return ok();
      }
      return fail(127, `${cmd}: not faked`);
    } catch (e) {
      const code = (e as { okCode?: number }).okCode;
      if (code !== undefined) return { code, stdout: '', stderr: '', durationMs: 1 };
      throw e;
    }
  }

  #iscsiadm(
    args: string[],
    ok: (s?: string) => ExecResult,
    fail: (c: number, s?: string) => never,
  ): ExecResult {
    const iqn = args[args.indexOf('-T') + 1];
    const portal = args[args.indexOf('-p') + 1];
    const s = this.sessions.find((x) => x.iqn === iqn && x.portal === portal);
    if (args[1] === 'session') {
      if (args.includes('--rescan')) return ok();
      const live = this.sessions.filter((x) => x.loggedIn);
      if (live.length === 0) return fail(21, 'iscsiadm: No active sessions.');
      return ok(live.map((x) => `tcp: [${x.sid}] ${x.portal},1 ${x.iqn} (non-flash)\n`).join(''));
    }
    if (args.includes('--login')) {
      if (!s) return fail(19);
      if (this.loginExit) return fail(this.loginExit);
      if (s.loggedIn) return fail(15);
      s.loggedIn = true;
      this.#materialise(s);
      return ok();
    }
    if (args.includes('--logout')) {
      if (!s?.loggedIn) return fail(21);
      s.loggedIn = false;
      rmSync(this.p(`sys/class/iscsi_session/session${s.sid}`), { recursive: true, force: true });
      return ok();
    }
    return ok();
  }

  #tee(
    file: string,
    input: string,
    ok: () => ExecResult,
    fail: (c: number, s?: string) => never,
  ): ExecResult {
    const rel = path.relative(this.root, file);
    let m = /^sys\/class\/scsi_host\/host(\d+)\/scan$/.exec(rel);
    if (m) {
      const lun = input.trim().split(' ')[2];
      for (const s of this.sessions.filter((x) => x.host === Number(m?.[1]) && x.loggedIn)) {
        for (const l of s.luns) if (l.hidden && (lun === '-' || Number(lun) === l.lun)) this.#addLun(s, l);
      }
      return ok();
    }
    m = /^sys\/block\/([^/]+)\/device\/(delete|rescan)$/.exec(rel);
    if (m) {
      if (m[2] === 'delete') this.#removeLun(m[1] as string);
      return ok();
    }
    return fail(1, `tee: ${file}: not faked`);
  }
}
