/**
 * ControllerPublishVolume / ControllerUnpublishVolume on Cinder's attachments API (design.md,
 * "The attach flow" and "Failure recovery").
 *
 * Cinder's state is the truth; every step is safe against a lost response and a crash right after
 * it, because a retry re-reads Cinder and finishes what the first try started.
 *
 * What Cinder stores and returns (checked on the lab, Zed, microversion 3.70):
 *   - `GET /attachments/{id}` and `GET /attachments/detail?volume_id=` give id, status, instance,
 *     volume_id, attached_at, detached_at, attach_mode, connection_info, in every state:
 *     `reserved` (POST without connector: connection_info {}, attach_mode "null"), `attaching`
 *     (POST with connector; the POST's own answer still says `reserved`), `attached`
 *     (after os-complete). Never the connector or its host.
 *   - The volume's `attachments` list shows only `attached` ones, with `host_name` (the connector's
 *     host) for admins only (null otherwise).
 *   - `instance_uuid` at POST is returned as `instance` and filterable (`instance_id=`), so a UUID
 *     derived from the node id would be a perfect tag, but since the fix of Cinder bug #2004555
 *     deleting an attachment that has an instance and a connection asks Nova about that server:
 *     without Nova (standalone Cinder, the lab) `DELETE /attachments/{id}` answers HTTP 500 and the
 *     volume is stuck in-use until an admin resets it. So the driver never sets instance_uuid.
 *
 * Which node an attachment is for is therefore stored in the volume's metadata, in Cinder, around
 * the POST (attachment-owners.ts):
 *   intent  `cinder.csi.dev.publishing` = node   written BEFORE `POST /attachments`
 *   record  `cinder.csi.dev.attachment.<id>` = node   written after it (a cache of the owner)
 * and the attachment list is read on every publish/unpublish/delete. A live attachment that no
 * record names was made by the POST of the stored intent: it belongs to the intent's node. Publish,
 * unpublish and delete of one volume run one at a time in this controller (lock `attach/<volume>`;
 * a concurrent call gets ABORTED), so at most one intent can be open per volume.
 *
 * Publish, step by step (what a retry finds → what it does):
 *   1. read volume + attachments; an intent with unrecorded attachments → record them for the
 *      intent's node, drop the intent (this is where a lost POST response is adopted)
 *   2. this node already has an attachment → reuse it (record it if only host_name named it) if
 *      Cinder connected it (connection_info); delete it and go on if Cinder has not connected it
 *      (yet) or put it in an error state. Never connect it with a PUT: a `reserved` attachment
 *      without connection_info may belong to a POST Cinder is still carrying out (its caller was
 *      killed or timed out), and that POST's connection step, finishing after the node's
 *      os-complete, would put the attachment and the volume back to `attaching` for good (seen in
 *      the 50-kill chaos bench). Deleted, the late step finds no attachment and changes nothing.
 *   3. write the intent        → lost/crash: step 1 drops it (no attachment) or adopts the POST's
 *   4. POST /attachments       → lost/crash: step 1 adopts the attachment for this node
 *   5. write the record        → lost/crash: step 1/2 find it recorded (or adopt it again)
 *   6. drop the intent         → lost/crash: step 1 drops it
 * The answer (publish_context) is only given after step 5: an attachment without a record was
 * never handed to any node. That is why DeleteVolume may delete such attachments (never published,
 * no node uses them), and why a volume of another, non-multiattach node's attachment is refused.
 *
 * Unpublish deletes every live attachment whose owner is this node (record, host_name or the
 * intent), then the records of deleted and vanished attachments and the intent; each delete is
 * idempotent (404 = done), so a lost response or a crash at any point is finished by the retry.
 * Attachments nothing accounts for (not made by this driver) are left alone and logged.
 *
 * publish_context (stored in plain text in the VolumeAttachment object) carries only non-secret
 * fields, selected by an allow-list:
 *   attachment_id, driver_volume_type, access_mode, volume_id
 *   iscsi: target_portal, target_iqn, target_lun, target_portals, target_iqns, target_luns,
 *          target_discovered
 *   rbd:   name (pool/image), hosts, ports, cluster_name
 * Lists are JSON arrays (`["127.0.0.1:3260"]`), numbers and booleans decimal/`true`/`false`.
 * Never CHAP credentials, keyrings, secret uuids or the cephx user name (`auth_username` is an
 * identity the project treats as secret): the node reads those from Cinder
 * (`GET /attachments/{attachment_id}`) with its own credentials.
 */

