import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import {
  checkKubeletVersion,
  kubeletVerdict,
  parseKubeletVersion,
} from '../../../src/kube/kubelet-version.ts';

function capture(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines: () => out.map((l) => JSON.parse(l)) };
}

const node = (kubeletVersion?: string) => ({
  metadata: { name: 'n1' },
  status: kubeletVersion === undefined ? {} : { nodeInfo: { kubeletVersion } as never },
});

describe('kubelet version check (kubelets before 1.26 send the socket path as :authority)', () => {
  it('parses the forms kubelets report', () => {
    assert.deepEqual(parseKubeletVersion('v1.20.2'), { major: 1, minor: 20, raw: 'v1.20.2' });
    assert.equal(parseKubeletVersion('v1.27.3-eks-a5565ad')?.minor, 27);
    assert.equal(parseKubeletVersion('1.30.0+k3s1')?.minor, 30);
    assert.equal(parseKubeletVersion('v1.26')?.minor, 26);
    for (const bad of [undefined, '', 'latest', 'v1', `v1.2${'9'.repeat(80)}`, 'v1.26x']) {
      assert.equal(parseKubeletVersion(bad), undefined, String(bad));
    }
  });

  it('draws the line at 1.26', () => {
    assert.equal(kubeletVerdict(parseKubeletVersion('v1.25.16')), 'too-old');
    assert.equal(kubeletVerdict(parseKubeletVersion('v1.26.0')), 'supported');
    assert.equal(kubeletVerdict(parseKubeletVersion('v2.0.0')), 'supported');
    assert.equal(kubeletVerdict(parseKubeletVersion('v0.99.0')), 'too-old');
    assert.equal(kubeletVerdict(undefined), 'unknown');
  });

  it('logs an actionable error for an old kubelet, nothing for a current one', () => {
    const old = capture();
    assert.equal(checkKubeletVersion(node('v1.20.2'), old.logger), 'too-old');
    const [line] = old.lines();
    assert.equal(line?.level, 50);
    assert.equal(line?.kubeletVersion, 'v1.20.2');
    assert.match(String(line?.msg), /older than v1\.26.*:authority.*upgrade the kubelet/);

    const current = capture();
    assert.equal(checkKubeletVersion(node('v1.31.1'), current.logger), 'supported');
    assert.deepEqual(current.lines(), []);

    const unknown = capture();
    assert.equal(checkKubeletVersion(node(), unknown.logger), 'unknown');
    assert.equal(unknown.lines()[0]?.level, 40);
  });

  it('quotes at most a short prefix of a hostile version string', () => {
    const c = capture();
    checkKubeletVersion(node(`v1.20.${'x'.repeat(5000)}`), c.logger);
    assert.ok(String(c.lines()[0]?.kubeletVersion).length <= 64);
  });
});
