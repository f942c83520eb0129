/**
 * The Helm chart, exercised with the real helm binary (deploy/helm.sh finds or extracts it):
 * lint, rendering with default values, NOTES.txt, and rejection of bad values by values.schema.json.
 * RBAC is in chart-rbac.test.ts, the realistic value sets (ci/*-values.yaml) in
 * chart-values.test.ts, strict Kubernetes schema validation of the same renders in k8s-schema.test.ts.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { describe, test } from 'node:test';
import {
  CHART,
  ciValueFiles,
  ciValues,
  container,
  containers,
  find,
  helm,
  helmMissing,
  type Json,
  renderChart,
  renderObjects,
} from './helpers.ts';

type Obj = Json;

describe('helm chart', { skip: helmMissing }, () => {
  test('helm lint --strict passes for every realistic value set', () => {
    const files = ciValueFiles();
    assert.ok(files.length >= 4, 'ci/*-values.yaml value sets exist');
    for (const f of files) {
      const r = helm(['lint', '--strict', CHART, '-f', f]);
      assert.equal(r.status, 0, `${basename(f)}: ${r.stdout}${r.stderr}`);
      assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/, basename(f));
    }
  });

  test('default values: refuses to render without cloud credentials, with a clear message', () => {
    assert.throws(
      () => renderChart(),
      /cloudConfig: set cloudConfig\.existingSecret .* or cloudConfig\.content/,
    );
  });

  test('default values + an existing Secret: the documented controller, node plugin and CSIDriver', () => {
    const objs = renderObjects({ set: ['cloudConfig.existingSecret=my-cloud'], namespace: 'storage' });
    const kinds = objs.map((o) => o.object['kind']).sort();
    assert.deepEqual(kinds, [
      'CSIDriver',
      'ClusterRole',
      'ClusterRole',
      'ClusterRole',
      'ClusterRole',
      'ClusterRole',
      'ClusterRole',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'DaemonSet',
      'Deployment',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'Service',
      'ServiceAccount',
      'ServiceAccount',
      'StorageClass',
      'VolumeSnapshotClass',
    ]);
    for (const o of objs) {
      const ns = (o.object['metadata'] as Obj)['namespace'];
      if (ns !== undefined) assert.equal(ns, 'storage', `${o.source} in the release namespace`);
    }

    const driver = find(objs, 'CSIDriver') as Obj;
    assert.equal(driver['metadata']['name'], 'cinder.csi.dev');
    assert.deepEqual(driver['spec'], {
      attachRequired: true,
      podInfoOnMount: true,
      fsGroupPolicy: 'File',
      volumeLifecycleModes: ['Persistent'],
    });

    const ctrl = find(objs, 'Deployment') as Obj;
    assert.equal(ctrl['spec']['replicas'], 2);
    const images = Object.fromEntries(containers(ctrl).map((c) => [c['name'], c['image']]));
    assert.deepEqual(images, {
      'cinder-csi': 'localhost/cinder-csi:0.1.0',
      'csi-provisioner': 'registry.k8s.io/sig-storage/csi-provisioner:v6.3.0',
      'csi-attacher': 'registry.k8s.io/sig-storage/csi-attacher:v4.12.0',
      'csi-snapshotter': 'registry.k8s.io/sig-storage/csi-snapshotter:v8.6.0',
      'csi-resizer': 'registry.k8s.io/sig-storage/csi-resizer:v2.2.1',
      'liveness-probe': 'registry.k8s.io/sig-storage/livenessprobe:v2.19.0',
    });
    for (const name of ['csi-provisioner', 'csi-attacher', 'csi-snapshotter', 'csi-resizer']) {
      const args: string[] = container(ctrl, name)['args'];
      assert.ok(args.includes('--leader-election'), `${name} elects a leader`);
      assert.ok(args.includes('--leader-election-namespace=storage'), name);
    }
    const provArgs: string[] = container(ctrl, 'csi-provisioner')['args'];
    assert.ok(!provArgs.some((a) => a.includes('Topology')), 'no deprecated Topology feature gate');
    assert.ok(provArgs.includes('--extra-create-metadata'));
    const driverArgs: string[] = container(ctrl, 'cinder-csi')['args'];
    assert.deepEqual(driverArgs.slice(0, 4), [
      '--mode=controller',
      '--endpoint=unix:///csi/csi.sock',
      '--driver-name=cinder.csi.dev',
      '--cloud-config=/etc/config/cloud.conf',
    ]);
    // Unprivileged controller: non-root pod, read-only root fs and no capabilities everywhere.
    const podSec = ctrl['spec']['template']['spec']['securityContext'];
    assert.equal(podSec['runAsNonRoot'], true);
    assert.equal(podSec['runAsUser'], 10001);
    for (const c of containers(ctrl)) {
      assert.equal(c['securityContext']['readOnlyRootFilesystem'], true, c['name']);
      assert.equal(c['securityContext']['allowPrivilegeEscalation'], false, c['name']);
      assert.deepEqual(c['securityContext']['capabilities'], { drop: ['ALL'] }, c['name']);
      assert.ok(
        c['resources']['requests']['cpu'] && c['resources']['requests']['memory'],
        `${c['name']} requests`,
      );
    }
    const secretVol = ctrl['spec']['template']['spec']['volumes'].find(
      (v: Obj) => v['name'] === 'cloud-config',
    );
    assert.equal(secretVol['secret']['secretName'], 'my-cloud');

    const ds = find(objs, 'DaemonSet') as Obj;
    const podSpec = ds['spec']['template']['spec'];
    assert.equal(podSpec['hostNetwork'], true);
    const plugin = container(ds, 'cinder-csi');
    assert.equal(plugin['securityContext']['privileged'], true);
    assert.equal(plugin['securityContext']['runAsUser'], 0);
    const mounts = Object.fromEntries(plugin['volumeMounts'].map((m: Obj) => [m['mountPath'], m]));
    assert.equal(mounts['/var/lib/kubelet']['mountPropagation'], 'Bidirectional');
    for (const p of ['/dev', '/sys', '/etc/iscsi', '/var/lib/iscsi', '/run/udev', '/csi', '/etc/config']) {
      assert.ok(mounts[p], `node plugin mounts ${p}`);
    }
    const nodeId = plugin['env'].find((e: Obj) => e['name'] === 'NODE_ID');
    assert.deepEqual(nodeId['valueFrom'], { fieldRef: { fieldPath: 'spec.nodeName' } });
    assert.ok(plugin['args'].includes('--node-id=$(NODE_ID)'));
    const registrar = container(ds, 'node-driver-registrar');
    assert.equal(registrar['image'], 'registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0');
    assert.ok(
      registrar['args'].includes(
        '--kubelet-registration-path=/var/lib/kubelet/plugins/cinder.csi.dev/csi.sock',
      ),
    );

    const sc = find(objs, 'StorageClass') as Obj;
    assert.equal(sc['provisioner'], 'cinder.csi.dev');
    assert.equal(sc['volumeBindingMode'], 'WaitForFirstConsumer');
    assert.equal(sc['allowVolumeExpansion'], true);
    assert.equal((find(objs, 'VolumeSnapshotClass') as Obj)['driver'], 'cinder.csi.dev');
  });

  test('NOTES.txt tells how to check the install (pods, CSINode registration, a test claim, metrics)', () => {
    const r = helm([
      'install',
      'cinder-csi',
      CHART,
      '-n',
      'storage',
      '--dry-run=client',
      '-f',
      ciValues('metrics'),
    ]);
    assert.equal(r.status, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    assert.match(notes, /installed as CSI driver "cinder\.csi\.dev" in namespace storage/);
    assert.match(notes, /kubectl -n storage get pods -l app\.kubernetes\.io\/instance=cinder-csi/);
    assert.match(notes, /kubectl get csinode/);
    assert.match(notes, /storageClassName: cinder\n/);
    assert.match(notes, /port-forward deploy\/cinder-csi-controller 9808/);
  });

  test('values.schema.json rejects bad values with the offending path', () => {
    const cases: [string[], RegExp][] = [
      [['controller.replicas=0'], /\/controller\/replicas.*minimum/],
      [['driverName=Bad_Name'], /\/driverName/],
      [['logLevel=verbose'], /\/logLevel/],
      [['hostPaths.kubeletDir=var/lib/kubelet'], /\/hostPaths\/kubeletDir/],
      [
        ['storageClasses[0].name=fast', 'storageClasses[0].reclaimPolicy=Recycle'],
        /\/storageClasses\/0\/reclaimPolicy/,
      ],
      [
        ['storageClasses[0].name=fast', 'storageClasses[0].parameters.csi\\.storage\\.k8s\\.io/fstype=ntfs'],
        /fstype/,
      ],
      [['volumeSnapshotClasses[0].name=s', 'volumeSnapshotClasses[0].deletionPolicy=Keep'], /deletionPolicy/],
      // A parameter the driver does not know would fail every CreateVolume: caught at install.
      [
        ['storageClasses[0].name=fast', 'storageClasses[0].parameters.volumeType=ssd'],
        /'volumeType' not allowed/,
      ],
      [
        ['volumeSnapshotClasses[0].name=s', 'volumeSnapshotClasses[0].parameters.type=clone'],
        /parameters\/type/,
      ],
      [['metrics.controllerPort=70000'], /\/metrics\/controllerPort/],
      [['controler.replicas=2'], /controler/],
      [['sidecars.provisioner.timeout=5 minutes'], /\/sidecars\/provisioner\/timeout/],
      [['controller.runAsUser=0'], /\/controller\/runAsUser/],
      [['image.digest=latest'], /\/image\/digest/],
      [['controller.extraArgs[0]=no-dashes'], /\/controller\/extraArgs\/0/],
      [['cloudConfig.existingSecret=Not A Name'], /\/cloudConfig\/existingSecret/],
    ];
    for (const [set, want] of cases) {
      const r = helm([
        'template',
        'x',
        CHART,
        '--set',
        'cloudConfig.content=x',
        ...set.flatMap((s) => ['--set', s]),
      ]);
      assert.notEqual(r.status, 0, `${set.join(' ')} must be rejected`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/, set.join(' '));
      assert.match(r.stderr, want, set.join(' '));
    }
  });
});
