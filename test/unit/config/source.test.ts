/**
 * Credential rotation: real files, real fs.watch (polling disabled so the watch path is what is
 * tested), including the Kubernetes Secret volume layout where `..data` is a symlink swapped
 * atomically.
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudConfigSource } from '../../../src/config/source.ts';
import type { CloudConfig } from '../../../src/config/types.ts';
import { createLogger } from '../../../src/util/logger.ts';
import { assertNoSecret, NO_ENV, PLANTED, tempDir } from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

function confText(password: string, comment = ''): string {
  return [
    comment,
    '[Global]',
    'auth-url = http://keystone.example:5000/v3',
    'user-id = u1',
    `password = ${password}`,
    'tenant-id = p1',
    '',
  ].join('\n');
}

/** Collects the JSON lines a pino logger writes. */
function captureLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination }) };
}

/** Polls `predicate` with a referenced timer (keeps the event loop alive while waiting). */
async function waitFor(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
    await sleep(20);
  }
}

/** Longer than the debounce plus slack: used to assert that nothing (more) happens. */
const QUIET_MS = 600;
const sourceOptions = { env: NO_ENV, configDirs: [], debounceMs: 100, pollIntervalMs: 0 };

describe('CloudConfigSource', () => {
  it('load() re-reads the files', () => {
    const file = tmp.write('reload/cloud.conf', confText('first-pw'));
    const source = new CloudConfigSource({ ...sourceOptions, files: [file] });
    assert.equal(source.load().auth.password, 'first-pw');
    writeFileSync(file, confText('second-pw'));
    assert.equal(source.load().auth.password, 'second-pw');
    assert.equal(source.current?.auth.password, 'second-pw');
    assert.deepEqual(source.files, [file]);
  });

  it('calls onChange once with the new password; not for an unchanged rewrite', async () => {
    const file = tmp.write('plain/cloud.conf', confText('old-pw'));
    const source = new CloudConfigSource({ ...sourceOptions, files: [file] });
    const seen: CloudConfig[] = [];
    const stop = source.watch((cfg) => seen.push(cfg));
    try {
      assert.equal(source.current?.auth.password, 'old-pw');
      // Same settings, different bytes: no callback.
      writeFileSync(file, confText('old-pw', '# rewritten by config management'));
      await sleep(QUIET_MS);
      assert.equal(seen.length, 0);

      writeFileSync(file, confText('new-pw'));
      await waitFor(() => seen.length > 0);
      await sleep(QUIET_MS);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.auth.password, 'new-pw');
    } finally {
      stop();
    }
  });

  it('follows a Kubernetes Secret volume ..data symlink swap', async () => {
    const dir = join(tmp.dir, 'secret-volume');
    mkdirSync(join(dir, '..2026_01'), { recursive: true });
    writeFileSync(join(dir, '..2026_01', 'cloud.conf'), confText('v1-pw'));
    symlinkSync('..2026_01', join(dir, '..data'));
    symlinkSync('..data/cloud.conf', join(dir, 'cloud.conf'));

    const source = new CloudConfigSource({ ...sourceOptions, files: [join(dir, 'cloud.conf')] });
    const seen: string[] = [];
    const stop = source.watch((cfg) => seen.push(cfg.auth.password ?? ''));
    try {
      // What the kubelet's atomic writer does: new timestamped dir, new symlink, rename over ..data.
      mkdirSync(join(dir, '..2026_02'));
      writeFileSync(join(dir, '..2026_02', 'cloud.conf'), confText('v2-pw'));
      symlinkSync('..2026_02', join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      rmSync(join(dir, '..2026_01'), { recursive: true });
      await waitFor(() => seen.length > 0);
      await sleep(QUIET_MS);
      assert.deepEqual(seen, ['v2-pw']);
    } finally {
      stop();
    }
  });

  it('keeps the previous config while the file is invalid and logs no secret', async () => {
    const file = tmp.write('invalid/cloud.conf', confText('good-pw'));
    const { lines, log } = captureLogger();
    const source = new CloudConfigSource({ ...sourceOptions, files: [file] });
    const seen: string[] = [];
    const stop = source.watch((cfg) => seen.push(cfg.auth.password ?? ''), log);
    try {
      // Half-written: the password is there but auth-url is broken.
      writeFileSync(file, confText(PLANTED).replace('http://keystone.example:5000/v3', PLANTED));
      await waitFor(() => lines.some((l) => l.includes('reload failed')));
      assert.equal(source.current?.auth.password, 'good-pw');
      assert.equal(seen.length, 0);
      const warning = lines.find((l) => l.includes('reload failed')) ?? '';
      assert.match(warning, /\[Global\] auth-url: not a valid URL/);

      writeFileSync(file, confText(PLANTED));
      await waitFor(() => seen.length > 0);
      assert.deepEqual(seen, [PLANTED]);
      for (const line of lines) assertNoSecret(line);
    } finally {
      stop();
    }
  });

  it('stops calling after the returned stop function', async () => {
    const file = tmp.write('stop/cloud.conf', confText('a-pw'));
    const source = new CloudConfigSource({ ...sourceOptions, files: [file] });
    let calls = 0;
    const stop = source.watch(() => calls++);
    stop();
    writeFileSync(file, confText('b-pw'));
    await sleep(QUIET_MS);
    assert.equal(calls, 0);
  });
});
