import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CONNECTOR_SCHEMA_VERSION,
  connectorAnnotationKey,
  encodeConnectorAnnotation,
  parseConnectorAnnotation,
  sameConnector,
} from '../../../src/kube/connector-annotation.ts';

const CONNECTOR = {
  host: 'node-1',
  initiator: 'iqn.1993-08.org.debian:01:abc',
  ip: '10.0.0.5',
  multipath: false,
  platform: 'x86_64',
  os_type: 'linux',
  do_local_attach: false,
};

function reason(value: string): string {
  const r = parseConnectorAnnotation(value);
  assert.equal(r.ok, false, `expected ${value} to be rejected`);
  return (r as { reason: string }).reason;
}

describe('connector annotation schema', () => {
  it('key is <driver-name>/connector', () => {
    assert.equal(connectorAnnotationKey('cinder.csi.openstack.org'), 'cinder.csi.openstack.org/connector');
  });

  it('round-trips a connector with the schema version', () => {
    const value = encodeConnectorAnnotation(CONNECTOR);
    assert.deepEqual(JSON.parse(value), { version: CONNECTOR_SCHEMA_VERSION, connector: CONNECTOR });
    assert.deepEqual(parseConnectorAnnotation(value), { ok: true, connector: CONNECTOR });
  });

  it('keeps unknown extra fields (newer node plugins may add os-brick properties)', () => {
    const value = JSON.stringify({
      version: 1,
      connector: { ...CONNECTOR, nvme_hostid: 'x', found_dsc: '' },
    });
    const r = parseConnectorAnnotation(value);
    assert.ok(r.ok);
    assert.equal(r.connector.nvme_hostid, 'x');
  });

  it('rejects malformed values with a clear reason that never echoes the value', () => {
    assert.match(reason('{"version":1,'), /not valid JSON/);
    assert.match(reason('[1,2]'), /not a JSON object/);
    assert.match(reason('null'), /not a JSON object/);
    assert.match(reason('{"connector":{"host":"n"}}'), /no "version" field/);
    assert.match(
      reason('{"version":2,"connector":{"host":"n"}}'),
      /unsupported connector schema version 2 .*reads version 1/,
    );
    assert.match(
      reason('{"version":"1","connector":{"host":"n"}}'),
      /unsupported connector schema version "1"/,
    );
    assert.match(reason('{"version":1}'), /no "connector" field/);
    assert.match(reason('{"version":1,"connector":"node-1"}'), /connector is not a JSON object/);
    assert.match(
      reason('{"version":1,"connector":{"initiator":"iqn"}}'),
      /connector.host is missing or empty/,
    );
    assert.match(reason('{"version":1,"connector":{"host":"  "}}'), /connector.host is missing or empty/);
    assert.match(
      reason('{"version":1,"connector":{"host":"n","multipath":"yes"}}'),
      /connector.multipath must be a boolean, got string/,
    );
    assert.match(
      reason('{"version":1,"connector":{"host":"n","ip":["a"]}}'),
      /connector.ip must be a string, got array/,
    );
    const secret = reason('{"version":1,"connector":{"host":"n","auth_password":"hunter2"}}');
    assert.match(secret, /secret-named field "auth_password"/);
    assert.doesNotMatch(secret, /hunter2/);
    assert.match(
      reason(JSON.stringify({ version: 1, connector: { host: 'n', pad: 'x'.repeat(20_000) } })),
      /larger than/,
    );
  });

  it('refuses to encode an unusable connector or one with a secret', () => {
    assert.throws(() => encodeConnectorAnnotation({ host: '' }), /connector.host is missing/);
    assert.throws(
      () => encodeConnectorAnnotation({ ...CONNECTOR, keyring: 'AQB...' }),
      /secret-named field "keyring"/,
    );
  });

  it('compares connectors independently of key order and undefined fields', () => {
    assert.ok(
      sameConnector(CONNECTOR, {
        ...Object.fromEntries(Object.entries(CONNECTOR).reverse()),
        host: 'node-1',
        nqn: undefined,
      }),
    );
    assert.ok(!sameConnector(CONNECTOR, { ...CONNECTOR, ip: '10.0.0.6' }));
  });
});
