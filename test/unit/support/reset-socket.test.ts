/**
 * The chaos suites' connection reset (test/support/reset-socket.ts) must not keep a process alive:
 * `resetAndDestroy()` on a socket whose peer already went away and whose write side is shutting
 * down leaves a handle Node never closes, and the process then spins at exit instead of exiting
 * (the crash suite's file kept running after its test passed). Checked in a child process on real
 * loopback sockets: the situation is made exact (the peer's FIN answered with end(), then reset at
 * once); the child must exit on its own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';

const helper = resolve(import.meta.dirname, '../../support/reset-socket.ts');

const child = `
import net from 'node:net';
import { resetSocket } from ${JSON.stringify(helper)};
const srv = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', () => {});
  s.on('end', () => {
    s.end(); // as the HTTP server does when the caller goes away
    resetSocket(s); // the proxy's fault/kill hook, in the same moment
    srv.close();
  });
  s.resume();
});
srv.listen(0, '127.0.0.1', () => {
  const c = net.connect(srv.address().port, '127.0.0.1', () => c.end('x'));
  c.on('error', () => {});
  c.resume();
});
`;

test('resetSocket on a connection whose caller went away lets the process exit', () => {
  // 60 s is a bound for a hang (the process never exits), not a timing assertion.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], {
    timeout: 60_000,
    encoding: 'utf8',
  });
  assert.equal(r.signal, null, `the process did not exit on its own (${r.signal}); stderr: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
});
