import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface BuildInfo {
  name: string;
  version: string;
  /** Git commit the code was built from, when known (env CINDER_CSI_GIT_COMMIT, else .git). */
  commit: string | undefined;
}

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

function readGitCommit(): string | undefined {
  try {
    const head = readFileSync(`${projectRoot}.git/HEAD`, 'utf8').trim();
    if (!head.startsWith('ref: ')) return /^[0-9a-f]{40}$/.test(head) ? head : undefined;
    const ref = head.slice(5);
    try {
      return readFileSync(`${projectRoot}.git/${ref}`, 'utf8').trim();
    } catch {
      const packed = readFileSync(`${projectRoot}.git/packed-refs`, 'utf8');
      return packed
        .split('\n')
        .find((l) => l.endsWith(` ${ref}`))
        ?.split(' ')[0];
    }
  } catch {
    return undefined;
  }
}

let cached: BuildInfo | undefined;

/** Name and version from package.json and the git commit; read once. */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const pkg = JSON.parse(readFileSync(`${projectRoot}package.json`, 'utf8')) as {
    name: string;
    version: string;
  };
  cached = {
    name: pkg.name,
    version: pkg.version,
    commit: process.env['CINDER_CSI_GIT_COMMIT'] || readGitCommit(),
  };
  return cached;
}
