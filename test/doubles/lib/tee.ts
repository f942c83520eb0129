/**
 * tee double: writes into the test host root's sysfs control files are turned into what the
 * kernel would do (the connectors write them with `tee -a FILE`, like os-brick):
 *   /sys/class/scsi_host/hostH/scan   "C T L"  → scan the session on host H (LUN L or all with '-')
 *   /sys/block/NAME/device/delete     "1"      → remove that SCSI device (loop detached)
 *   /sys/block/NAME/device/rescan     "1"      → re-read the capacity (losetup -c)
 * Anything else is passed to the real tee.
 */

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { die, main, real, record, SYSTEM_PATH, withStateLock } from './common.ts';
import { load, removeLun, save, scanSession } from './iscsi-state.ts';

main(() => {
  const argv = process.argv.slice(2);
  const root = process.env.CSI_HOST_ROOT;
  const file = argv.filter((a) => !a.startsWith('-'))[0];
  const sysRoot = root ? path.join(root, 'sys') : undefined;
  if (!sysRoot || !file || !path.resolve(file).startsWith(`${sysRoot}/`)) {
    const r = spawnSync('tee', argv, { stdio: 'inherit', env: { ...process.env, PATH: SYSTEM_PATH } });
    process.exitCode = r.status ?? 1;
    return;
  }
  const input = readFileSync(0, 'utf8');
  const rel = path.relative(sysRoot, path.resolve(file));
  record('tee', [...argv, `<<${input.trim()}`]);
  process.stdout.write(input);
  withStateLock(() => {
    const st = load();
    let m = /^class\/scsi_host\/host(\d+)\/scan$/.exec(rel);
    if (m) {
      const s = st.sessions.find((x) => x.host === Number(m?.[1]));
      if (!s) die(1, `tee: ${file}: No such file or directory`);
      const lun = input.trim().split(/\s+/)[2];
      scanSession(s, lun === undefined || lun === '-' ? undefined : Number(lun));
      save(st);
      return;
    }
    m = /^block\/([^/]+)\/device\/(delete|rescan)$/.exec(rel);
    if (m) {
      const name = m[1] as string;
      const s = st.sessions.find((x) => x.luns.some((l) => l.name === name));
      const l = s?.luns.find((x) => x.name === name);
      if (!s || !l) die(1, `tee: ${file}: No such file or directory`);
      if (m[2] === 'delete') {
        removeLun(s, l.lun, true);
        save(st);
      } else {
        const r = real('losetup', ['-c', l.loop]);
        if (r.status !== 0) die(1, `tee: ${file}: ${r.stderr.trim()}`);
      }
      return;
    }
    die(1, `tee: ${file}: write not supported by the sysfs double`);
  });
});
