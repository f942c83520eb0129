/**
 * cleanupPrefix (test/doubles/lab-cinder.ts), which the host and node lab suites run last in their
 * clean-up: on the lab Cinder it removes a volume (with an attachment) and a snapshot that the
 * caller never learned the ids of, and nothing outside its prefix.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  cinder,
  cleanupPrefix,
  createAttachment,
  createVolume,
  labAvailable,
  labConnector,
  labLogin,
} from '../../doubles/lab-cinder.ts';

test('cleanupPrefix removes what a run left under its prefix, and only that', async (t) => {
  if (!(await labAvailable())) return t.skip('lab Cinder not available (test/lab-up.sh)');
  const lab = await labLogin();
  const prefix = `labclean-${randomBytes(3).toString('hex')}`;
  const other = `labkeep-${randomBytes(3).toString('hex')}`;
  const [a, keep] = await Promise.all([
    createVolume(lab, `${prefix}-a`, 'fake'),
    createVolume(lab, other, 'fake'),
  ]);
  try {
    await createAttachment(lab, a, labConnector(prefix, 'iqn.2004-10.org.cinder-csi:labclean'));
    await cinder(lab, 'POST', '/snapshots', {
      snapshot: { volume_id: keep, name: `${prefix}-s`, force: true },
    });
    await cleanupPrefix(lab, prefix);
    const left = async (path: string, key: string) =>
      (
        (await cinder<Record<string, { id: string; name: string; status: string }[]>>(lab, 'GET', path))[
          key
        ] ?? []
      ).filter((x) => x.name?.startsWith(prefix) && x.status !== 'deleting');
    for (let i = 0; i < 60 && (await left('/volumes?limit=1000', 'volumes')).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.deepEqual(await left('/volumes?limit=1000', 'volumes'), [], 'the volume under the prefix is gone');
    assert.deepEqual(
      await left('/snapshots?limit=1000', 'snapshots'),
      [],
      'the snapshot under the prefix is gone',
    );
    const kept = await cinder<{ volume: { status: string } }>(lab, 'GET', `/volumes/${keep}`);
    assert.notEqual(kept.volume.status, 'deleting', 'a volume outside the prefix is kept');
  } finally {
    await cleanupPrefix(lab, prefix);
    for (let i = 0; i < 60; i++) {
      const snaps = await cinder<{ snapshots: unknown[] }>(lab, 'GET', `/snapshots?volume_id=${keep}`);
      if (snaps.snapshots.length === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    await cinder(lab, 'DELETE', `/volumes/${keep}`).catch(() => undefined);
  }
});
