/**
 * TLS of the HTTP core against a real local HTTPS server with a throw-away CA made by openssl:
 * CA file, client certificate (mutual TLS), the insecure switch (and its warning), and the refusal
 * of https -> http redirects.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { OpenStackError } from '../../../src/openstack/errors.ts';
import { HttpClient } from '../../../src/openstack/http.ts';
import { createLogger, silentLogger } from '../../../src/util/logger.ts';

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, timeout: 30_000, stdio: 'pipe' });
}

function makePki(dir: string): void {
  const subj = (cn: string) => ['-subj', `/CN=${cn}`];
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    ...subj('test-ca'),
  );
  for (const name of ['server', 'client']) {
    openssl(
      dir,
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      ...subj(name),
    );
  }
  const ext = join(dir, 'server.ext');
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${JSON.stringify(ext)}`], {
    timeout: 5000,
  });
  // Signed by the CA for a day; the server's certificate with its subjectAltName.
  const sign = (name: string, ...extra: string[]) =>
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      ...extra,
    );
  sign('server', '-extfile', 'server.ext');
  sign('client');
}

describe('HttpClient TLS', () => {
  let dir: string;
  let server: Server;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cinder-csi-tls-'));
    makePki(dir);
    server = createServer(
      {
        key: readFileSync(join(dir, 'server.key')),
        cert: readFileSync(join(dir, 'server.pem')),
        ca: readFileSync(join(dir, 'ca.pem')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        if (req.url === '/downgrade') {
          res.writeHead(302, { location: 'http://127.0.0.1:1/plain' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ tls: true }));
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const mtls = () => ({
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'client.pem'),
    keyFile: join(dir, 'client.key'),
    insecure: false,
  });

  it('verifies the server with the CA file and presents the client certificate', async () => {
    const http = new HttpClient({ logger: silentLogger(), tls: mtls() });
    try {
      const res = await http.request({ method: 'GET', url: `${url}/x` });
      assert.deepEqual(res.body, { tls: true });
    } finally {
      await http.close();
    }
  });

  it('rejects an unknown CA at once (no retries for certificate errors)', async () => {
    const http = new HttpClient({ logger: silentLogger(), tls: { insecure: false }, retries: 3 });
    try {
      await assert.rejects(http.request({ method: 'GET', url: `${url}/x` }), (err) => {
        assert.ok(err instanceof OpenStackError);
        assert.equal(err.status, undefined);
        assert.match(err.message, /certificate|self.signed|issuer/i);
        return true;
      });
    } finally {
      await http.close();
    }
  });

  it('insecure skips verification and logs a warning', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const tls = { ...mtls(), insecure: true };
    delete (tls as { caFile?: string }).caFile;
    const http = new HttpClient({ logger: createLogger({ level: 'info', destination }), tls });
    try {
      assert.equal((await http.request({ method: 'GET', url: `${url}/x` })).status, 200);
      assert.ok(lines.some((l) => /"level":"warn".*verification is DISABLED/.test(l)));
    } finally {
      await http.close();
    }
  });

  it('refuses to follow a redirect from https to http', async () => {
    const http = new HttpClient({ logger: silentLogger(), tls: mtls() });
    try {
      await assert.rejects(
        http.request({ method: 'GET', url: `${url}/downgrade` }),
        /refusing redirect from https to http/,
      );
    } finally {
      await http.close();
    }
  });

  it('fails clearly on an unreadable CA file or a certificate without key', () => {
    assert.throws(
      () =>
        new HttpClient({
          logger: silentLogger(),
          tls: { caFile: join(dir, 'missing.pem'), insecure: false },
        }),
      /cannot read TLS CA file .*missing\.pem: ENOENT/,
    );
    assert.throws(
      () =>
        new HttpClient({
          logger: silentLogger(),
          tls: { certFile: join(dir, 'client.pem'), insecure: false },
        }),
      /certificate and key must be given together/,
    );
  });
});
