/**
 * readContainerLog (test/support/kube-node/container-log.ts), the pod log the kube-node tests read:
 * after a container restart and a log rotation it is the newest files, not the first run's 0.log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readContainerLog } from '../../support/kube-node/container-log.ts';

describe('readContainerLog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'container-log-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  /** Writes a log file with its mtime `ageS` seconds in the past. */
  const logFile = (name: string, text: string, ageS: number) => {
    writeFileSync(join(dir, name), text);
    const t = Date.now() / 1000 - ageS;
    utimesSync(join(dir, name), t, t);
  };

  it('throws while the container has no log file yet', () => {
    assert.throws(() => readContainerLog(dir), /no container log/);
    assert.throws(() => readContainerLog(join(dir, 'missing')), /ENOENT/);
  });

  it('reads the newest files, oldest first: a restart (1.log) and a rotation (0.log.<time>); skips gzipped ones', () => {
    logFile('0.log.20261201-101010.gz', 'compressed\n', 40);
    logFile('0.log.20261201-101011', 'first run, rotated\n', 30);
    logFile('0.log', 'first run\n', 20);
    logFile('1.log', 'after the restart\n', 10);
    writeFileSync(join(dir, 'not-a-log.txt'), 'other\n');
    assert.equal(readContainerLog(dir), 'first run, rotated\nfirst run\nafter the restart\n');
    // enough characters from the newest file alone: only it is read
    assert.equal(readContainerLog(dir, 5), 'after the restart\n');
    assert.equal(readContainerLog(dir, 20), 'first run\nafter the restart\n');
  });
});
