import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WaitOptions } from '../../../src/openstack/cinder-api.ts';
import {
  DEFAULT_POLL_SCHEDULE,
  pollDelays,
  WaitAbortedError,
  WaitFailedError,
  waitForObject,
  waitForStatus,
} from '../../../src/openstack/waiter.ts';
import { AbortedError } from '../../../src/util/abort.ts';

const FAST = { firstMs: 1, factor: 1.5, capMs: 5 };

/** A resource whose GET answers the given statuses in turn (the last one repeats). */
function sequence(statuses: (string | Error)[]) {
  let calls = 0;
  const fetch = async () => {
    const s = statuses[Math.min(calls, statuses.length - 1)]!;
    calls++;
    if (s instanceof Error) throw s;
    return { id: 'v1', status: s };
  };
  return { fetch, calls: () => calls };
}

/** Waits for volume v1 as the Cinder client's waitForX do (waitForObject), on the fast schedule. */
function waitV1(
  fetch: () => Promise<{ id: string; status: string }>,
  wait: WaitOptions,
  more: Parameters<typeof waitForObject>[4] = {},
) {
  return waitForObject('volume', 'v1', fetch, wait, { schedule: FAST, ...more });
}

function httpError(props: { notFound?: boolean; retryable?: boolean }): Error {
  return Object.assign(new Error('http error'), props);
}

describe('pollDelays', () => {
  it('starts within 50-100 ms, grows x1.5 and caps at 2.5 s', () => {
    const gen = pollDelays();
    const first = Array.from({ length: 12 }, () => gen.next().value);
    assert.deepEqual(first, [75, 113, 169, 253, 380, 570, 854, 1281, 1922, 2500, 2500, 2500]);
    assert.ok(DEFAULT_POLL_SCHEDULE.firstMs >= 50 && DEFAULT_POLL_SCHEDULE.firstMs <= 100);
  });
});

describe('waitForStatus (through waitForObject, as the Cinder client waits)', () => {
  it('returns the object once it reaches a target status', async () => {
    const r = sequence(['creating', 'creating', 'available']);
    const v = await waitV1(r.fetch, { target: ['available'] });
    assert.equal(v?.status, 'available');
    assert.equal(r.calls(), 3);
  });

  it('fails fast on an error status, with the explanation', async () => {
    const r = sequence(['creating', 'error', 'available']);
    await assert.rejects(
      waitV1(r.fetch, { target: ['available'] }, { explain: async () => 'No valid backend was found.' }),
      (err: unknown) => {
        assert.ok(err instanceof WaitFailedError);
        assert.equal(err.status, 'error');
        assert.equal(err.reason, 'No valid backend was found.');
        assert.match(err.message, /volume v1 went to status "error".*No valid backend/);
        return true;
      },
    );
    assert.equal(r.calls(), 2);
  });

  it('treats error_extending etc. as failures by default, and honours an explicit failOn', async () => {
    await assert.rejects(
      waitV1(sequence(['extending', 'error_extending']).fetch, { target: ['available'] }),
      WaitFailedError,
    );
    const v = await waitV1(sequence(['error', 'available']).fetch, {
      target: ['available'],
      failOn: ['error_deleting'],
    });
    assert.equal(v?.status, 'available');
  });

  it('gone: a 404 ends the wait with undefined; without gone the 404 surfaces', async () => {
    const notFound = httpError({ notFound: true });
    const gone = await waitV1(sequence(['deleting', notFound]).fetch, { target: [], gone: true });
    assert.equal(gone, undefined);
    await assert.rejects(
      waitV1(sequence([notFound]).fetch, { target: ['available'] }),
      (err) => err === notFound,
    );
  });

  it('tolerates a few retryable GET failures in a row, not more', async () => {
    const flaky = httpError({ retryable: true });
    const v = await waitV1(sequence([flaky, flaky, 'available']).fetch, { target: ['available'] });
    assert.equal(v?.status, 'available');
    await assert.rejects(
      waitV1(sequence([flaky]).fetch, { target: ['available'] }, { maxTransientErrors: 2 }),
      (err) => err === flaky,
    );
  });

  it('stops promptly when the caller aborts, reporting the last status', async () => {
    const ctl = new AbortController();
    const r = sequence(['creating']);
    const started = Date.now();
    setTimeout(() => ctl.abort(new Error('deadline exceeded')), 60);
    await assert.rejects(
      waitV1(
        r.fetch,
        { target: ['available'], signal: ctl.signal },
        { schedule: { firstMs: 10, factor: 1, capMs: 10 } },
      ),
      (err: unknown) => {
        assert.ok(err instanceof WaitAbortedError);
        assert.ok(err instanceof AbortedError);
        assert.equal(err.lastStatus, 'creating');
        assert.match(
          err.message,
          /deadline exceeded while waiting for volume v1 to become available \(last status: creating\)/,
        );
        return true;
      },
    );
    assert.ok(Date.now() - started < 1000);
    assert.ok(r.calls() >= 2);
  });

  it('passes the abort signal to the in-flight GET and honours timeoutMs', async () => {
    let seen: AbortSignal | undefined;
    const hanging = (signal: AbortSignal | undefined) =>
      new Promise<{ status: string }>((_resolve, reject) => {
        seen = signal;
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    await assert.rejects(
      waitForStatus({
        resource: 'snapshot',
        id: 's1',
        fetch: hanging,
        status: (o) => o.status,
        target: ['available'],
        timeoutMs: 50,
        schedule: FAST,
      }),
      WaitAbortedError,
    );
    assert.equal(seen?.aborted, true);
  });
});
