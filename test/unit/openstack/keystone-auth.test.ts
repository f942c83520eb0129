/**
 * Keystone auth request bodies (password, application credential, token, trust; refresh margin)
 * and the service catalog lookup (preference order, interface, region, URL templating): the pure
 * functions the session builds on. The session itself is tested in keystone.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AuthConfig, ConfigError } from '../../../src/config/types.ts';
import {
  type CatalogEntry,
  CatalogError,
  findEndpoint,
  joinUrl,
  substituteProjectId,
  withProjectSegment,
} from '../../../src/openstack/catalog.ts';
import { buildAuthRequest, refreshMarginMs, tokensUrl } from '../../../src/openstack/keystone.ts';

describe('buildAuthRequest', () => {
  const pw: AuthConfig = { type: 'password', password: 'pw' };

  it('password by user id, project by id', () => {
    assert.deepEqual(buildAuthRequest({ ...pw, userId: 'u1', projectId: 'p1' }), {
      auth: {
        identity: { methods: ['password'], password: { user: { id: 'u1', password: 'pw' } } },
        scope: { project: { id: 'p1' } },
      },
    });
  });

  it('password by name + domain, project by name + domain (domain shortcut as fallback)', () => {
    assert.deepEqual(
      buildAuthRequest({ ...pw, username: 'admin', domainName: 'Default', projectName: 'admin' }),
      {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'admin', domain: { name: 'Default' }, password: 'pw' } },
          },
          scope: { project: { name: 'admin', domain: { name: 'Default' } } },
        },
      },
    );
    const body = buildAuthRequest({
      ...pw,
      username: 'a',
      userDomainId: 'default',
      projectName: 'x',
      projectDomainId: 'd2',
    });
    assert.deepEqual((body.auth['identity'] as { password: { user: unknown } }).password.user, {
      name: 'a',
      domain: { id: 'default' },
      password: 'pw',
    });
    assert.deepEqual(body.auth['scope'], { project: { name: 'x', domain: { id: 'd2' } } });
  });

  it('refuses incomplete credentials with a ConfigError that names the missing field', () => {
    assert.throws(() => buildAuthRequest({ ...pw, username: 'a' }), /user name "a" needs a user domain/);
    assert.throws(() => buildAuthRequest({ type: 'password', userId: 'u' }), ConfigError);
    assert.throws(
      () => buildAuthRequest({ ...pw, userId: 'u', projectName: 'p' }),
      /project name "p" needs a project domain/,
    );
  });

  it('application credential by id (no scope) or by name + user', () => {
    assert.deepEqual(
      buildAuthRequest({
        type: 'v3applicationcredential',
        applicationCredentialId: 'ac1',
        applicationCredentialSecret: 's',
        projectId: 'ignored',
      }),
      {
        auth: {
          identity: {
            methods: ['application_credential'],
            application_credential: { id: 'ac1', secret: 's' },
          },
        },
      },
    );
    assert.deepEqual(
      buildAuthRequest({
        type: 'v3applicationcredential',
        applicationCredentialName: 'n',
        applicationCredentialSecret: 's',
        username: 'demo',
        userDomainName: 'Default',
      }).auth['identity'],
      {
        methods: ['application_credential'],
        application_credential: {
          name: 'n',
          user: { name: 'demo', domain: { name: 'Default' } },
          secret: 's',
        },
      },
    );
  });

  it('token auth and trust scope', () => {
    assert.deepEqual(buildAuthRequest({ type: 'token', token: 't', trustId: 'tr1', projectId: 'p' }), {
      auth: {
        identity: { methods: ['token'], token: { id: 't' } },
        scope: { 'OS-TRUST:trust': { id: 'tr1' } },
      },
    });
  });

  it('tokensUrl accepts versioned and unversioned auth URLs', () => {
    assert.equal(tokensUrl('http://k:5000/v3'), 'http://k:5000/v3/auth/tokens');
    assert.equal(tokensUrl('http://k:5000/v3/'), 'http://k:5000/v3/auth/tokens');
    assert.equal(tokensUrl('http://k:5000'), 'http://k:5000/v3/auth/tokens');
    assert.equal(tokensUrl('https://k/identity/'), 'https://k/identity/v3/auth/tokens');
  });

  it('refreshes min(5 min, 10% of the lifetime) ahead of expiry', () => {
    assert.equal(refreshMarginMs(3_600_000), 300_000);
    assert.equal(refreshMarginMs(600_000), 60_000);
  });
});

describe('catalog', () => {
  const catalog: CatalogEntry[] = [
    {
      type: 'volume',
      endpoints: [{ interface: 'public', region_id: 'R1', url: 'http://old/v1/$(tenant_id)s' }],
    },
    {
      type: 'volumev3',
      endpoints: [
        { interface: 'public', region_id: 'R1', url: 'http://pub1/v3/%(project_id)s' },
        { interface: 'public', region_id: 'R2', url: 'http://pub2/v3/%(project_id)s' },
        { interface: 'internal', region: 'R1', url: 'http://int1/v3/%(project_id)s' },
      ],
    },
    { type: 'image', endpoints: [{ interface: 'public', region_id: 'R1', url: 'http://glance:9292' }] },
  ];
  const types = ['block-storage', 'volumev3', 'volume'];

  it('picks the first service type in preference order, by interface and region', () => {
    assert.equal(findEndpoint(catalog, types, 'public', 'R2'), 'http://pub2/v3/%(project_id)s');
    assert.equal(findEndpoint(catalog, types, 'internal', 'R1'), 'http://int1/v3/%(project_id)s');
    assert.equal(findEndpoint(catalog, ['image'], 'public', undefined), 'http://glance:9292');
    assert.equal(findEndpoint(catalog, ['volume'], 'public', 'R1'), 'http://old/v1/$(tenant_id)s');
  });

  it('explains what the catalog offers when nothing matches', () => {
    assert.throws(
      () => findEndpoint(catalog, types, 'admin', 'R1'),
      (err) =>
        err instanceof CatalogError &&
        /no block-storage \| volumev3 \| volume endpoint for interface admin, region R1/.test(err.message) &&
        /volumev3\/public\/R2/.test(err.message),
    );
  });

  it('templating and URL joining', () => {
    assert.equal(substituteProjectId('http://c/v3/%(project_id)s', 'abc'), 'http://c/v3/abc');
    assert.equal(substituteProjectId('http://c/v1/$(tenant_id)s', 'abc'), 'http://c/v1/abc');
    assert.throws(() => substituteProjectId('http://c/v3/%(project_id)s', undefined), /no project scope/);
    assert.equal(withProjectSegment('http://c:8776/v3/', 'abc'), 'http://c:8776/v3/abc');
    assert.equal(withProjectSegment('http://c:8776/v3/xyz', 'abc'), 'http://c:8776/v3/xyz');
    assert.equal(joinUrl('http://c/v3/p/', '/volumes/x'), 'http://c/v3/p/volumes/x');
    assert.equal(joinUrl('http://c/v3/p', 'http://other/x'), 'http://other/x');
  });
});
