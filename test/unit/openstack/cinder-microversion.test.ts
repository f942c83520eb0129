import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { v3RangeFromVersions } from '../../../src/openstack/cinder-discovery.ts';
import { MicroversionError } from '../../../src/openstack/errors.ts';
import {
  CINDER_FEATURES,
  compareMicroversions,
  formatMicroversion,
  negotiateMicroversion,
  parseMicroversion,
  requireFeature,
} from '../../../src/openstack/microversion.ts';
import versionsRoot from '../../lab/samples/versions-root.json' with { type: 'json' };

const mv = parseMicroversion;

describe('microversions', () => {
  it('parses, formats and compares numerically (3.9 < 3.10)', () => {
    assert.deepEqual(mv('3.44'), { major: 3, minor: 44 });
    assert.deepEqual(mv('v3.0'), { major: 3, minor: 0 });
    assert.equal(formatMicroversion(mv('3.7')), '3.7');
    assert.ok(compareMicroversions(mv('3.9'), mv('3.10')) < 0);
    assert.equal(compareMicroversions(mv('3.27'), mv('3.27')), 0);
    for (const bad of ['', '3', '3.x', 'latest', '3.44.1']) assert.throws(() => mv(bad), MicroversionError);
  });

  it('negotiates the highest version both sides support', () => {
    const server = { min: mv('3.0'), max: mv('3.70') };
    assert.deepEqual(negotiateMicroversion(mv('3.70'), server), mv('3.70'));
    assert.deepEqual(negotiateMicroversion(mv('3.50'), server), mv('3.50'));
    assert.deepEqual(negotiateMicroversion(mv('3.70'), { min: mv('3.0'), max: mv('3.59') }), mv('3.59'));
    assert.deepEqual(negotiateMicroversion(mv('3.70'), undefined), mv('3.0'), 'no microversions: 3.0');
    assert.throws(
      () => negotiateMicroversion(mv('3.20'), { min: mv('3.27'), max: mv('3.70') }),
      /at least 3\.27/,
    );
  });

  it("reads the range from the lab's real version document, and from a v3-only one", () => {
    assert.deepEqual(v3RangeFromVersions(versionsRoot), { min: mv('3.0'), max: mv('3.70') });
    assert.deepEqual(v3RangeFromVersions({ version: { id: 'v3.0', version: '3.60', min_version: '3.0' } }), {
      min: mv('3.0'),
      max: mv('3.60'),
    });
    assert.equal(
      v3RangeFromVersions({ versions: [{ id: 'v3.0', version: '', min_version: '' }] }),
      undefined,
    );
    assert.throws(() => v3RangeFromVersions({ versions: [{ id: 'v2.0', version: '' }] }), /no v3 entry/);
  });

  it('feature gate: the documented versions, refused with feature, operation and both versions', () => {
    assert.equal(CINDER_FEATURES.attachments.version, '3.27');
    assert.equal(CINDER_FEATURES.attachmentComplete.version, '3.44');
    assert.equal(CINDER_FEATURES.onlineExtend.version, '3.42');
    assert.equal(CINDER_FEATURES.attachMode.version, '3.54');
    assert.equal(CINDER_FEATURES.revertToSnapshot.version, '3.40');
    requireFeature(mv('3.44'), 'attachmentComplete', 'attachment.complete');
    assert.throws(
      () => requireFeature(mv('3.43'), 'attachmentComplete', 'attachment.complete'),
      (err: unknown) =>
        err instanceof MicroversionError &&
        err.message.startsWith(
          'attachment complete (attachment.complete) need Cinder API microversion 3.44',
        ) &&
        err.message.includes('negotiated microversion is 3.43'),
    );
  });
});
