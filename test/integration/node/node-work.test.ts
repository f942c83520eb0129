/**
 * What each node RPC does on the host, counted on real loop devices and mounts (root): no command
 * run twice, one read of the mount table per call, the state file written only where a kill
 * would otherwise lose track of something; and the node finishing after a kill at the step whose
 * writes were merged (publish records the target before the bind).
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { HostExecutor } from '../../../src/host/exec.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { ctx, loopsOf, mountCap, req, rootSkipReason } from './helpers.ts';
import { findmnt, withWorld } from './node-kit.ts';
import { countNodeWork, type WorkCounts } from './work-counter.ts';

/** The counts as a plain object (commands and connector calls by name, without times). */
function plain(c: WorkCounts) {
  const names = (m: WorkCounts['commands']) => Object.fromEntries([...m].map(([k, v]) => [k, v.n]));
  return {
    commands: names(c.commands),
    connector: names(c.connector),
    mountTableReads: c.mountTableReads,
    stateWrites: c.stateWrites,
    stateDeletes: c.stateDeletes,
  };
}

describe('node work per RPC on loop devices', { skip: rootSkipReason() }, () => {
  test('each RPC runs each command once, reads the mount table once, writes the state only as needed', async () => {
    await withWorld(async (w) => {
      const svc = w.service({ fsckBeforeMount: true });
      const v = await w.volume(64);
      const cap = mountCap('ext4');
      const target = v.target();
      const counter = countNodeWork(w);
      const step = async (fn: () => Promise<unknown>) => {
        counter.reset();
        await fn();
        return plain(counter.counts);
      };
      try {
        assert.deepEqual(await step(() => svc.NodeStageVolume(req.stage(v, cap), ctx())), {
          commands: { blkid: 1, 'mkfs.ext4': 1, mount: 1 },
          connector: { connect: 1 },
          mountTableReads: 1,
          stateWrites: 2, // the device before mounting (a kill can still unstage), then staged
          stateDeletes: 0,
        });
        assert.deepEqual(await step(() => svc.NodePublishVolume(req.publish(v, cap, target), ctx())), {
          commands: { 'mount --bind': 1 },
          connector: {},
          mountTableReads: 1,
          stateWrites: 1, // placeholder and target together, before the bind
          stateDeletes: 0,
        });
        // Retries find everything done: no command, no write.
        assert.deepEqual(await step(() => svc.NodePublishVolume(req.publish(v, cap, target), ctx())), {
          commands: {},
          connector: {},
          mountTableReads: 1,
          stateWrites: 0,
          stateDeletes: 0,
        });
        assert.deepEqual(await step(() => svc.NodeStageVolume(req.stage(v, cap), ctx())), {
          commands: {},
          connector: {},
          mountTableReads: 1,
          stateWrites: 0,
          stateDeletes: 0,
        });
        assert.deepEqual(await step(() => svc.NodeUnpublishVolume(req.unpublish(v, target), ctx())), {
          commands: { umount: 1 },
          connector: {},
          mountTableReads: 1,
          stateWrites: 1,
          stateDeletes: 0,
        });
        assert.deepEqual(await step(() => svc.NodeUnstageVolume(req.unstage(v), ctx())), {
          commands: { umount: 1 },
          connector: { disconnect: 1 },
          mountTableReads: 1,
          stateWrites: 0,
          stateDeletes: 1,
        });
        // Stage again: the filesystem is found (blkid) and checked (fsck), never formatted again.
        assert.deepEqual((await step(() => svc.NodeStageVolume(req.stage(v, cap), ctx()))).commands, {
          blkid: 1,
          fsck: 1,
          mount: 1,
        });
        await svc.NodeUnstageVolume(req.unstage(v), ctx());
      } finally {
        counter.stop();
      }
    });
  });

  test('killed at the bind after the one state write: a restarted plugin publishes, unpublishes and unstages cleanly', async () => {
    await withWorld(async (w) => {
      const v = await w.volume(64);
      const cap = mountCap('ext4');
      const target = v.target();
      // A plugin whose `mount --bind` never returns: the process is as good as killed there.
      const real = new HostExecutor({ logger: silentLogger() });
      const killedAtBind = () => {
        let reached!: () => void;
        const atBind = new Promise<void>((r) => {
          reached = r;
        });
        const svc = w.service({
          executor: {
            run: (cmd, args, opts) => {
              if (!args.includes('--bind')) return real.run(cmd, args, opts);
              reached();
              return new Promise<never>(() => undefined);
            },
          },
        });
        return { svc, atBind };
      };
      const first = killedAtBind();
      await first.svc.NodeStageVolume(req.stage(v, cap), ctx());
      void first.svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      await first.atBind;
      const recorded = async () => (await w.service().stateStore.get(v.id))?.targets ?? [];
      assert.deepEqual(await recorded(), [{ path: target, readOnly: false }], 'recorded before the bind');
      assert.ok((await stat(target)).isDirectory(), 'the placeholder exists');
      assert.equal(await findmnt(target), undefined, 'nothing is bound yet');

      // The kubelet's retry reaches a restarted plugin: it binds.
      const second = w.service();
      await second.NodePublishVolume(req.publish(v, cap, target), ctx());
      assert.equal((await findmnt(target))?.fstype, 'ext4');

      // A kill at the same step, then unpublish and unstage instead of a retry: all removed.
      await second.NodeUnpublishVolume(req.unpublish(v, target), ctx());
      const again = killedAtBind();
      void again.svc.NodePublishVolume(req.publish(v, cap, target), ctx());
      await again.atBind;
      assert.equal((await recorded()).length, 1);
      const third = w.service();
      await third.NodeUnstageVolume(req.unstage(v), ctx()); // the recorded target is not mounted
      await assert.rejects(stat(target), { code: 'ENOENT' }, 'the placeholder is removed');
      assert.deepEqual(loopsOf(v.file), []);
      assert.deepEqual(await third.stateStore.list(), []);
    });
  });
});
