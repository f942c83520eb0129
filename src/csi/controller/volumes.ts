/**
 * DeleteVolume, ValidateVolumeCapabilities, ListVolumes, ControllerGetVolume,
 * ControllerExpandVolume, ControllerModifyVolume.
 */

import type { Volume } from '../../openstack/cinder-types.ts';
import { WaitFailedError } from '../../openstack/waiter.ts';
import { fewOf } from '../../util/bounded.ts';
import { fromCloudError, latestUserMessage } from '../cloud-errors.ts';
import { deleteUnderWay } from '../delete-under-way.ts';
import { Code, CsiError, failedPrecondition, invalidArgument, notFound } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import type { RpcContext } from '../rpc.ts';
import { type Controller, lockKey, META, withLocks } from './context.ts';
import { bytesOf, conditionOf, publishedNodes, sizeGiB, toCsiVolume } from './convert.ts';
import { cinderPage } from './paging.ts';
import { capabilityProblem, parseMutableParams, parseVolumeParams } from './params.ts';
import { dropNeverPublished } from './publish.ts';

const _UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function getVolumeOr404(c: Controller, id: string, ctx: RpcContext, what: string): Promise<Volume> {
  try {
    return await c.cinder.getVolume(id, { signal: ctx.signal });
  } catch (err) {
    throw fromCloudError(err, what, {
      signal: ctx.signal,
      notFound: notFound(`volume ${id} does not exist`),
    });
  }
}

// ---------------------------------------------------------------- DeleteVolume

/**
 * Missing → success. Attachments created by a publish whose answer was lost and that no node ever
 * got (publish.ts) are deleted first. Attached (or being attached) → FAILED_PRECONDITION naming the nodes; dependent
 * snapshots → FAILED_PRECONDITION naming them. Waits until Cinder has really removed the volume,
 * so that a failed delete (error_deleting) is reported instead of leaking the volume.
 */
export async function deleteVolume(
  c: Controller,
  req: csi.DeleteVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.DeleteVolumeResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  const id = req.volume_id;
  const what = `delete volume ${id}`;
  return withLocks(c, [lockKey.volume(id), lockKey.attach(id)], `volume ${id}`, async () => {
    try {
      let v: Volume;
      try {
        v = await c.cinder.getVolume(id, { signal: ctx.signal });
      } catch (err) {
        if ((err as { notFound?: boolean }).notFound) return {};
        throw err;
      }
      if (v.status !== 'deleting') {
        // An attachment a lost publish created but never handed out blocks nothing.
        v = await dropNeverPublished(c, v, ctx);
        const nodes = publishedNodes(v);
        const busy = ['in-use', 'attaching', 'detaching', 'reserved'].includes(String(v.status));
        if (busy || (v.attachments ?? []).length > 0) {
          throw failedPrecondition(
            `volume ${id} is ${v.status}${nodes.length ? ` (published to ${fewOf(nodes)})` : ''}; unpublish it first`,
          );
        }
        const snaps: string[] = [];
        for await (const s of c.cinder.listSnapshots({ volume_id: id }, { signal: ctx.signal }))
          snaps.push(s.id);
        if (snaps.length > 0) {
          throw failedPrecondition(`volume ${id} has dependent snapshots ${fewOf(snaps)}; delete them first`);
        }
        // A delete the backend failed (error_deleting) is only accepted again with force (admin).
        const force = v.status === 'error_deleting';
        try {
          await deleteUnderWay(
            () => c.cinder.deleteVolume(id, { signal: ctx.signal, ...(force ? { force: true } : {}) }),
            () => c.cinder.getVolume(id, { signal: ctx.signal }),
          );
        } catch (err) {
          if (force && (err as { status?: number }).status === 403) {
            throw failedPrecondition(
              `volume ${id} is error_deleting (Cinder's backend failed to delete it) and deleting it again ` +
                `needs an administrator: cinder delete --force ${id}`,
            );
          }
          throw err;
        }
      }
      await c.cinder.waitForVolume(id, {
        target: [],
        gone: true,
        failOn: ['error_deleting'],
        signal: ctx.signal,
      });
      ctx.log.info({ volumeId: id }, 'DeleteVolume: deleted');
      return {};
    } catch (err) {
      if (err instanceof WaitFailedError) {
        throw new CsiError(
          Code.UNAVAILABLE,
          `${what}: Cinder failed to delete it (${err.reason ?? err.status}); the retry deletes it again with force`,
        );
      }
      throw fromCloudError(err, what, {
        signal: ctx.signal,
        deadlineHint: 'Cinder is still deleting it; the retry waits again',
      });
    }
  });
}

