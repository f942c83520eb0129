/**
 * Ids that are not Cinder ids (issue 11 item 1) through the CSI services, on the lab Cinder:
 * `detail`, `summary`, `backup:detail` (names of other Cinder URLs, which Cinder answers with a
 * list), path tricks and a 1 MB string. Every RPC that takes such an id must answer NOT_FOUND (OK
 * for deletes, an empty list for ListSnapshots filters), never INTERNAL — the Cinder client refuses
 * them before they enter a URL, as a 404 would. Creates nothing in Cinder; the node service's
 * state and kubelet directories are temporary and removed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, CsiError } from '../../../src/csi/errors.ts';
import { createGroupControllerService } from '../../../src/csi/group-controller/index.ts';
import { createNodeService } from '../../../src/csi/node/service.ts';
import { HostExecutor } from '../../../src/host/exec.ts';
import { hostPaths } from '../../../src/host/paths.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { ctx, type Lab, mountCap, openLab, pubReq, skipReason } from './lab.ts';

const skip = await skipReason();

const HOSTILE: Record<string, string> = {
  detail: 'detail',
  summary: 'summary',
  'backup:detail': 'backup:detail',
  '../x': '../x',
  'a/b': 'a/b',
  '%2e%2e': '%2e%2e',
  '1 MB': 'a'.repeat(1024 * 1024),
};

/** What an RPC answered: 'OK' or the gRPC code's name; anything but a CsiError is a failure. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (!(err instanceof CsiError)) return `not a CsiError: ${String(err).slice(0, 200)}`;
    return Code[err.code] ?? String(err.code);
  }
}

describe('ids that are not Cinder ids answer NOT_FOUND (OK for deletes), on the lab', { skip }, () => {
  let lab: Lab;
  let dir: string;
  before(async () => {
    lab = await openLab('keystone');
    dir = await mkdtemp(path.join(tmpdir(), 'ctl-hostile-ids-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    await lab?.close();
  });

  it('every RPC of issue 11 item 1, for every hostile id', async () => {
    const { svc, cinder, nodes } = lab;
    const node = nodes[0] as string;
    const groups = createGroupControllerService({
      cinder,
      clusterId: lab.clusterId,
      driverName: 'cinder.csi.dev',
      logger: silentLogger(),
    });
    const nodeSvc = createNodeService({
      nodeId: node,
      cinder,
      connectors: () => {
        throw new Error('no connector is reached for an attachment that does not exist');
      },
      executor: new HostExecutor({ logger: silentLogger() }),
      paths: hostPaths('/'),
      stateDir: path.join(dir, 'state'),
      kubeletRoot: dir,
      logger: silentLogger(),
    });
    const VOLUME = 'ffffffff-0000-4000-8000-000000000001'; // a well-formed id that does not exist

    const rpcs: Record<string, { expect: string; call: (id: string) => Promise<unknown> }> = {
      DeleteVolume: { expect: 'OK', call: (id) => svc.DeleteVolume({ volume_id: id, secrets: {} }, ctx()) },
      ControllerGetVolume: {
        expect: 'NOT_FOUND',
        call: (id) => svc.ControllerGetVolume({ volume_id: id }, ctx()),
      },
      ControllerPublishVolume: {
        expect: 'NOT_FOUND',
        call: (id) => svc.ControllerPublishVolume(pubReq(id, node), ctx()),
      },
      ControllerUnpublishVolume: {
        // A volume that does not exist is unpublished (CSI: OK).
        expect: 'OK',
        call: (id) => svc.ControllerUnpublishVolume({ volume_id: id, node_id: node, secrets: {} }, ctx()),
      },
      ValidateVolumeCapabilities: {
        expect: 'NOT_FOUND',
        call: (id) =>
          svc.ValidateVolumeCapabilities(
            {
              volume_id: id,
              volume_context: {},
              volume_capabilities: [mountCap()],
              parameters: {},
              mutable_parameters: {},
              secrets: {},
            },
            ctx(),
          ),
      },
      ControllerExpandVolume: {
        expect: 'NOT_FOUND',
        call: (id) =>
          svc.ControllerExpandVolume(
            {
              volume_id: id,
              capacity_range: { required_bytes: String(2 * 1024 ** 3), limit_bytes: '0' },
              secrets: {},
              volume_capability: mountCap(),
            },
            ctx(),
          ),
      },
      ControllerModifyVolume: {
        expect: 'NOT_FOUND',
        call: (id) =>
          svc.ControllerModifyVolume(
            { volume_id: id, secrets: {}, mutable_parameters: { type: 'fake' } },
            ctx(),
          ),
      },
      'CreateSnapshot(source_volume_id)': {
        expect: 'NOT_FOUND',
        call: (id) =>
          svc.CreateSnapshot(
            { source_volume_id: id, name: `ctl-hostile-${lab.clusterId}`, secrets: {}, parameters: {} },
            ctx(),
          ),
      },
      GetSnapshot: {
        expect: 'NOT_FOUND',
        call: (id) => svc.GetSnapshot({ snapshot_id: id, secrets: {} }, ctx()),
      },
      DeleteSnapshot: {
        expect: 'OK',
        call: (id) => svc.DeleteSnapshot({ snapshot_id: id, secrets: {} }, ctx()),
      },
      'ListSnapshots(snapshot_id)': {
        expect: 'empty',
        call: async (id) =>
          empty(
            await svc.ListSnapshots(
              { snapshot_id: id, source_volume_id: '', max_entries: 0, starting_token: '', secrets: {} },
              ctx(),
            ),
          ),
      },
      'ListSnapshots(source_volume_id)': {
        expect: 'empty',
        call: async (id) =>
          empty(
            await svc.ListSnapshots(
              { snapshot_id: '', source_volume_id: id, max_entries: 0, starting_token: '', secrets: {} },
              ctx(),
            ),
          ),
      },
      GetVolumeGroupSnapshot: {
        expect: 'NOT_FOUND',
        call: (id) =>
          groups.GetVolumeGroupSnapshot({ group_snapshot_id: id, snapshot_ids: [], secrets: {} }, ctx()),
      },
      'NodeStageVolume(publish_context.attachment_id)': {
        expect: 'NOT_FOUND',
        call: (id) =>
          nodeSvc.NodeStageVolume(
            {
              volume_id: VOLUME,
              publish_context: { attachment_id: id },
              staging_target_path: path.join(dir, 'staging', 'pv'),
              volume_capability: mountCap(),
              secrets: {},
              volume_context: {},
            },
            ctx(),
          ),
      },
    };

    const wrong: string[] = [];
    for (const [rpc, { expect, call }] of Object.entries(rpcs)) {
      for (const [label, id] of Object.entries(HOSTILE)) {
        const got = await outcome(call(id));
        // A 1 MB id may also be refused for its size (the CSI spec's 128-byte limit).
        const allowed = [expect, ...(label === '1 MB' ? ['INVALID_ARGUMENT'] : [])];
        const answer = got === 'OK' && expect === 'empty' ? 'empty' : got;
        if (!allowed.includes(answer)) wrong.push(`${rpc} ${label}: ${answer} (expected ${expect})`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});

/** Resolves for an empty ListSnapshots answer; rejects with a CsiError-free Error otherwise. */
function empty(res: { entries?: unknown[] | null }): void {
  if ((res.entries ?? []).length > 0) throw new Error(`expected no entries, got ${res.entries?.length}`);
}