import type { AttachMode, Attachment, HostConnector, Volume } from '../../openstack/cinder-types.ts';
import { isSecretKey } from '../../util/logger.ts';
import { fromCloudError } from '../cloud-errors.ts';
import { isNoConnectorError } from '../connector-source.ts';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, unavailable } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import { createSignal, type RpcContext } from '../rpc.ts';
import {
  dropKeys,
  ownedBy,
  readAttachments,
  recordOwner,
  settleIntent,
  writeIntent,
} from './attachment-owners.ts';
import { type Controller, lockKey, META, withLocks } from './context.ts';
import { capabilityProblem, isReadOnlyMode, requireCapabilities } from './params.ts';

/** Cinder's limit for a metadata value (the node id is stored as one). */
const MAX_NODE_ID_BYTES = 255;

const CONTEXT_KEYS: Readonly<Record<string, readonly string[]>> = {
  common: ['driver_volume_type', 'access_mode', 'volume_id'],
  iscsi: [
    'target_portal',
    'target_iqn',
    'target_lun',
    'target_portals',
    'target_iqns',
    'target_luns',
    'target_discovered',
  ],
  rbd: ['name', 'hosts', 'ports', 'cluster_name'],
};

/** The non-secret part of an attachment's connection_info, as publish_context. */
export function publishContext(att: Attachment): Record<string, string> {
  const info = (att.connection_info ?? {}) as Record<string, unknown>;
  const type = String(info['driver_volume_type'] ?? '');
  const keys = [...(CONTEXT_KEYS['common'] ?? []), ...(CONTEXT_KEYS[type] ?? [])];
  const out: Record<string, string> = { attachment_id: att.id };
  for (const k of keys) {
    const v = info[k];
    if (v === undefined || v === null || isSecretKey(k)) continue;
    out[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

export async function controllerPublishVolume(
  c: Controller,
  req: csi.ControllerPublishVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.ControllerPublishVolumeResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  if (!req.node_id) throw invalidArgument('node_id is required');
  if (Buffer.byteLength(req.node_id) > MAX_NODE_ID_BYTES) {
    throw invalidArgument(
      `node_id is longer than ${MAX_NODE_ID_BYTES} bytes (Cinder's metadata value limit)`,
    );
  }
  if (!req.volume_capability) throw invalidArgument('volume_capability is required');
  requireCapabilities([req.volume_capability], 'volume_capability');
  const cap = req.volume_capability;
  const mode: AttachMode = req.readonly || isReadOnlyMode(cap) ? 'ro' : 'rw';
  const { volume_id: volumeId, node_id: nodeId } = req;
  const what = `publish volume ${volumeId} to node ${nodeId}`;

  return withLocks(
    c,
    [lockKey.publish(volumeId, nodeId), lockKey.attach(volumeId)],
    `the attachments of volume ${volumeId}`,
    async () => {
      try {
        const v = await c.cinder.getVolume(volumeId, { signal: ctx.signal }).catch((e) => {
          throw fromCloudError(e, what, { notFound: notFound(`volume ${volumeId} does not exist`) });
        });
        const connector = await nodeConnector(c, nodeId, ctx.signal);
        const problem = capabilityProblem(cap, v.multiattach === true);
        if (problem) throw invalidArgument(`${what}: ${problem}`);
        if (mode === 'ro' && !c.cinder.supports('3.54')) {
          throw failedPrecondition(
            `${what}: read-only attachments need Cinder API microversion 3.54 (attachment mode); ` +
              `negotiated ${c.cinder.microversion.major}.${c.cinder.microversion.minor}`,
          );
        }

        // 1. What Cinder holds: finish an earlier try's bookkeeping first.
        const s = await readAttachments(c, v, ctx.signal);
        await settleIntent(c, volumeId, s, ctx);
        for (const existing of ownedBy(s, nodeId)) {
          const reused = await reuse(c, v, nodeId, existing, mode, ctx);
          if (reused) return { publish_context: publishContext(reused) };
          s.live = s.live.filter((a) => a.id !== existing.id);
        }

        const others = s.live.filter((a) => s.owner.get(a.id) !== nodeId);
        if (!v.multiattach && others.length > 0) {
          const where = others.map(
            (a) =>
              `${s.owner.get(a.id) ?? 'a host this driver did not attach'} (attachment ${a.id}, ${a.status})`,
          );
          throw failedPrecondition(
            `${what}: volume is not multiattach and is attached to ${where.slice(0, 3).join(', ')}`,
          );
        }

        if (v.multiattach && others.length > 0 && (v.status === 'attaching' || v.status === 'reserved')) {
          // Cinder reserves a multiattach volume for another host only when available or in-use.
          throw unavailable(
            `${what}: Cinder attaches a multiattach volume to one more host only once the current ` +
              `attachment is complete (volume is ${v.status}); retry after the other node has staged it`,
          );
        }

        // 2. Intent, POST, record, drop intent: a retry after any of them finds and finishes it.
        await writeIntent(c, volumeId, nodeId, ctx.signal);
        const att = await c.cinder.createAttachment(
          {
            volume_uuid: volumeId,
            connector,
            ...(mode === 'ro' || c.cinder.supports('3.54') ? { mode } : {}),
          },
          { signal: createSignal() },
        );
        await recordOwner(c, volumeId, [att.id], nodeId, ctx.signal);
        await dropKeys(c, volumeId, [META.publishIntent], ctx.signal);
        ctx.log.info(
          { volumeId, nodeId, attachmentId: att.id, mode },
          'ControllerPublishVolume: attachment created',
        );
        return { publish_context: publishContext(att) };
      } catch (err) {
        throw fromCloudError(err, what, { signal: ctx.signal });
      }
    },
  );
}

/**
 * This node's attachment `a`, ready to hand out (recorded, with connection_info), or undefined
 * when it was unusable (failed in Cinder) and has been deleted.
 */
async function reuse(
  c: Controller,
  v: Volume,
  nodeId: string,
  a: Attachment,
  mode: AttachMode,
  ctx: RpcContext,
): Promise<Attachment | undefined> {
  const signal = ctx.signal;
  const full = a.connection_info ? a : await c.cinder.getAttachment(a.id, { signal });
  const failed = String(full.status).startsWith('error');
  if (failed || !full.connection_info || Object.keys(full.connection_info).length === 0) {
    // Failed in Cinder, or not connected (yet): the POST that created it may still be running in
    // Cinder (its caller died or gave up while Cinder connected it). Its late connection step
    // would set the attachment and the volume back to `attaching` after the node completed it, so
    // it is never connected a second time (no PUT): it is deleted, and the late step then finds no
    // attachment and changes nothing. A new attachment is created below.
    await deleteAttachmentIfPresent(c, a.id, signal);
    await dropKeys(c, v.id, [`${META.attachmentPrefix}${a.id}`], signal);
    ctx.log.info(
      { volumeId: v.id, nodeId, attachmentId: a.id, status: full.status },
      failed ? 'deleted failed attachment' : 'deleted an attachment Cinder had not connected (yet)',
    );
    return undefined;
  }
  if (full.attach_mode && full.attach_mode !== 'null' && full.attach_mode !== mode) {
    throw alreadyExists(
      `publish volume ${v.id} to node ${nodeId}: already published to this node in mode ${full.attach_mode} (attachment ${a.id}), not ${mode}`,
    );
  }
  if (v.metadata?.[`${META.attachmentPrefix}${a.id}`] !== nodeId) {
    await recordOwner(c, v.id, [a.id], nodeId, signal);
  }
  ctx.log.info({ volumeId: v.id, nodeId, attachmentId: a.id }, 'ControllerPublishVolume: reusing attachment');
  return full;
}

async function deleteAttachmentIfPresent(c: Controller, id: string, signal: AbortSignal): Promise<void> {
  await c.cinder.deleteAttachment(id, { signal }).catch((err) => {
    if (!(err as { notFound?: boolean }).notFound) throw err;
  });
}

async function nodeConnector(c: Controller, nodeId: string, signal: AbortSignal): Promise<HostConnector> {
  let connector: HostConnector | undefined;
  try {
    connector = await c.connectors.get(nodeId, signal);
  } catch (err) {
    if (isNoConnectorError(err)) {
      throw failedPrecondition(`${err.message}; is the node plugin running and registered on it?`);
    }
    throw err;
  }
  if (!connector) throw notFound(`node ${nodeId} is unknown (no such node with a host connector)`);
  return connector;
}

/**
 * Deletes every attachment of the volume that belongs to this node (recorded, completed with its
 * host, or created for it but never recorded), then the records. Missing volume, attachment or node
 * → success. An empty node_id means "from all nodes" (CSI spec): every attachment this driver made.
 */
export async function controllerUnpublishVolume(
  c: Controller,
  req: csi.ControllerUnpublishVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.ControllerUnpublishVolumeResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  const { volume_id: volumeId, node_id: nodeId } = req;
  const what = `unpublish volume ${volumeId} from node ${nodeId || '(all nodes)'}`;
  return withLocks(
    c,
    [lockKey.publish(volumeId, nodeId), lockKey.attach(volumeId)],
    `the attachments of volume ${volumeId}`,
    async () => {
      try {
        let v: Volume;
        try {
          v = await c.cinder.getVolume(volumeId, { signal: ctx.signal });
        } catch (err) {
          if ((err as { notFound?: boolean }).notFound) return {};
          throw err;
        }
        const s = await readAttachments(c, v, ctx.signal);
        const isTarget = (owner: string | undefined) => (nodeId ? owner === nodeId : owner !== undefined);
        if (s.intent && !isTarget(s.intent)) await settleIntent(c, volumeId, s, ctx);
        const targets = s.live.filter((a) => isTarget(s.owner.get(a.id)));
        for (const a of targets) {
          await deleteAttachmentIfPresent(c, a.id, ctx.signal);
          ctx.log.info(
            { volumeId, nodeId: s.owner.get(a.id), attachmentId: a.id, status: a.status },
            'ControllerUnpublishVolume: attachment deleted',
          );
        }
        // Then the records: of the deleted attachments, of ones already gone, and the intent.
        const keys = new Set(s.staleRecords);
        for (const a of targets) {
          const k = `${META.attachmentPrefix}${a.id}`;
          if (v.metadata?.[k] !== undefined) keys.add(k);
        }
        if (s.intent && isTarget(s.intent)) keys.add(META.publishIntent);
        await dropKeys(c, volumeId, [...keys], ctx.signal);
        if (s.foreign.length > 0) {
          ctx.log.warn(
            { volumeId, attachmentIds: s.foreign.map((a) => a.id).slice(0, 5) },
            'ControllerUnpublishVolume: the volume has attachments this driver did not make; left alone',
          );
        }
        return {};
      } catch (err) {
        throw fromCloudError(err, what, { signal: ctx.signal });
      }
    },
  );
}

/**
 * DeleteVolume's first step: attachments created for a node but never recorded were never handed
 * to any node (publish records before it answers), so no node uses them: delete them and the
 * intent. Returns the volume as Cinder has it afterwards.
 */
export async function dropNeverPublished(c: Controller, v: Volume, ctx: RpcContext): Promise<Volume> {
  if (!v.metadata?.[META.publishIntent]) return v;
  const s = await readAttachments(c, v, ctx.signal);
  for (const a of s.unrecorded) {
    await deleteAttachmentIfPresent(c, a.id, ctx.signal);
    ctx.log.info(
      { volumeId: v.id, nodeId: s.intent, attachmentId: a.id },
      'DeleteVolume: deleted an attachment that was created but never handed out',
    );
  }
  await dropKeys(c, v.id, [META.publishIntent], ctx.signal);
  return s.unrecorded.length > 0 ? c.cinder.getVolume(v.id, { signal: ctx.signal }) : v;
}
