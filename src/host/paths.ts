/**
 * Every host path the node code reads or writes goes through HostPaths, so one configurable root
 * can point discovery at the host's tree inside a container (`/host`) or at a prepared tree in
 * tests. Device paths returned to callers (e.g. `/dev/sdb`, `/dev/loop3`) are always *host*
 * paths as the kernel names them; use `dev()` to reach them from this process.
 */
import path from 'node:path';

export interface HostPaths {
  /** '/' normally; '/host' in a container with the host root mounted; a temp tree in tests. */
  readonly root: string;
  /** A path under the root (absolute host path in, path usable by this process out). */
  resolve(hostPath: string): string;
  /** `dev('disk/by-path/x')` or `dev('/dev/sdb')` → `<root>/dev/...`. */
  dev(p: string): string;
  /** `sys('class/iscsi_session')` → `<root>/sys/class/iscsi_session`. */
  sys(p: string): string;
  /** `etcIscsi('initiatorname.iscsi')` → `<root>/etc/iscsi/initiatorname.iscsi`. */
  etcIscsi(p: string): string;
  /** `run('cinder-csi/locks')` → `<root>/run/cinder-csi/locks`. */
  run(p: string): string;
  /** Strips the root again: `<root>/dev/sdb` → `/dev/sdb`. Paths outside the root are returned unchanged. */
  toHost(p: string): string;
}

function under(root: string, prefix: string, p: string): string {
  let rel = p;
  if (rel.startsWith(`${prefix}/`)) rel = rel.slice(prefix.length + 1);
  else if (rel === prefix) rel = '';
  else if (rel.startsWith('/')) rel = rel.slice(1);
  return path.join(root, prefix, rel);
}

export function hostPaths(root = '/'): HostPaths {
  const r = path.resolve(root);
  return {
    root: r,
    resolve: (p) => path.join(r, p),
    dev: (p) => under(r, '/dev', p),
    sys: (p) => under(r, '/sys', p),
    etcIscsi: (p) => under(r, '/etc/iscsi', p),
    run: (p) => under(r, '/run', p),
    toHost: (p) => {
      if (r === '/') return p;
      if (p === r) return '/';
      return p.startsWith(`${r}/`) ? p.slice(r.length) : p;
    },
  };
}
