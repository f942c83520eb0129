/**
 * TestWork (test/support/test-work.ts): when a test times out, node:test runs the suite's after
 * hooks at once while the body goes on; a body that creates something after that point leaks it.
 * In a child `node --test` run, a body that times out and then "creates" a resource (a file): the
 * after hook, waiting on TestWork first, finds it and removes it; the body saw its signal aborted.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const helper = resolve(import.meta.dirname, '../../support/test-work.ts');

test('the after hook of a timed-out test waits for its body, then cleans up what the body created', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'test-work-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const resource = join(dir, 'resource');
  const file = join(dir, 'child.test.ts');
  writeFileSync(
    file,
    `
import { writeFileSync, appendFileSync, existsSync, rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { TestWork } from ${JSON.stringify(helper)};
const work = new TestWork();
const note = (l: string) => appendFileSync(${JSON.stringify(join(dir, 'notes'))}, l + '\\n');
describe('suite', () => {
  after(async () => {
    await work.settled();
    note('after: resource ' + (existsSync(${JSON.stringify(resource)}) ? 'there' : 'absent'));
    rmSync(${JSON.stringify(resource)}, { force: true });
  });
  test('slow', { timeout: 100 }, (t) =>
    work.run(t, async (signal) => {
      await new Promise((r) => setTimeout(r, 600));
      note('body: signal ' + (signal.aborted ? 'aborted' : 'not aborted'));
      writeFileSync(${JSON.stringify(resource)}, 'x');
    }));
});
`,
  );
  // a child test run of its own (not a subtest of this one)
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], {
    encoding: 'utf8',
    env,
    timeout: 60_000,
  });
  assert.match(r.stdout, /test timed out after 100ms/, r.stdout + r.stderr);
  assert.equal(
    readFileSync(join(dir, 'notes'), 'utf8'),
    'body: signal aborted\nafter: resource there\n',
    'the hook ran after the body ended',
  );
  assert.equal(existsSync(resource), false, 'nothing left behind');
});
