/**
 * The Helm chart's RBAC, rendered with the real helm binary: least privilege (no Secrets, no
 * wildcards, the driver only reads and creates Events) and a comment on every rule saying why.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CHART, ciValues, find, helmMissing, type Json, renderObjects } from './helpers.ts';

type Obj = Json;

describe('helm chart RBAC', { skip: helmMissing }, () => {
  test('RBAC is least-privilege: no Secrets, no wildcards, node plugin only gets/patches Nodes', () => {
    const objs = renderObjects({ values: [ciValues('metrics')] });
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
    const plain = renderObjects({ set: ['cloudConfig.existingSecret=x'] });
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
});
