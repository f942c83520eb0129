/**
 * Every object the chart renders (default + realistic value sets) and every object in deploy/
 * validated strictly (unknown fields, missing required fields and wrong types all fail) against
 * the Kubernetes 1.30 and 1.34 API types, offline (see k8s-validate.ts for the packages used).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ciValueFiles, deployObjects, helmMissing, type Json, parseObjects, renderChart } from './helpers.ts';
import { formatErrors, KUBE_VERSIONS, type KubeObject, validateObjects } from './k8s-validate.ts';

let rendered: KubeObject[] | undefined;
/** All value sets rendered once (helm is the slow part), shared by both versions' tests. */
function chartObjects(): KubeObject[] {
  if (rendered) return rendered;
  const sets: { name: string; values?: string[]; set?: string[] }[] = [
    { name: 'defaults+existingSecret', set: ['cloudConfig.existingSecret=cloud-config'] },
    ...ciValueFiles().map((f) => ({ name: f.replace(/^.*\//, ''), values: [f] })),
  ];
  rendered = sets.flatMap((s) =>
    parseObjects(renderChart({ values: s.values, set: s.set, namespace: 'kube-system' }), `chart[${s.name}]`),
  );
  return rendered;
}

describe('strict Kubernetes API validation', () => {
  for (const version of KUBE_VERSIONS) {
    test(`chart renders are valid Kubernetes ${version} objects`, { skip: helmMissing }, () => {
      const objects = chartObjects();
      assert.ok(objects.length > 100, `rendered ${objects.length} objects`);
      const errors = validateObjects(objects, version);
      assert.equal(errors.length, 0, formatErrors(errors));
    });

    test(`deploy/ manifests and examples are valid Kubernetes ${version} objects`, () => {
      const objects = deployObjects();
      assert.ok(objects.length >= 25, `found ${objects.length} objects`);
      const errors = validateObjects(objects, version);
      assert.equal(errors.length, 0, formatErrors(errors));
    });
  }

  test('the validator is strict: unknown, missing and mistyped fields and unknown kinds fail', () => {
    const base = deployObjects().find((o) => o.object['kind'] === 'Deployment')!;
    type Obj = Json;
    const mutate = (f: (o: Obj) => void): KubeObject => {
      const object = structuredClone(base.object) as Obj;
      f(object);
      return { source: 'mutated', object };
    };
    const cases: [KubeObject, RegExp][] = [
      [
        mutate((o) => {
          o['spec']['template']['spec']['containers'][1]['imagePullPolicyy'] = 'Always';
        }),
        /spec\.template\.spec\.containers\.\[\]\.imagePullPolicyy: .*imagePullPolicyy.* does not exist/,
      ],
      [
        mutate((o) => {
          o['spec']['template']['spec']['hostNetwerk'] = true;
        }),
        /hostNetwerk/,
      ],
      [
        mutate((o) => {
          delete o['spec']['template']['spec']['containers'][0]['name'];
        }),
        /'+name'+ is missing/,
      ],
      [
        mutate((o) => {
          o['spec']['replicas'] = '2';
        }),
        /spec\.replicas: Type 'string' is not assignable to type 'number'/,
      ],
      [
        mutate((o) => {
          o['kind'] = 'Deploymint';
        }),
        /no apps\/v1 Deploymint in Kubernetes/,
      ],
      [
        {
          source: 'crd',
          object: {
            apiVersion: 'snapshot.storage.k8s.io/v1',
            kind: 'VolumeSnapshotClass',
            driver: 'x',
            deletionPolicy: 'Keep',
          },
        },
        /deletionPolicy/,
      ],
    ];
    for (const version of KUBE_VERSIONS) {
      for (const [obj, want] of cases) {
        const errors = validateObjects([obj], version);
        assert.ok(errors.length > 0, `${version}: ${want} must fail`);
        assert.match(formatErrors(errors), want, version);
      }
    }
  });

  test('version differences are real: a 1.34-only field fails on 1.30', () => {
    // Pod-level resources (spec.resources) arrived in Kubernetes 1.32.
    const base = deployObjects().find((o) => o.object['kind'] === 'Deployment')!;
    const object = structuredClone(base.object) as Json;
    object['spec']['template']['spec']['resources'] = { requests: { cpu: '100m' } };
    const obj = { source: 'pod-resources', object };
    assert.deepEqual(validateObjects([obj], '1.34'), []);
    assert.match(formatErrors(validateObjects([obj], '1.30')), /resources.*does not exist/);
  });
});