// ---------------------------------------------------------------- ValidateVolumeCapabilities

export async function validateVolumeCapabilities(
  c: Controller,
  req: csi.ValidateVolumeCapabilitiesRequest__Output,
  ctx: RpcContext,
): Promise<csi.ValidateVolumeCapabilitiesResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  if (!req.volume_capabilities || req.volume_capabilities.length === 0) {
    throw invalidArgument('volume_capabilities is required');
  }
  const v = await getVolumeOr404(c, req.volume_id, ctx, `validate volume ${req.volume_id}`);
  try {
    parseVolumeParams(req.parameters);
    parseMutableParams(req.mutable_parameters);
  } catch (err) {
    return { message: (err as Error).message };
  }
  for (const cap of req.volume_capabilities) {
    const problem = capabilityProblem(cap, v.multiattach === true);
    if (problem) return { message: problem };
  }
  return {
    confirmed: {
      volume_context: req.volume_context,
      volume_capabilities: req.volume_capabilities,
      parameters: req.parameters,
      mutable_parameters: req.mutable_parameters,
    },
  };
}

// ---------------------------------------------------------------- ListVolumes / ControllerGetVolume

/**
 * This cluster's volumes only (metadata `cinder.csi.dev/cluster`), unlike the upstream plugin which
 * lists the whole project: volumes of other clusters or of people sharing the project are none of
 * this CO's business. `starting_token` is Cinder's marker (the last volume id of the previous
 * page); a token Cinder does not know → ABORTED.
 */
export async function listVolumes(
  c: Controller,
  req: csi.ListVolumesRequest__Output,
  ctx: RpcContext,
): Promise<csi.ListVolumesResponse> {
  const page = await cinderPage('volume', req, ctx, (q) =>
    c.cinder.listVolumesPage({ metadata: { [META.cluster]: c.clusterId }, ...q }, { signal: ctx.signal }),
  );
  const items = page.items.filter((v) => v.metadata?.[META.cluster] === c.clusterId);
  return {
    entries: items.map((v) => ({
      volume: toCsiVolume(c, v),
      status: { published_node_ids: publishedNodes(v), volume_condition: conditionOf(v) },
    })),
    next_token: page.next ?? '',
  };
}

export async function controllerGetVolume(
  c: Controller,
  req: csi.ControllerGetVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.ControllerGetVolumeResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  const v = await getVolumeOr404(c, req.volume_id, ctx, `get volume ${req.volume_id}`);
  return {
    volume: toCsiVolume(c, v),
    status: { published_node_ids: publishedNodes(v), volume_condition: conditionOf(v) },
  };
}

// ---------------------------------------------------------------- ControllerExpandVolume

/**
 * `os-extend` to the requested size (whole GiB). In-use volumes need microversion 3.42 (online
 * extend). Waits for the volume to be back in its status with the new size. Mount volumes need the
 * node to grow the filesystem (node_expansion_required); raw block volumes do not.
 */
export async function controllerExpandVolume(
  c: Controller,
  req: csi.ControllerExpandVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.ControllerExpandVolumeResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  if (!req.capacity_range) throw invalidArgument('capacity_range is required');
  const id = req.volume_id;
  const nodeExpansion = !req.volume_capability?.block;
  const what = `expand volume ${id}`;
  return withLocks(c, [lockKey.volume(id)], `volume ${id}`, async () => {
    const want = sizeGiB(req.capacity_range);
    let v = await getVolumeOr404(c, id, ctx, what);
    try {
      if (v.status === 'extending') {
        v = (await c.cinder.waitForVolume(id, { target: ['available', 'in-use'], signal: ctx.signal })) ?? v;
      }
      if (v.size >= want) return { capacity_bytes: bytesOf(v.size), node_expansion_required: nodeExpansion };
      const online = v.status === 'in-use';
      if (!online && v.status !== 'available') {
        // error_extending: an earlier extend (maybe this call's, its answer lost) failed in Cinder
        const why = String(v.status).startsWith('error')
          ? await latestUserMessage(c.cinder, id, ctx.signal)
          : undefined;
        throw failedPrecondition(
          `${what}: volume is ${v.status}${why ? ` (${why.slice(0, 300)})` : ''}; it must be available or in-use` +
            (v.status === 'error_extending'
              ? '; an operator must reset its status after fixing the cause'
              : ''),
        );
      }
      if (online && !c.cinder.supports('3.42')) {
        throw failedPrecondition(
          `${what}: the volume is in use and online extend needs Cinder API microversion 3.42 ` +
            `(negotiated ${c.cinder.microversion.major}.${c.cinder.microversion.minor}); detach it or upgrade Cinder`,
        );
      }
      await c.cinder.extendVolume(id, want, { signal: ctx.signal, online });
      const done = await c.cinder.waitForVolume(id, { target: ['available', 'in-use'], signal: ctx.signal });
      const size = done?.size ?? want;
      if (size < want)
        throw new CsiError(Code.UNAVAILABLE, `${what}: Cinder still reports ${size} GiB; retry`);
      ctx.log.info({ volumeId: id, from: v.size, to: size, online }, 'ControllerExpandVolume: extended');
      return { capacity_bytes: bytesOf(size), node_expansion_required: nodeExpansion };
    } catch (err) {
      throw fromCloudError(err, what, {
        signal: ctx.signal,
        deadlineHint: 'the retry waits for the extend again',
      });
    }
  });
}

