/** Assertions on the CsiError a CSI service call answers, shared by the unit and lab tests. */
import assert from 'node:assert/strict';
import { CsiError } from '../../src/csi/errors.ts';

/**
 * Asserts that `p` rejects with a CsiError of gRPC `code` (and, if given, a message matching
 * `message`); returns the error for further checks.
 */
export async function rejectsWith(p: Promise<unknown>, code: number, message?: RegExp): Promise<CsiError> {
  const err = await p.then(
    () => assert.fail(`expected CsiError ${code}, got success`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CsiError, `expected CsiError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, `code ${err.code} (${err.message})`);
  if (message) assert.match(err.message, message);
  return err;
}
