/**
 * iscsiadm double (open-iscsi's state model and exit codes), for a machine without a kernel
 * iSCSI initiator. Supported: -m node (--op new/update/delete, --login, --logout),
 * -m session (list, -r SID --rescan). Login performs a *real* iSCSI login with CHAP against the
 * lab's tgtd through libiscsi (iscsi-readcapacity16, credentials in its environment, never on a
 * command line), then attaches the target's LUNs (the tgt backend's sparse files) as loop devices.
 */
import { die, main, real, record, withStateLock } from './common.ts';
import {
  createSessionTree,
  load,
  lunsOf,
  type NodeRecord,
  removeSessionTree,
  type Session,
  save,
  scanSession,
} from './iscsi-state.ts';

const ERR = { GENERIC: 1, LOGIN: 19, INVALID: 7, SESS_EXISTS: 15, NO_OBJS: 21, AUTH: 24 } as const;
const SECRET_SETTINGS = /\.(username|password|username_in|password_in)$/;

function maskArgv(argv: string[]): string[] {
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    if ((out[i] === '-n' || out[i] === '--name') && SECRET_SETTINGS.test(out[i + 1] ?? '')) {
      const v = out.indexOf('-v', i) >= 0 ? out.indexOf('-v', i) : out.indexOf('--value', i);
      if (v >= 0 && v + 1 < out.length) out[v + 1] = '***';
    }
  }
  return out;
}

interface Args {
  mode?: string;
  iqn?: string;
  portal?: string;
  op?: string;
  name?: string;
  value?: string;
  iface?: string;
  login: boolean;
  logout: boolean;
  rescan: boolean;
  sid?: number;
}

function parse(argv: string[]): Args {
  const a: Args = { login: false, logout: false, rescan: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i] ?? die(ERR.INVALID, `iscsiadm: option ${k} needs a value`);
    switch (k) {
      case '-m':
      case '--mode':
        a.mode = v();
        break;
      case '-T':
      case '--targetname':
        a.iqn = v();
        break;
      case '-p':
      case '--portal':
        a.portal = v();
        break;
      case '-o':
      case '--op':
        a.op = v();
        break;
      case '-n':
      case '--name':
        a.name = v();
        break;
      case '-v':
      case '--value':
        a.value = v();
        break;
      case '-I':
      case '--interface':
        a.iface = v();
        break;
      case '-l':
      case '--login':
        a.login = true;
        break;
      case '-u':
      case '--logout':
        a.logout = true;
        break;
      case '-R':
      case '--rescan':
        a.rescan = true;
        break;
      case '-r':
      case '--sid':
        a.sid = Number(v());
        break;
      default:
        die(ERR.INVALID, `iscsiadm: unrecognized option '${k}'`);
    }
  }
  return a;
}

const normPortal = (p: string) => (p.includes(':') ? p : `${p}:3260`);
const sessLine = (s: Session) => `tcp: [${s.sid}] ${s.portal},1 ${s.iqn} (non-flash)`;
const recDesc = (n: { iqn: string; portal: string }) =>
  `[iface: default, target: ${n.iqn}, portal: ${n.portal.replace(':', ',')}]`;

