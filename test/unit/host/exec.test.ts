import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { CommandError, exitedWith, HostExecutor, maskSecrets } from '../../../src/host/exec.ts';
import { createLogger, silentLogger } from '../../../src/util/logger.ts';

function capturingLogger() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
  return { logger: createLogger({ level: 'debug', destination: stream }), lines };
}

const exec = new HostExecutor({ logger: silentLogger() });

/** Running (a killed orphan may linger as a zombie when pid 1 does not reap: that counts as dead). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

describe('HostExecutor', () => {
  it('runs an argument array without a shell and captures output and code', async () => {
    const r = await exec.run('printf', ['%s|', 'a b', '$(echo no)', ';rm -rf x']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'a b|$(echo no)|;rm -rf x|');
    assert.ok(r.durationMs >= 0);
  });

  it('passes stdin input', async () => {
    const r = await exec.run('cat', [], { input: 'hello\n' });
    assert.equal(r.stdout, 'hello\n');
  });

  it('without input, stdin is /dev/null (no pipe made; a tool reading it gets EOF at once)', async () => {
    assert.equal((await exec.run('readlink', ['/proc/self/fd/0'])).stdout.trim(), '/dev/null');
    assert.equal((await exec.run('cat', [])).stdout, '');
  });

  it('maps a non-zero exit code to CommandError with code and stderr', async () => {
    const e = await exec.run('sh', ['-c', 'echo boom >&2; exit 3']).catch((x: unknown) => x);
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, 3);
    assert.equal(e.stderr, 'boom');
    assert.equal(e.timedOut, false);
    assert.equal(e.notFound, false);
    assert.match(e.message, /exit code 3/);
    assert.ok(exitedWith(e, 3));
    assert.ok(!exitedWith(e, 21));
  });

  it('treats okCodes as success', async () => {
    const r = await exec.run('sh', ['-c', 'exit 15'], { okCodes: [0, 15] });
    assert.equal(r.code, 15);
  });

  it('reports a missing tool as notFound', async () => {
    const e = await exec.run('no-such-tool-cinder-csi', ['x']).catch((x: unknown) => x);
    assert.ok(e instanceof CommandError);
    assert.equal(e.notFound, true);
    assert.equal(e.code, null);
    assert.match(e.message, /command not found/);
  });

  it('kills the whole process group on timeout', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'exec-test-'));
    try {
      const pidFile = path.join(dir, 'pid');
      const started = Date.now();
      const e = await exec
        .run('sh', ['-c', `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 })
        .catch((x: unknown) => x);
      assert.ok(e instanceof CommandError);
      assert.equal(e.timedOut, true);
      assert.equal(e.code, null);
      assert.ok(Date.now() - started < 5000);
      const grandchild = Number(readFileSync(pidFile, 'utf8'));
      // The background sleep (a grandchild) must be gone too.
      for (let i = 0; i < 20 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(alive(grandchild), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('aborts on signal', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const e = await exec.run('sleep', ['10'], { signal: ac.signal }).catch((x: unknown) => x);
    assert.ok(e instanceof CommandError);
    assert.equal(e.aborted, true);
  });

  it('masks secrets in logged command lines, errors and output', async () => {
    const { logger, lines } = capturingLogger();
    const x = new HostExecutor({ logger });
    const secret = 'S3cr3t-CHAP-pw';
    const ok = await x.run('echo', ['-v', secret], { secrets: [secret] });
    assert.equal(ok.stdout, '-v ***\n');
    const e = await x
      .run('sh', ['-c', `echo "bad ${secret}" >&2; exit 1`, secret], { secrets: [secret] })
      .catch((z: unknown) => z);
    assert.ok(e instanceof CommandError);
    assert.ok(!e.message.includes(secret), e.message);
    assert.ok(!e.args.join(' ').includes(secret));
    assert.ok(!e.stderr.includes(secret));
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(lines.length >= 2, 'each command is logged at debug');
    for (const l of lines) assert.ok(!l.includes(secret), l);
    assert.ok(lines.some((l) => l.includes('"durationMs"')));
  });

  it('maskSecrets replaces longest first and ignores empty secrets', () => {
    assert.equal(maskSecrets('abc abcd', ['abc', 'abcd', '']), '*** ***');
    assert.equal(maskSecrets('x', undefined), 'x');
  });

  it('puts pathPrepend first on PATH', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'exec-path-'));
    try {
      writeFileSync(path.join(dir, 'uname'), '#!/bin/sh\necho double "$@"\n');
      chmodSync(path.join(dir, 'uname'), 0o755);
      const x = new HostExecutor({ logger: silentLogger(), pathPrepend: [dir] });
      assert.equal((await x.run('uname', ['-r'])).stdout, 'double -r\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs commands through the host wrapper', async () => {
    const x = new HostExecutor({ logger: silentLogger(), wrapper: ['env', 'WRAPPED=1'] });
    const r = await x.run('sh', ['-c', 'echo $WRAPPED']);
    assert.equal(r.stdout, '1\n');
  });

  it('bounds captured output', async () => {
    const r = await exec.run('head', ['-c', String(6 * 1024 * 1024), '/dev/zero']);
    assert.equal(r.stdout.length, 4 * 1024 * 1024);
  });
});
