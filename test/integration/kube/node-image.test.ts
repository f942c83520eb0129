/**
 * The project's container image on the lab's real node: test/image/build.sh builds it (buildah,
 * kept under a tag of this run), `kube-node.sh import-image` moves it into the node's containerd,
 * and the kubelet runs a pod of it (the driver's entrypoint with `--version`). Building takes
 * minutes, so like test/unit/deploy/image.test.ts it runs in CI (CI=true) or with
 * CINDER_CSI_IMAGE_TEST=1, and needs root. CINDER_CSI_NODE_IMAGE=<buildah image> uses an image
 * already built (`test/image/build.sh --keep --tag ...`) instead of building one; it is imported
 * into the node under this run's name and left in buildah's storage.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gone } from '../../support/kube-node/node-lab.ts';
import { eventually, ignore404, type KubeLab, kubeLab, runPrefix } from './kube-lab.ts';
import {
  ensureKubeNode,
  KUBE_NODE,
  type KubeNodeEnv,
  podContainers,
  REPO,
  removeNodeImage,
} from './kube-node.ts';

const run = promisify(execFile);
const RUN = runPrefix('nimg');
const TAG = `localhost/cinder-csi:${RUN}`;
/** An image someone else built and keeps (not removed from buildah's storage). */
const GIVEN = process.env['CINDER_CSI_NODE_IMAGE'];
let lab: KubeLab | undefined;
let node: KubeNodeEnv | undefined;

function skipReason(): string | undefined {
  const wanted = process.env['CINDER_CSI_IMAGE_TEST'] ?? (process.env['CI'] === 'true' ? '1' : '0');
  if (wanted !== '1') return 'image build test runs in CI or with CINDER_CSI_IMAGE_TEST=1 (takes minutes)';
  if (process.getuid?.() !== 0) return 'image build test needs root (buildah, the kubelet)';
  return undefined;
}
const skip = skipReason();

/** buildah of test/image/lib.sh (the project's own image storage). */
const bh = (...args: string[]) =>
  run('bash', ['-c', '. test/image/lib.sh && setup_storage && bh "$@"', 'bh', ...args], {
    cwd: REPO,
    timeout: 120_000,
  });

describe('the project image as a pod on the lab node', { skip }, () => {
  before(async () => {
    lab = await kubeLab();
    if (lab.reason) throw new Error(lab.reason);
    node = await ensureKubeNode(lab.core!);
  });
  after(async () => {
    if (lab?.core) await ignore404(lab.core.deleteNamespace({ name: RUN }));
    lab?.close();
    if (node) await removeNodeImage(node, TAG);
    if (!GIVEN) await bh('rmi', '--force', TAG).catch(() => undefined);
  });

  test('build.sh --keep, kube-node.sh import-image, a pod runs `cinder-csi --version`', async (t) => {
    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string })
      .version;
    if (!GIVEN) {
      // build.sh's clean-up removes every other image and working container of its storage: run
      // it only where no other build runs (CI runs test files one at a time)
      const built = Date.now();
      await run('bash', [join(REPO, 'test/image/build.sh'), '--keep', '--tag', TAG], {
        timeout: 40 * 60_000,
        maxBuffer: 64 << 20,
      });
      t.diagnostic(`image built in ${Date.now() - built} ms`);
    }
    const imported = Date.now();
    await run('bash', [KUBE_NODE, 'import-image', GIVEN ?? TAG, TAG], { timeout: 10 * 60_000 });
    t.diagnostic(`image imported in ${Date.now() - imported} ms`);
    // the image only needs to be in the node's containerd now
    if (!GIVEN) await bh('rmi', '--force', TAG);

    const core = lab!.core!;
    const env = node!;
    await core.createNamespace({ body: { metadata: { name: RUN } } });
    await eventually(
      'the default ServiceAccount',
      () =>
        core.readNamespacedServiceAccount({ namespace: RUN, name: 'default' }).then(
          () => true,
          () => false,
        ),
      60_000,
    );
    const started = Date.now();
    const created = await core.createNamespacedPod({
      namespace: RUN,
      body: {
        metadata: { name: 'version' },
        spec: {
          nodeSelector: { 'kubernetes.io/hostname': env.name },
          hostNetwork: true,
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 1,
          automountServiceAccountToken: false,
          containers: [{ name: 'driver', image: TAG, imagePullPolicy: 'Never', args: ['--version'] }],
        },
      },
    });
    const uid = created.metadata!.uid!;
    const read = () => core.readNamespacedPod({ namespace: RUN, name: 'version' });
    await eventually(
      'the pod to complete',
      async () => ['Succeeded', 'Failed'].includes((await read()).status?.phase ?? ''),
      180_000,
    );
    t.diagnostic(`pod created -> Succeeded in ${Date.now() - started} ms`);
    const pod = await read();
    assert.equal(pod.status?.phase, 'Succeeded', JSON.stringify(pod.status?.containerStatuses?.[0]?.state));
    const log = readFileSync(join(env.podLogs, `${RUN}_version_${uid}`, 'driver', '0.log'), 'utf8');
    assert.match(log, new RegExp(`stdout F cinder-csi ${version.replace(/\./g, '\\.')}`));

    await core.deleteNamespacedPod({ namespace: RUN, name: 'version' });
    await eventually('the pod to be gone', () => gone(read));
    await eventually(
      'its containers to be removed',
      async () => (await podContainers(env, uid)).length === 0,
      180_000,
    );
  });
});
