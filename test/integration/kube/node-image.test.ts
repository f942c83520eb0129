/**
 * The project's container image on the lab's real node: the image of this source tree
 * (project-image.ts: `test/image/build.sh --cached`, built once and shared with the image test and
 * the kubelet suite's pod variant) in the node's containerd, and the kubelet runs a pod of it (the
 * driver's entrypoint with `--version`, as the image's non-root user). Building takes minutes, so
 * like test/unit/deploy/image.test.ts it runs in CI (CI=true) or with CINDER_CSI_IMAGE_TEST=1, and
 * needs root. CINDER_CSI_NODE_IMAGE=<buildah image> uses an image already built instead.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestWork } from '../../support/test-work.ts';
import { ignore404, type KubeLab, kubeLab, runPrefix } from './kube-lab.ts';
import { ensureKubeNode, type KubeNodeEnv, REPO } from './kube-node.ts';
import { createPodNamespace, removePod, runPodToCompletion } from './pod-run.ts';
import { imageTestSkipReason, projectImageOnNode } from './project-image.ts';

const RUN = runPrefix('nimg');
let lab: KubeLab | undefined;
let node: KubeNodeEnv | undefined;

const skip = imageTestSkipReason();
const work = new TestWork();

describe('the project image as a pod on the lab node', { skip }, () => {
  before(async () => {
    lab = await kubeLab();
    if (lab.reason) throw new Error(lab.reason);
    node = await ensureKubeNode(lab.core!);
  });
  after(async () => {
    await work.settled(); // a test that timed out may still be creating the namespace
    if (lab?.core) await ignore404(lab.core.deleteNamespace({ name: RUN }));
    lab?.close();
  });

  // building the image (and its base, the first time) takes minutes, more on a busy machine: beyond
  // the runner's per-test default of 15 min
  test(
    'the image of this tree in the node, a pod runs `cinder-csi --version`',
    {
      timeout: 45 * 60_000,
    },
    (t) =>
      work.run(t, async (signal) => {
        const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string })
          .version;
        const core = lab!.core!;
        const env = node!;
        const image = await projectImageOnNode(env, (m) => t.diagnostic(m), signal);
        await createPodNamespace(core, RUN, signal);
        const ran = await runPodToCompletion(core, env, {
          signal,
          namespace: RUN,
          name: 'version',
          automountServiceAccountToken: false,
          container: { name: 'driver', image, args: ['--version'] },
        });
        t.diagnostic(`pod created -> Succeeded in ${ran.ms} ms`);
        assert.equal(
          ran.pod.status?.phase,
          'Succeeded',
          JSON.stringify(ran.pod.status?.containerStatuses?.[0]?.state),
        );
        assert.match(ran.log(), new RegExp(`stdout F cinder-csi ${version.replace(/\./g, '\\.')}`));
        await removePod(core, env, ran);
      }),
  );
});
