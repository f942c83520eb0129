import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { envName, FlagError, parseFlags } from '../../../src/cli/flags.ts';

const main = new URL('../../../src/cli/main.ts', import.meta.url).pathname;
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [main, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'], ...env },
    timeout: 20_000,
  });

describe('parseFlags', () => {
  test('defaults and required mode', () => {
    const r = parseFlags(['--mode', 'controller'], {});
    assert.equal(r.kind, 'run');
    if (r.kind !== 'run') return;
    assert.equal(r.flags.endpoint, 'unix:///csi/csi.sock');
    assert.equal(r.flags.driverName, 'cinder.csi.dev');
    assert.equal(r.flags.logLevel, 'info');
    assert.deepEqual(r.flags.cloudConfig, []);
    assert.equal(r.flags.stateDir, '/var/lib/kubelet/plugins/cinder.csi.dev/volumes');
    assert.throws(
      () => parseFlags([], {}),
      (e: Error) => e instanceof FlagError && /--mode is required/.test(e.message),
    );
  });

  test('every flag has a matching environment variable; the flag wins', () => {
    const env = {
      [envName('mode')]: 'node',
      [envName('endpoint')]: 'tcp://127.0.0.1:10000',
      [envName('node-id')]: 'node-a',
      [envName('cloud-config')]: '/a.conf,/b.conf',
      [envName('log-level')]: 'debug',
      [envName('node-stage-secrets')]: 'true',
    };
    const r = parseFlags(['--node-id', 'node-b'], env);
    assert.equal(r.kind, 'run');
    if (r.kind !== 'run') return;
    assert.equal(r.flags.mode, 'node');
    assert.equal(r.flags.endpoint, 'tcp://127.0.0.1:10000');
    assert.equal(r.flags.nodeId, 'node-b');
    assert.deepEqual(r.flags.cloudConfig, ['/a.conf', '/b.conf']);
    assert.equal(r.flags.logLevel, 'debug');
    assert.equal(r.flags.nodeStageSecrets, true);
    const r2 = parseFlags(['--mode', 'all', '--cloud-config', '/x', '--cloud-config', '/y'], env);
    assert.ok(r2.kind === 'run' && r2.flags.mode === 'all' && r2.flags.cloudConfig.join() === '/x,/y');
  });

  const bad: [string[], RegExp][] = [
    [['--mode', 'both'], /--mode both: expected controller, node or all/],
    [['--mode', 'node', '--endpoint', 'unix://relative.sock'], /must be absolute/],
    [['--mode', 'node', '--endpoint', 'http://x'], /expected unix:\/\/\/path or tcp:\/\/host:port/],
    [['--mode', 'node', '--log-level', 'loud'], /--log-level loud/],
    [['--mode', 'node', '--metrics-address', 'nope'], /--metrics-address nope/],
    [['--mode', 'node', '--driver-name', 'Bad_Name'], /--driver-name Bad_Name/],
    [['--mode', 'node', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['--mode', 'node', 'extra'], /positional argument/],
  ];
  for (const [args, re] of bad) {
    test(`rejects ${args.join(' ')}`, () => {
      assert.throws(
        () => parseFlags(args, {}),
        (e: Error) => e instanceof FlagError && re.test(e.message),
      );
    });
  }
});

describe('cinder-csi process', () => {
  test('--version prints name and version, exit 0', () => {
    const r = run(['--version']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^cinder-csi \d+\.\d+\.\d+/);
  });

  test('--help lists every flag with its environment variable, exit 0', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--cloud-config FILE/);
    assert.match(r.stdout, /\[CSI_METRICS_ADDRESS\]/);
  });

  test('an unknown flag exits 2 with a one-line reason', () => {
    const r = run(['--mode', 'node', '--bogus']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /^cinder-csi: Unknown option '--bogus'/);
  });

  test('a bad cloud.conf stops start-up with file, section and key, never the secret', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-conf-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, 'cloud.conf');
    writeFileSync(
      conf,
      '[Global]\nauth-url = not a url\nusername = u\npassword = planted-cli-secret-42\ntenant-name = p\ndomain-name = Default\n',
    );
    const r = run(['--mode', 'controller', '--endpoint', `unix://${dir}/csi.sock`, '--cloud-config', conf]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${conf.replaceAll('/', '\\/')}.*\\[Global\\] auth-url`));
    assert.ok(!`${r.stdout}${r.stderr}`.includes('planted-cli-secret-42'));
  });
});
