/**
 * The project's container image in the lab node's containerd, built once per source tree: the tests
 * that run it on the node (node-image.test.ts, the pod variant of the kubelet suite) and the image
 * test (test/unit/deploy/image.test.ts) all use `test/image/build.sh --cached`, whose image is
 * tagged `localhost/cinder-csi:src-<hash of its sources>`: the first one in a run builds it (minutes),
 * the next ones find it. It is imported into the node's containerd under the same name, once.
 *
 * Both stores keep it as a cache (like the base image): build.sh keeps the newest few source-tagged
 * images in buildah's storage, and projectImageOnNode() removes from containerd the source-tagged
 * images that buildah's storage no longer has and no container uses.
 * CINDER_CSI_NODE_IMAGE=<buildah image> uses that image instead (imported under its own name).
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { KUBE_NODE, type KubeNodeEnv, nodeCtr, REPO, removeNodeImage } from './kube-node.ts';

const run = promisify(execFile);
const BUILD = join(REPO, 'test/image/build.sh');
const SOURCE_TAGGED = 'localhost/cinder-csi:src-';

/**
 * Why a test that needs the project image skips: building it takes minutes, so (like
 * test/unit/deploy/image.test.ts) it runs in CI (CI=true), with CINDER_CSI_IMAGE_TEST=1 or with an
 * image given (CINDER_CSI_NODE_IMAGE), as root.
 */
export function imageTestSkipReason(): string | undefined {
  const wanted =
    process.env['CINDER_CSI_IMAGE_TEST'] ??
    (process.env['CI'] === 'true' || process.env['CINDER_CSI_NODE_IMAGE'] ? '1' : '0');
  if (wanted !== '1') return 'image build test runs in CI or with CINDER_CSI_IMAGE_TEST=1 (takes minutes)';
  if (process.getuid?.() !== 0) return 'image build test needs root (buildah, the kubelet)';
  return undefined;
}

/**
 * Runs a command, echoing its lines to stderr as `# <line>` (long steps show progress); bounded,
 * and stopped when `signal` aborts (the test timed out).
 */
async function runLive(
  cmd: string,
  args: string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string> {
  signal?.throwIfAborted();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = () => child.kill('SIGTERM');
  const timer = setTimeout(stop, timeoutMs);
  signal?.addEventListener('abort', stop, { once: true });
  let stdout = '';
  let tail = '';
  for (const name of ['stdout', 'stderr'] as const) {
    createInterface({ input: child[name] }).on('line', (l) => {
      if (name === 'stdout') stdout += `${l}\n`;
      tail = `${tail}${l}\n`.slice(-3000);
      process.stderr.write(`# ${l}\n`);
    });
  }
  const status = await new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  clearTimeout(timer);
  signal?.removeEventListener('abort', stop);
  if (status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${status}:\n${tail}`);
  return stdout;
}

/** buildah of test/image/lib.sh (the project's own image storage). */
export const bh = (...args: string[]) =>
  run('bash', ['-c', '. test/image/lib.sh && setup_storage && bh "$@"', 'bh', ...args], {
    cwd: REPO,
    timeout: 120_000,
  });

/** `test/image/build.sh --cached`: builds the image of the working tree or finds it; its tag. */
export async function buildProjectImage(signal?: AbortSignal): Promise<string> {
  const out = await runLive('bash', [BUILD, '--cached'], 40 * 60_000, signal);
  const tag = /^image: tag (\S+)$/m.exec(out)?.[1];
  if (!tag) throw new Error(`build.sh --cached printed no "image: tag": ${out.slice(-1000)}`);
  return tag;
}

async function nodeImages(env: KubeNodeEnv): Promise<string[]> {
  return (await nodeCtr(env, 'images', 'ls', '-q')).split('\n').filter((l) => l !== '');
}

/**
 * The project's image in the node's containerd (built and imported when needed); its name there.
 * Times of the two steps go to `note` (test diagnostics); `signal` stops the build and the import.
 */
export async function projectImageOnNode(
  env: KubeNodeEnv,
  note: (m: string) => void = () => {},
  signal?: AbortSignal,
): Promise<string> {
  let t = Date.now();
  const given = process.env['CINDER_CSI_NODE_IMAGE'];
  const tag = given ?? (await buildProjectImage(signal));
  note(`image ${tag} ready in buildah's storage after ${Date.now() - t} ms`);
  t = Date.now();
  if (!(await nodeImages(env)).includes(tag)) {
    await runLive('bash', [KUBE_NODE, 'import-image', tag], 10 * 60_000, signal);
    note(`image imported into the node's containerd in ${Date.now() - t} ms`);
  } else note("image already in the node's containerd");
  await pruneNodeImages(env, tag);
  return tag;
}

/** Source-tagged images in containerd that buildah's storage dropped and no container uses. */
async function pruneNodeImages(env: KubeNodeEnv, keep: string): Promise<void> {
  const inStorage = new Set(
    (await bh('images', '--format', '{{.Name}}:{{.Tag}}')).stdout.split('\n').filter((l) => l !== ''),
  );
  // a container names its image by tag or by the CRI's `sha256:<config>` reference: compare digests
  const used = new Set(
    (await nodeCtr(env, 'containers', 'ls'))
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[1]),
  );
  const rows = (await nodeCtr(env, 'images', 'ls'))
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/))
    .filter((r) => r.length > 2)
    .map((r) => ({ ref: r[0] as string, digest: r[2] as string }));
  const usedDigests = new Set(rows.filter((r) => used.has(r.ref)).map((r) => r.digest));
  for (const { ref, digest } of rows) {
    if (!ref.startsWith(SOURCE_TAGGED) || ref === keep || inStorage.has(ref) || usedDigests.has(digest))
      continue;
    await removeNodeImage(env, ref);
  }
}