function nodeMode(a: Args): void {
  if (!a.iqn || !a.portal) die(ERR.INVALID, 'iscsiadm: node mode needs -T and -p in this double');
  const portal = normPortal(a.portal);
  const st = load();
  const key = (n: NodeRecord) => n.iqn === a.iqn && n.portal === portal;
  const node = st.nodes.find(key);
  const session = st.sessions.find((s) => s.iqn === a.iqn && s.portal === portal);

  if (a.op === 'new') {
    if (!node)
      st.nodes.push({
        iqn: a.iqn,
        portal,
        iface: a.iface ?? 'default',
        settings: { 'node.startup': 'automatic' },
      });
    save(st);
    process.stdout.write(
      `New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=default] ${portal},-1 ${a.iqn}] added\n`,
    );
    return;
  }
  if (!node) die(ERR.NO_OBJS, 'iscsiadm: No records found');
  if (a.op === 'update') {
    if (!a.name || a.value === undefined) die(ERR.INVALID, 'iscsiadm: update needs -n and -v');
    node.settings[a.name] = a.value;
    save(st);
    return;
  }
  if (a.op === 'delete') {
    if (session) {
      die(
        ERR.SESS_EXISTS,
        `iscsiadm: This command will remove the record ${recDesc(node)}, but a session is using it.`,
      );
    }
    st.nodes = st.nodes.filter((n) => !key(n));
    save(st);
    return;
  }
  if (a.login) {
    if (session) die(ERR.SESS_EXISTS, 'iscsiadm: default: 1 session requested, but 1 already present.');
    const target = lunsOf(a.iqn);
    if (!target) die(ERR.LOGIN, `iscsiadm: Could not login to ${recDesc(node)}.\niscsiadm: target not found`);
    process.stdout.write(`Logging in to ${recDesc(node)}\n`);
    // Real login to tgtd with the node's CHAP settings (env, not argv).
    const env: Record<string, string> = {};
    if ((node.settings['node.session.auth.authmethod'] ?? '').toUpperCase() === 'CHAP') {
      env.LIBISCSI_CHAP_USERNAME = node.settings['node.session.auth.username'] ?? '';
      env.LIBISCSI_CHAP_PASSWORD = node.settings['node.session.auth.password'] ?? '';
    }
    const r = real(
      'iscsi-readcapacity16',
      ['-i', 'iqn.2004-10.org.cinder-csi:doubles', `iscsi://${portal}/${target.auth.iqn}/${target.auth.lun}`],
      env,
    );
    if (r.status !== 0) {
      const auth = /Authentication failure/i.test(r.stderr);
      process.stderr.write(`iscsiadm: Could not login to ${recDesc(node)}.\n`);
      die(
        auth ? ERR.AUTH : ERR.LOGIN,
        auth
          ? 'iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)'
          : `iscsiadm: initiator reported error (19 - encountered non-retryable iSCSI login failure)`,
      );
    }
    const s: Session = { sid: st.nextSid++, iqn: a.iqn, portal, host: st.nextHost++, luns: [], deleted: [] };
    st.sessions.push(s);
    createSessionTree(s);
    scanSession(s);
    save(st);
    process.stdout.write(`Login to ${recDesc(node)} successful.\n`);
    return;
  }
  if (a.logout) {
    if (!session) die(ERR.NO_OBJS, 'iscsiadm: No matching sessions found');
    process.stdout.write(
      `Logging out of session [sid: ${session.sid}, target: ${a.iqn}, portal: ${portal}]\n`,
    );
    removeSessionTree(session);
    st.sessions = st.sessions.filter((s) => s !== session);
    save(st);
    process.stdout.write(`Logout of ${recDesc(node)} successful.\n`);
    return;
  }
  // Plain `-m node -T -p`: print the record (secrets shown as by open-iscsi: masked).
  for (const [k, v] of Object.entries(node.settings)) {
    process.stdout.write(`${k} = ${SECRET_SETTINGS.test(k) ? '********' : v}\n`);
  }
}

function sessionMode(a: Args): void {
  const st = load();
  if (a.sid !== undefined) {
    const s = st.sessions.find((x) => x.sid === a.sid);
    if (!s) die(ERR.NO_OBJS, `iscsiadm: Could not get session info for sid ${a.sid}`);
    if (a.rescan) {
      process.stdout.write(`Rescanning session [sid: ${s.sid}, target: ${s.iqn}, portal: ${s.portal}]\n`);
      scanSession(s);
      save(st);
      return;
    }
    process.stdout.write(`${sessLine(s)}\n`);
    return;
  }
  if (st.sessions.length === 0) die(ERR.NO_OBJS, 'iscsiadm: No active sessions.');
  for (const s of st.sessions) process.stdout.write(`${sessLine(s)}\n`);
}

main(() => {
  const argv = process.argv.slice(2);
  record('iscsiadm', maskArgv(argv));
  const args = parse(argv);
  withStateLock(() => {
    if (args.mode === 'node') nodeMode(args);
    else if (args.mode === 'session') sessionMode(args);
    else die(ERR.INVALID, `iscsiadm: mode '${args.mode ?? ''}' is not supported by this double`);
  });
});