// ---------------------------------------------------------------- ControllerModifyVolume

/**
 * Mutable parameter `type` → `os-retype` with `migrationPolicy`; waits until the new type shows.
 * A retype Cinder cannot do as asked (needs a migration while migrationPolicy is never) →
 * INVALID_ARGUMENT (infeasible, CSI 1.12); one it refuses for the volume's state (e.g. snapshots
 * block a migration) → FAILED_PRECONDITION.
 */
export async function controllerModifyVolume(
  c: Controller,
  req: csi.ControllerModifyVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.ControllerModifyVolumeResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  const mutable = parseMutableParams(req.mutable_parameters);
  const id = req.volume_id;
  return withLocks(c, [lockKey.volume(id)], `volume ${id}`, async () => {
    const v = await getVolumeOr404(c, id, ctx, `modify volume ${id}`);
    if (mutable.type) await retype(c, v, mutable.type, mutable.migrationPolicy, ctx);
    return {};
  });
}

export async function retype(
  c: Controller,
  v: Volume,
  type: string,
  policy: 'never' | 'on-demand',
  ctx: RpcContext,
): Promise<Volume> {
  const what = `retype volume ${v.id} to ${type}`;
  try {
    const t = await c.cinder.getVolumeType(type, { signal: ctx.signal }).catch((e) => {
      throw fromCloudError(e, what, {
        notFound: invalidArgument(`${what}: volume type ${type} does not exist`),
      });
    });
    const isTarget = (x: Volume) => x.volume_type === t.name || x.volume_type_id === t.id;
    let cur = v;
    if (cur.status === 'retyping') {
      cur =
        (await c.cinder.waitForVolume(v.id, { target: ['available', 'in-use'], signal: ctx.signal })) ?? cur;
    }
    if (isTarget(cur)) return cur;
    if (cur.status !== 'available' && cur.status !== 'in-use') {
      throw failedPrecondition(`${what}: volume is ${cur.status}; it must be available or in-use`);
    }
    await c.cinder.retypeVolume(v.id, t.name, policy, { signal: ctx.signal });
    const done = await c.cinder.waitForVolume(v.id, { target: ['available', 'in-use'], signal: ctx.signal });
    if (done && isTarget(done)) {
      ctx.log.info({ volumeId: v.id, from: v.volume_type, to: t.name }, 'retyped volume');
      return done;
    }
    const why = await latestUserMessage(c.cinder, v.id, ctx.signal);
    const refused = `${what}: Cinder did not retype it${why ? `: ${why}` : ''}`;
    // With migrationPolicy never, Cinder only retypes in place: a type it cannot reach without moving
    // the data is an infeasible modification, which spec 1.12 answers with INVALID_ARGUMENT (the
    // resizer marks the PVC's modification Infeasible instead of retrying for ever).
    if (policy === 'never') {
      throw invalidArgument(
        `${refused} (migrationPolicy is never and the new type needs a migration to another backend; ` +
          'allow it with migrationPolicy: on-demand, or choose a type of the same backend)',
      );
    }
    throw failedPrecondition(refused);
  } catch (err) {
    throw fromCloudError(err, what, {
      signal: ctx.signal,
      deadlineHint: 'the retry waits for the retype again',
    });
  }
}
