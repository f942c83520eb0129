/**
 * ControllerPublishVolume / ControllerUnpublishVolume on Cinder's attachments API (design.md,
 * "The attach flow").
 *
 * Which node an attachment is for: Cinder never returns an attachment's connector/host, and a
 * volume's `attachments` list only shows completed (`attached`) ones with `host_name`. So after
 * creating an attachment the controller records `cinder.csi.dev.attachment.<attachment id>` =
 * node id in the volume's metadata (removed on unpublish); both sources are consulted.
 * (If the controller dies between POST /attachments and the metadata write, the attachment has no
 * known node until the node stages it; for a non-multiattach volume the next publish to another
 * node reports it as attached to an "unrecorded" host, which an operator can inspect.)
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
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errors.ts';
import type * as csi from '../generated/csi/v1/index.ts';
import type { RpcContext } from '../rpc.ts';
import { type Controller, lockKey, META, withLocks } from './context.ts';
import { capabilityProblem, isReadOnlyMode, requireCapabilities } from './params.ts';

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

/** The node each attachment of `v` is for (undefined: not recorded). */
function attachmentHosts(v: Volume): Map<string, string> {
  const hosts = new Map<string, string>();
  for (const [k, node] of Object.entries(v.metadata ?? {})) {
    if (k.startsWith(META.attachmentPrefix)) hosts.set(k.slice(META.attachmentPrefix.length), node);
  }
  for (const a of v.attachments ?? []) if (a.host_name) hosts.set(a.attachment_id, a.host_name);
  return hosts;
}

export async function controllerPublishVolume(
  c: Controller,
  req: csi.ControllerPublishVolumeRequest__Output,
  ctx: RpcContext,
): Promise<csi.ControllerPublishVolumeResponse> {
  if (!req.volume_id) throw invalidArgument('volume_id is required');
  if (!req.node_id) throw invalidArgument('node_id is required');
  if (!req.volume_capability) throw invalidArgument('volume_capability is required');
  requireCapabilities([req.volume_capability], 'volume_capability');
  const cap = req.volume_capability;
  const mode: AttachMode = req.readonly || isReadOnlyMode(cap) ? 'ro' : 'rw';
  const { volume_id: volumeId, node_id: nodeId } = req;
  const what = `publish volume ${volumeId} to node ${nodeId}`;

  return withLocks(
    c,
    [lockKey.publish(volumeId, nodeId)],
    `volume ${volumeId} on node ${nodeId}`,
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

        const attachments = await c.cinder.listAttachments({ volume_id: volumeId }, { signal: ctx.signal });
        const hosts = attachmentHosts(v);
        const mine = attachments.filter((a) => hosts.get(a.id) === nodeId);
        const existing = mine[0];
        if (existing) {
          if (existing.attach_mode && existing.attach_mode !== mode) {
            throw alreadyExists(
              `${what}: already published to this node in mode ${existing.attach_mode} (attachment ${existing.id}), not ${mode}`,
            );
          }
          const full = existing.connection_info
            ? existing
            : await c.cinder.getAttachment(existing.id, { signal: ctx.signal });
          if (v.metadata?.[`${META.attachmentPrefix}${existing.id}`] !== nodeId) {
            await c.cinder.setVolumeMetadata(
              volumeId,
              { [`${META.attachmentPrefix}${existing.id}`]: nodeId },
              { signal: ctx.signal },
            );
          }
          ctx.log.info(
            { volumeId, nodeId, attachmentId: existing.id },
            'ControllerPublishVolume: reusing attachment',
          );
          return { publish_context: publishContext(full) };
        }

        const others = attachments.filter((a) => hosts.get(a.id) !== nodeId);
        if (!v.multiattach && others.length > 0) {
          const where = others.map(
            (a) => `${hosts.get(a.id) ?? 'an unrecorded host'} (attachment ${a.id}, ${a.status})`,
          );
          throw failedPrecondition(
            `${what}: volume is not multiattach and is attached to ${where.join(', ')}`,
          );
        }

        const att = await c.cinder.createAttachment(
          {
            volume_uuid: volumeId,
            connector,
            ...(mode === 'ro' || c.cinder.supports('3.54') ? { mode } : {}),
          },
          { signal: ctx.signal },
        );
        try {
          await c.cinder.setVolumeMetadata(
            volumeId,
            { [`${META.attachmentPrefix}${att.id}`]: nodeId },
            { signal: ctx.signal },
          );
        } catch (err) {
          await c.cinder
            .deleteAttachment(att.id, { signal: AbortSignal.timeout(30_000) })
            .catch(() => undefined);
          throw err;
        }
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

/** Deletes this node's attachment(s) of the volume. Missing volume, attachment or node → success. */
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
    [lockKey.publish(volumeId, nodeId)],
    `volume ${volumeId} on node ${nodeId}`,
    async () => {
      try {
        let v: Volume;
        try {
          v = await c.cinder.getVolume(volumeId, { signal: ctx.signal });
        } catch (err) {
          if ((err as { notFound?: boolean }).notFound) return {};
          throw err;
        }
        const hosts = attachmentHosts(v);
        const attachments = await c.cinder.listAttachments({ volume_id: volumeId }, { signal: ctx.signal });
        const live = new Set(attachments.map((a) => a.id));
        // An empty node_id means "from all nodes" (CSI spec).
        const targets = attachments.filter((a) => (nodeId ? hosts.get(a.id) === nodeId : hosts.has(a.id)));
        for (const a of targets) {
          try {
            await c.cinder.deleteAttachment(a.id, { signal: ctx.signal });
          } catch (err) {
            if (!(err as { notFound?: boolean }).notFound) throw err;
          }
          ctx.log.info(
            { volumeId, nodeId: hosts.get(a.id), attachmentId: a.id },
            'ControllerUnpublishVolume: attachment deleted',
          );
        }
        // Drop this node's records, and records of attachments that no longer exist.
        const gone = new Set(targets.map((a) => a.id));
        for (const [k, node] of Object.entries(v.metadata ?? {})) {
          if (!k.startsWith(META.attachmentPrefix)) continue;
          const attId = k.slice(META.attachmentPrefix.length);
          if (gone.has(attId) || (!live.has(attId) && (!nodeId || node === nodeId))) {
            await c.cinder.deleteVolumeMetadataKey(volumeId, k, { signal: ctx.signal }).catch((err) => {
              if (!(err as { notFound?: boolean }).notFound) throw err;
            });
          }
        }
        return {};
      } catch (err) {
        throw fromCloudError(err, what, { signal: ctx.signal });
      }
    },
  );
}
