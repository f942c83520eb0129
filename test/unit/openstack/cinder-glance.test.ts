/**
 * GlanceClient (image lookups for volume-from-image) against a scripted Glance v2 on 127.0.0.1
 * (test/support/fault-server.ts) through the real HttpClient: the lab has no Glance, so this
 * emulation is the only way to exercise it here. Response shapes follow the Image API v2 reference.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { AmbiguousImageError, GlanceClient, ImageNotFoundError } from '../../../src/openstack/glance.ts';
import { HttpClient } from '../../../src/openstack/http.ts';
import type { ServiceRequest, ServiceSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { FaultServer } from '../../support/fault-server.ts';

const ID1 = '11111111-2222-4333-8444-555555555555';
const ID2 = '66666666-7777-4888-8999-aaaaaaaaaaaa';
const image = (id: string, name: string) => ({
  id,
  name,
  status: 'active',
  size: 1024,
  min_disk: 1,
  disk_format: 'raw',
});

describe('GlanceClient (emulated Glance v2)', () => {
  let srv: FaultServer;
  let http: HttpClient;
  let glance: (endpointSuffix?: string) => GlanceClient;

  before(async () => {
    srv = await FaultServer.start();
    http = new HttpClient({ logger: silentLogger(), retries: 0 });
    glance = (suffix = '') => {
      // The session part under test elsewhere; here only endpoint + request plumbing.
      const session: ServiceSession = {
        service: 'image',
        endpoint: async () => `${srv.url}${suffix}`,
        projectId: async () => 'p1',
        request: <T>(req: ServiceRequest) => {
          const { path, ...rest } = req;
          return http.request<T>({ ...rest, url: path });
        },
      };
      return new GlanceClient({ session, logger: silentLogger() });
    };
  });
  afterEach(() => {
    srv.requests.length = 0;
  });
  after(async () => {
    await http.close();
    await srv.close();
  });

  it('gets an image by id, with or without /v2 in the catalog endpoint', async () => {
    srv.script('GET', `/v2/images/${ID1}`, { status: 200, body: image(ID1, 'debian-12') });
    assert.equal((await glance().getImage(ID1)).name, 'debian-12');
    assert.equal((await glance('/v2/').getImage(ID1)).name, 'debian-12');
  });

  it('finds the one image with a name', async () => {
    srv.script('GET', '/v2/images', { status: 200, body: { images: [image(ID1, 'debian-12')] } });
    assert.equal((await glance().getImageByName('debian-12')).id, ID1);
    const q = new URL(srv.requests.at(-1)!.url, srv.url).searchParams;
    assert.equal(q.get('name'), 'debian-12');
  });

  it('no image of that name: ImageNotFoundError, an OpenStackError with notFound', async () => {
    srv.script('GET', '/v2/images', { status: 200, body: { images: [] } });
    await assert.rejects(glance().getImageByName('nope'), (err: unknown) => {
      assert.ok(err instanceof ImageNotFoundError);
      assert.ok(err instanceof OpenStackError && err.notFound);
      assert.match(err.message, /No image named "nope"/);
      return true;
    });
  });

  it('several images of that name: AmbiguousImageError listing their ids', async () => {
    srv.script('GET', '/v2/images', {
      status: 200,
      body: { images: [image(ID1, 'dup'), image(ID2, 'dup')] },
    });
    await assert.rejects(glance().getImageByName('dup'), (err: unknown) => {
      assert.ok(err instanceof AmbiguousImageError);
      assert.deepEqual(err.ids, [ID1, ID2]);
      assert.match(err.message, /ambiguous: 2 images match \(1111.*, 6666.*\); use the image id/);
      return true;
    });
  });

  it('resolveImage: a UUID is an id first, then a name; other strings are names', async () => {
    srv.script('GET', `/v2/images/${ID1}`, { status: 200, body: image(ID1, 'by-id') });
    assert.equal((await glance().resolveImage(ID1)).name, 'by-id');
    srv.script('GET', `/v2/images/${ID2}`, { status: 404, body: '404 Not Found' });
    srv.script('GET', '/v2/images', { status: 200, body: { images: [image(ID1, ID2)] } });
    assert.equal((await glance().resolveImage(ID2)).id, ID1, 'an image may be named like a UUID');
    srv.script('GET', '/v2/images', { status: 200, body: { images: [image(ID2, 'debian-12')] } });
    assert.equal((await glance().resolveImage('debian-12')).id, ID2);
  });

  it('other errors of the id lookup surface unchanged', async () => {
    srv.script('GET', `/v2/images/${ID1}`, { status: 403, body: 'forbidden' });
    await assert.rejects(
      glance().resolveImage(ID1),
      (err: unknown) => err instanceof OpenStackError && err.forbidden,
    );
  });
});
