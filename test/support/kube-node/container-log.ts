/**
 * A container's log as the kubelet keeps it, for the tests on the lab's real node: the directory
 * `<pod logs>/<namespace>_<pod>_<uid>/<container>` holds one file per start of the container
 * (`<restart count>.log`: 0.log, then 1.log after a restart) and the files its log rotation set
 * aside (`<n>.log.<time>`; gzipped ones are skipped). Reading only 0.log would show a restarted or
 * rotated container's first run, not what it logs now.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** `<restart count>.log` and its rotated copies `<restart count>.log.<YYYYMMDD-hhmmss>`. */
const LOG_FILE = /^\d+\.log(\.\d{8}-\d{6})?$/;

/**
 * The newest log files of the container in `dir`, oldest first and newest last, as text: at least
 * the last `maxChars` characters when there are that many (whole files; the caller slices), all of
 * them by default. Throws when the directory or a log file in it does not exist (yet).
 */
export function readContainerLog(dir: string, maxChars = Number.POSITIVE_INFINITY): string {
  const files = readdirSync(dir)
    .filter((f) => LOG_FILE.test(f))
    .map((f) => ({ path: join(dir, f), mtime: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  if (files.length === 0) throw new Error(`no container log in ${dir}`);
  const texts: string[] = [];
  let chars = 0;
  for (const f of files) {
    const text = readFileSync(f.path, 'utf8');
    texts.unshift(text);
    chars += text.length;
    if (chars >= maxChars) break;
  }
  return texts.join('');
}
