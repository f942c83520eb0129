/**
 * The Helm chart, exercised with the real helm binary (deploy/helm.sh finds or extracts it):
 * lint, rendering with default and realistic values, what the rendered objects say, and rejection
 * of bad values by values.schema.json. Strict Kubernetes schema validation of the same renders is
 * in k8s-schema.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import {
  CHART,
  ciValueFiles,
  find,
  findHelm,
  helm,
  type Json,
  parseObjects,
  renderChart,
} from './helpers.ts';
import type { KubeObject } from './k8s-validate.ts';

const helmMissing = findHelm().reason;
const ci = (name: string) => join(CHART, 'ci', `${name}-values.yaml`);

type Obj = Json;
const render = (opts: Parameters<typeof renderChart>[0]): KubeObject[] =>
  parseObjects(renderChart(opts), 'chart');
const containers = (workload: Obj): Obj[] => workload['spec']['template']['spec']['containers'];
const container = (workload: Obj, name: string): Obj => {
  const c = containers(workload).find((x) => x['name'] === name);
  assert.ok(c, `container ${name}`);
  return c;
};

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
    const objs = render({ set: ['cloudConfig.existingSecret=my-cloud'], namespace: 'storage' });
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

  test('RBAC is least-privilege: no Secrets, no wildcards, node plugin only gets/patches Nodes', () => {
    const objs = render({ values: [ci('metrics')] });
    for (const o of objs) {
      const kind = o.object['kind'];
      if (kind !== 'ClusterRole' && kind !== 'Role') continue;
      for (const rule of (o.object['rules'] as Obj[]) ?? []) {
        const all = [...rule['apiGroups'], ...rule['resources'], ...rule['verbs']];
        assert.ok(!all.includes('*'), `${o.source}: no wildcard in ${JSON.stringify(rule)}`);
        assert.ok(!rule['resources'].includes('secrets'), `${o.source} grants no access to Secrets`);
        assert.ok(!rule['verbs'].includes('escalate') && !rule['verbs'].includes('bind'), o.source);
      }
    }
    const node = find(objs, 'ClusterRole', 'cinder-csi-node') as Obj;
    assert.deepEqual(node['rules'], [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] }]);
    const controller = find(objs, 'ClusterRole', 'cinder-csi-controller') as Obj;
    for (const rule of controller['rules'] as Obj[]) {
      assert.ok(
        rule['verbs'].every((v: string) => ['get', 'list', 'watch'].includes(v)) ||
          (rule['resources'][0] === 'events' && rule['verbs'].join() === 'create'),
        `the driver's controller only reads, and creates Events: ${JSON.stringify(rule)}`,
      );
    }
    // Group snapshot rules exist only when the feature is on (metrics-values turns it on).
    assert.ok(
      (find(objs, 'ClusterRole', 'cinder-csi-snapshotter') as Obj)['rules'].some((r: Obj) =>
        r['apiGroups'].includes('groupsnapshot.storage.k8s.io'),
      ),
    );
    const plain = render({ set: ['cloudConfig.existingSecret=x'] });
    assert.ok(
      !(find(plain, 'ClusterRole', 'cinder-csi-snapshotter') as Obj)['rules'].some((r: Obj) =>
        r['apiGroups'].includes('groupsnapshot.storage.k8s.io'),
      ),
    );
    // Leases only in the release namespace.
    const role = find(objs, 'Role') as Obj;
    assert.deepEqual(role['rules'][0]['resources'], ['leases']);
  });

  test('every RBAC rule in the chart carries a comment saying why it exists', () => {
    const lines = readFileSync(join(CHART, 'templates', 'rbac.yaml'), 'utf8').split('\n');
    let rules = 0;
    lines.forEach((line, i) => {
      if (!/^\s*- apiGroups:/.test(line)) return;
      rules++;
      let j = i - 1;
      while (j >= 0 && /^\s*\{\{-? (if|end)/.test(lines[j]!)) j--;
      assert.match(lines[j]!, /^\s*#/, `rule at templates/rbac.yaml:${i + 1} has no comment`);
    });
    assert.ok(rules >= 20, `found ${rules} rules`);
  });

  test('custom kubelet root (k0s): every kubelet path follows it, metrics and snapshots off', () => {
    const objs = render({ values: [ci('k0s')] });
    const text = JSON.stringify(objs.map((o) => o.object));
    assert.doesNotMatch(text, /\/var\/lib\/kubelet/);
    const ds = find(objs, 'DaemonSet') as Obj;
    const paths = ds['spec']['template']['spec']['volumes']
      .filter((v: Obj) => v['hostPath'])
      .map((v: Obj) => v['hostPath']['path']);
    assert.ok(paths.includes('/var/lib/k0s/kubelet'));
    assert.ok(paths.includes('/var/lib/k0s/kubelet/plugins_registry'));
    assert.ok(paths.includes('/var/lib/k0s/kubelet/plugins/cinder.csi.dev'));
    assert.ok(container(ds, 'cinder-csi')['args'].includes('--kubelet-root=/var/lib/k0s/kubelet'));
    const plugin = container(ds, 'cinder-csi');
    assert.equal(
      plugin['volumeMounts'].find((m: Obj) => m['name'] === 'kubelet-dir')['mountPath'],
      '/var/lib/k0s/kubelet',
    );
    // metrics.enabled=false: no flag, no port, no Service; snapshotter off: no sidecar, no role.
    assert.doesNotMatch(text, /--metrics-address/);
    assert.ok(!objs.some((o) => o.object['kind'] === 'Service'));
    assert.ok(!containers(find(objs, 'Deployment') as Obj).some((c) => c['name'] === 'csi-snapshotter'));
    assert.ok(!objs.some((o) => (o.object['metadata'] as Obj)['name'] === 'cinder-csi-snapshotter'));
    assert.ok(
      !objs.some((o) => o.object['kind'] === 'StorageClass' || o.object['kind'] === 'PodDisruptionBudget'),
    );
  });

  test("V8's heap limit (NODE_OPTIONS) leaves each driver container headroom below its memory limit", () => {
    const objs = render({ values: [ci('metrics')], namespace: 'heap-test' });
    for (const kind of ['Deployment', 'DaemonSet']) {
      const driver = container(find(objs, kind) as Obj, 'cinder-csi');
      const opt = (driver['env'] as Obj[]).find((e) => e['name'] === 'NODE_OPTIONS');
      const heap = Number(/--max-old-space-size=(\d+)/.exec(String(opt?.['value']))?.[1]);
      const limit = /^(\d+)Mi$/.exec(String(driver['resources']['limits']['memory']));
      assert.ok(limit, `${kind}: memory limit in Mi`);
      assert.ok(
        heap >= 64 && heap <= Number(limit[1]) - 64,
        `${kind}: heap ${heap} MiB vs limit ${limit[1]} MiB`,
      );
    }
  });

  test('metrics on: flags, ports, probes, Services, ServiceMonitor and PodMonitor', () => {
    const objs = render({ values: [ci('metrics')], namespace: 'monitoring-test' });
    const ctrl = find(objs, 'Deployment') as Obj;
    const driver = container(ctrl, 'cinder-csi');
    assert.ok(driver['args'].includes('--metrics-address=:9808'));
    assert.ok(driver['args'].includes('--log-level=debug'));
    assert.ok(driver['args'].includes('--shutdown-grace=45'), 'extraArgs appended');
    assert.deepEqual(driver['env'], [
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=160' },
      { name: 'OS_CACERT', value: '/etc/ssl/certs/ca-certificates.crt' },
    ]);
    assert.deepEqual(driver['readinessProbe']['httpGet'], { path: '/healthz', port: 'metrics' });
    assert.ok(driver['ports'].some((p: Obj) => p['name'] === 'metrics' && p['containerPort'] === 9808));
    const plugin = container(find(objs, 'DaemonSet') as Obj, 'cinder-csi');
    assert.ok(plugin['args'].includes('--metrics-address=:9814'));
    assert.ok(plugin['args'].includes('--node-stage-secrets'));
    assert.equal((find(objs, 'Service', 'cinder-csi-node-metrics') as Obj)['spec']['clusterIP'], 'None');
    const svc = find(objs, 'Service', 'cinder-csi-controller-metrics') as Obj;
    assert.equal(svc['spec']['ports'][0]['targetPort'], 'metrics');
    const sm = find(objs, 'ServiceMonitor') as Obj;
    assert.equal(sm['metadata']['labels']['release'], 'kube-prometheus-stack');
    assert.deepEqual(sm['spec']['endpoints'], [{ port: 'metrics', path: '/metrics', interval: '15s' }]);
    assert.deepEqual(sm['spec']['namespaceSelector'], { matchNames: ['monitoring-test'] });
    assert.equal((find(objs, 'PodMonitor') as Obj)['spec']['podMetricsEndpoints'][0]['port'], 'metrics');
    assert.equal(ctrl['spec']['replicas'], 3);
    assert.ok(
      container(ctrl, 'csi-snapshotter')['args'].includes('--feature-gates=CSIVolumeGroupSnapshot=true'),
    );
  });

  test('cloud config: an inline cloud.conf becomes a Secret (and a restart checksum); an existing one is referenced', () => {
    const inline = render({ values: [ci('inline-config')] });
    const secret = find(inline, 'Secret') as Obj;
    assert.match(secret['stringData']['cloud.conf'], /^\[Global\]\nauth-url = https:\/\/keystone/);
    const others = JSON.stringify(inline.filter((o) => o.object['kind'] !== 'Secret').map((o) => o.object));
    assert.doesNotMatch(others, /not-a-real-password/, 'the password appears only in the Secret');
    const ctrl = find(inline, 'Deployment') as Obj;
    assert.match(
      ctrl['spec']['template']['metadata']['annotations']['checksum/cloud-config'],
      /^[0-9a-f]{16}$/,
    );

    const existing = render({ values: [ci('existing-secret')] });
    assert.ok(!existing.some((o) => o.object['kind'] === 'Secret'), 'no Secret created');
    const ds = find(existing, 'DaemonSet') as Obj;
    const vol = ds['spec']['template']['spec']['volumes'].find((v: Obj) => v['name'] === 'cloud-config');
    assert.equal(vol['secret']['secretName'], 'openstack-cloud-config');
    assert.equal(
      container(ds, 'cinder-csi')['image'],
      'registry.example.com/storage/cinder-csi@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
    assert.deepEqual(ds['spec']['template']['spec']['imagePullSecrets'], [{ name: 'registry-example-pull' }]);
    const classes = existing.filter((o) => o.object['kind'] === 'StorageClass').map((o) => o.object as Obj);
    assert.deepEqual(
      classes.map((c) => [
        c['metadata']['name'],
        c['parameters'],
        c['volumeBindingMode'],
        c['allowVolumeExpansion'],
      ]),
      [
        ['cinder-ssd', { type: 'ssd', 'csi.storage.k8s.io/fstype': 'xfs' }, 'WaitForFirstConsumer', true],
        ['cinder-az1-retain', { type: 'standard', availability: 'az1' }, 'Immediate', false],
      ],
    );
    assert.equal(
      classes[0]!['metadata']['annotations']['storageclass.kubernetes.io/is-default-class'],
      'true',
    );
    assert.equal(classes[1]!['reclaimPolicy'], 'Retain');
    const vsc = find(existing, 'VolumeSnapshotClass') as Obj;
    assert.equal(vsc['deletionPolicy'], 'Retain');
  });

  test('microk8s + noauth: namespace object with Pod Security label, snap kubelet path', () => {
    const objs = render({ values: [ci('microk8s')], namespace: 'cinder-csi' });
    const ns = find(objs, 'Namespace') as Obj;
    assert.equal(ns['metadata']['name'], 'cinder-csi');
    assert.equal(ns['metadata']['labels']['pod-security.kubernetes.io/enforce'], 'privileged');
    const ds = find(objs, 'DaemonSet') as Obj;
    assert.ok(
      container(ds, 'node-driver-registrar')['args'].includes(
        '--kubelet-registration-path=/var/snap/microk8s/common/var/lib/kubelet/plugins/cinder.csi.dev/csi.sock',
      ),
    );
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
      ci('metrics'),
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
