/**
 * The Helm chart rendered with the real helm binary and the realistic value sets
 * (charts/cinder-csi/ci/*-values.yaml): custom kubelet root, V8 heap vs memory limit, metrics,
 * cloud config inline or existing, microk8s + noauth.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ciValues, container, containers, find, helmMissing, type Json, renderObjects } from './helpers.ts';

type Obj = Json;

describe('helm chart value sets', { skip: helmMissing }, () => {
  test('custom kubelet root (k0s): every kubelet path follows it, metrics and snapshots off', () => {
    const objs = renderObjects({ values: [ciValues('k0s')] });
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
    const objs = renderObjects({ values: [ciValues('metrics')], namespace: 'heap-test' });
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
    const objs = renderObjects({ values: [ciValues('metrics')], namespace: 'monitoring-test' });
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
    const inline = renderObjects({ values: [ciValues('inline-config')] });
    const secret = find(inline, 'Secret') as Obj;
    assert.match(secret['stringData']['cloud.conf'], /^\[Global\]\nauth-url = https:\/\/keystone/);
    const others = JSON.stringify(inline.filter((o) => o.object['kind'] !== 'Secret').map((o) => o.object));
    assert.doesNotMatch(others, /not-a-real-password/, 'the password appears only in the Secret');
    const ctrl = find(inline, 'Deployment') as Obj;
    assert.match(
      ctrl['spec']['template']['metadata']['annotations']['checksum/cloud-config'],
      /^[0-9a-f]{16}$/,
    );

    const existing = renderObjects({ values: [ciValues('existing-secret')] });
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
    const objs = renderObjects({ values: [ciValues('microk8s')], namespace: 'cinder-csi' });
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
});
