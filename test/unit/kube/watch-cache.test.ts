/**
 * WatchCache's list/watch state machine with a scripted ListWatcher (the real API server path —
 * reconnects across a real restart — is covered by test/integration/kube/connector.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ListWatcher,
  WatchCache,
  type WatchEvent,
  WatchGoneError,
} from '../../../src/kube/watch-cache.ts';
import { silentLogger } from '../../../src/util/logger.ts';

interface Obj {
  metadata: { name: string; resourceVersion: string };
  v: number;
}
const obj = (name: string, rv: number, v = 0): Obj => ({
  metadata: { name, resourceVersion: String(rv) },
  v,
});

type WatchScript = (rv: string, emit: (e: WatchEvent<Obj>) => void, signal: AbortSignal) => Promise<void>;

class Scripted implements ListWatcher<Obj> {
  lists: Obj[][] = [];
  watches: WatchScript[] = [];
  watchedFrom: string[] = [];
  listCalls = 0;
  #rv = 100;
  async list() {
    this.listCalls++;
    const items = this.lists.shift();
    if (!items) throw new Error('list failed (scripted)');
    return { items, resourceVersion: String(++this.#rv) };
  }
  watch(rv: string, emit: (e: WatchEvent<Obj>) => void, signal: AbortSignal) {
    this.watchedFrom.push(rv);
    const step = this.watches.shift();
    if (step) return step(rv, emit, signal);
    return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }
}

function cache(source: Scripted, changes: string[] = []) {
  return new WatchCache<Obj, number>({
    name: 'things',
    source,
    keyOf: (o) => o.metadata.name,
    project: (o) => o.v,
    logger: silentLogger(),
    backoffInitialMs: 5,
    backoffMaxMs: 20,
    onChange: (type, key, value) => changes.push(`${type} ${key} ${value ?? ''}`.trim()),
  });
}

async function until(check: () => boolean, what: string) {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('WatchCache', () => {
  it('lists, becomes ready, applies watch events and resumes from the last resourceVersion', async () => {
    const s = new Scripted();
    const changes: string[] = [];
    s.lists.push([obj('a', 1, 1)]);
    s.watches.push(async (_rv, emit) => {
      emit({ type: 'ADDED', object: obj('b', 102, 2) });
      emit({ type: 'MODIFIED', object: obj('a', 103, 3) });
      emit({ type: 'BOOKMARK', resourceVersion: '110' });
      emit({ type: 'DELETED', object: obj('b', 111, 2) });
      // stream closed by the server (timeoutSeconds): resolve → re-watch, no re-list
    });
    const c = cache(s, changes);
    c.start();
    await c.ready;
    await until(() => s.watchedFrom.length === 2, 'second watch');
    assert.deepEqual(s.watchedFrom, ['101', '111']);
    assert.equal(s.listCalls, 1);
    assert.deepEqual(changes, ['ADDED a 1', 'ADDED b 2', 'MODIFIED a 3', 'DELETED b']);
    assert.equal(c.get('a'), 3);
    assert.equal(c.has('b'), false);
    await c.stop();
  });

  it('re-lists after 410 Gone and reports what changed meanwhile (including deletions)', async () => {
    const s = new Scripted();
    const changes: string[] = [];
    s.lists.push([obj('a', 1, 1), obj('b', 2, 2)], [obj('a', 1, 5), obj('c', 3, 7)]);
    s.watches.push(async () => {
      throw new WatchGoneError('too old');
    });
    const c = cache(s, changes);
    c.start();
    await until(() => s.listCalls === 2 && s.watchedFrom.length === 2, 're-list');
    assert.deepEqual(changes, ['ADDED a 1', 'ADDED b 2', 'MODIFIED a 5', 'ADDED c 7', 'DELETED b']);
    assert.equal(c.stats.gone, 1);
    await c.stop();
  });

  it('keeps serving the last state while list/watch fail, backs off, then recovers by re-listing', async () => {
    const s = new Scripted();
    s.lists.push([obj('a', 1, 1)]);
    s.watches.push(async () => {
      throw new Error('connection reset');
    });
    const c = cache(s);
    c.start();
    await c.ready;
    // the next list fails (nothing scripted) a few times; the store still answers
    await until(() => s.listCalls >= 3, 'retries');
    assert.equal(c.get('a'), 1);
    s.lists.push([obj('a', 1, 9)]);
    await until(() => c.get('a') === 9, 'recovered');
    assert.ok(c.stats.errors >= 3);
    await c.stop();
  });

  it('waitReady honours an abort signal when the first list never succeeds', async () => {
    const s = new Scripted(); // every list fails
    const c = cache(s);
    c.start();
    await assert.rejects(c.waitReady(AbortSignal.timeout(50)), { name: 'AbortedError' });
    await c.stop();
  });
});
