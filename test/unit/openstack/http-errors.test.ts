/**
 * OpenStackError: fault body parsing for every shape Cinder/Keystone/proxies send, predicates,
 * and no secrets in messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  OpenStackError,
  parseFaultMessage,
  parseRetryAfter,
  stripQuery,
} from '../../../src/openstack/errors.ts';

const err = (status: number | undefined, faultMessage: string) =>
  new OpenStackError({ status, faultMessage, method: 'GET', url: 'http://h/v3/p/volumes' });

describe('parseFaultMessage', () => {
  it('reads Cinder faults of any top-level key', () => {
    assert.equal(
      parseFaultMessage({ itemNotFound: { message: 'Volume x could not be found.', code: 404 } }, 404),
      'Volume x could not be found.',
    );
    assert.equal(
      parseFaultMessage({ badRequest: { message: 'Invalid input received: size', code: 400 } }, 400),
      'Invalid input received: size',
    );
    assert.equal(
      parseFaultMessage(
        {
          overLimit: {
            message:
              'VolumeSizeExceedsLimit: Requested volume size 5000G is larger than maximum allowed limit 1000G.',
            code: 413,
            retryAfter: '0',
          },
        },
        413,
      ),
      'VolumeSizeExceedsLimit: Requested volume size 5000G is larger than maximum allowed limit 1000G.',
    );
  });

  it("reads Keystone's error object", () => {
    assert.equal(
      parseFaultMessage(
        {
          error: {
            code: 401,
            title: 'Unauthorized',
            message: 'The request you have made requires authentication.',
          },
        },
        401,
      ),
      'The request you have made requires authentication.',
    );
  });

  it('reads JSON sent as text, plain text and HTML error pages', () => {
    assert.equal(parseFaultMessage('{"conflictingRequest": {"message": "busy", "code": 409}}', 409), 'busy');
    assert.equal(parseFaultMessage('  upstream\n connect error  ', 502), 'upstream connect error');
    assert.equal(
      parseFaultMessage(
        '<html><head><title>503 Service Unavailable</title></head><body><h1>503 Service Unavailable</h1>No server is available &amp; sorry</body></html>',
        503,
      ),
      '503 Service Unavailable No server is available & sorry',
    );
  });

  it('falls back to the status when the body says nothing', () => {
    assert.equal(parseFaultMessage(undefined, 500), 'HTTP 500');
    assert.equal(parseFaultMessage({}, 404), 'HTTP 404');
    assert.equal(parseFaultMessage('', undefined), 'no response');
  });

  it('truncates huge bodies', () => {
    assert.ok(parseFaultMessage('x'.repeat(5000), 500).length <= 1003);
  });
});

describe('OpenStackError', () => {
  it('has predicates for the statuses the CSI layer maps', () => {
    assert.equal(err(404, 'x').notFound, true);
    assert.equal(err(409, 'x').conflict, true);
    assert.equal(err(400, 'x').badRequest, true);
    assert.equal(err(401, 'x').unauthorized, true);
    assert.equal(err(403, 'x').forbidden, true);
    for (const s of [502, 503, 504, 429, undefined]) assert.equal(err(s, 'x').retryable, true, String(s));
    for (const s of [400, 404, 409, 413, 500]) assert.equal(err(s, 'x').retryable, false, String(s));
  });

  it('overQuota: 413, or quota wording from Cinder on other statuses', () => {
    assert.equal(err(413, 'Request Entity Too Large').overQuota, true);
    assert.equal(
      err(400, "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded for quota 'volumes'.")
        .overQuota,
      true,
    );
    assert.equal(err(400, 'Requested volume or snapshot exceeds allowed gigabytes quota.').overQuota, true);
    assert.equal(err(400, 'Invalid input received').overQuota, false);
    assert.equal(err(404, 'Volume could not be found').overQuota, false);
  });

  it('keeps the service words, strips the query and userinfo from the URL', () => {
    const e = new OpenStackError({
      status: 413,
      faultMessage:
        "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded for quota 'volumes'.",
      method: 'POST',
      url: 'http://user:pw@h:8776/v3/p/volumes?token=abc#frag',
      requestId: 'req-1',
    });
    assert.equal(e.url, 'http://h:8776/v3/p/volumes');
    assert.equal(
      e.message,
      "POST http://h:8776/v3/p/volumes -> HTTP 413: VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded for quota 'volumes'. (request id req-1)",
    );
    assert.doesNotMatch(e.message, /abc|pw/);
  });

  it('stripQuery leaves plain URLs alone', () => {
    assert.equal(stripQuery('http://h/x'), 'http://h/x');
  });
});

describe('parseRetryAfter', () => {
  it('accepts seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter('0.5'), 500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000);
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
  });
});
