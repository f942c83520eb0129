/**
 * deleteUnderWay (src/csi/delete-under-way.ts): which failures of a repeated DELETE mean "Cinder is
 * already deleting it". Plain functions stand in for the Cinder calls; the lab test
 * test/integration/chaos/lost-answers.test.ts loses real DELETE answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deleteUnderWay } from '../../../src/csi/delete-under-way.ts';
import { Code, CsiError } from '../../../src/csi/errors.ts';
import { OpenStackError } from '../../../src/openstack/errors.ts';

const fail = (status: number | undefined, faultMessage: string) =>
  new OpenStackError({ status, faultMessage, method: 'DELETE', url: 'http://c/v3/p/volumes/x' });
const refuse = (status: number, msg: string) => async () => {
  throw fail(status, msg);
};
const statusIs = (status: string) => async () => ({ status });
const gone = async () => {
  throw fail(404, 'Volume x could not be found.');
};

describe('deleteUnderWay', () => {
  it('OK: the DELETE accepted, or 404', async () => {
    let looked = 0;
    const look = async () => {
      looked++;
      return { status: 'available' };
    };
    await deleteUnderWay(async () => undefined, look);
    await deleteUnderWay(refuse(404, 'Volume x could not be found.'), look);
    assert.equal(looked, 0, 'no GET unless Cinder refused');
  });

  it('a 400 while Cinder already deletes it, or after it is gone, is the earlier DELETE under way', async () => {
    const busy = refuse(400, 'Invalid volume: Volume status must be available or error ...');
    await deleteUnderWay(busy, statusIs('deleting'));
    await deleteUnderWay(busy, gone);
  });

  it('a 400 whose status lookup fails transiently is UNAVAILABLE: it may be the earlier delete', async () => {
    const busy = refuse(400, 'Invalid volume: Volume status must be available or error ...');
    for (const lookupStatus of [undefined, 500, 503, 429]) {
      await assert.rejects(
        deleteUnderWay(busy, async () => {
          throw fail(lookupStatus, 'down');
        }),
        (err: unknown) =>
          err instanceof CsiError &&
          err.code === Code.UNAVAILABLE &&
          /refused the delete .*HTTP 400.*status then failed.*retry/.test(err.message),
      );
    }
    const aborted = new Error('aborted');
    await assert.rejects(
      deleteUnderWay(busy, async () => {
        throw aborted;
      }),
      (err: unknown) => err === aborted,
      'an aborted lookup keeps its own error (the deadline)',
    );
  });

  it('a 400 for a real precondition (not deleting), a lookup refused for good, other errors: thrown unchanged', async () => {
    const busy = refuse(400, 'Invalid volume: Volume status must be available or error ... attached');
    await assert.rejects(deleteUnderWay(busy, statusIs('in-use')), /HTTP 400/);
    await assert.rejects(
      deleteUnderWay(busy, async () => {
        throw fail(403, 'policy');
      }),
      /HTTP 400/,
    );
    await assert.rejects(deleteUnderWay(refuse(503, 'down'), statusIs('deleting')), /HTTP 503/);
    await assert.rejects(deleteUnderWay(refuse(403, 'policy'), statusIs('deleting')), /HTTP 403/);
  });
});
