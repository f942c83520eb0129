/**
 * Where NodeStageVolume gets the full connection_info (with CHAP credentials / cephx user):
 *  - default: read the attachment named by `publish_context.attachment_id` from Cinder with the
 *    node's own credentials (publish_context is stored in plain text, so it never holds secrets);
 *  - opt-in node-stage-secrets mode: the non-secret fields from publish_context plus the secret
 *    fields from the NodeStage request's secrets (a Kubernetes Secret), without calling Cinder.
 */
import type { CinderApi } from '../../openstack/cinder-api.ts';
import type { ConnectionInfo } from '../../openstack/cinder-types.ts';
import { failedPrecondition, invalidArgument } from '../errors.ts';

export interface ResolvedConnection {
  info: ConnectionInfo;
  attachmentId: string | undefined;
  /** Node-stage secrets handed to the connector (RBD keyring/key) in opt-in mode. */
  secrets: Record<string, string> | undefined;
}

/** Secret fields of connection_info that the opt-in mode accepts from node-stage secrets. */
const SECRET_FIELDS = [
  'auth_method',
  'auth_username',
  'auth_password',
  'discovery_auth_method',
  'discovery_auth_username',
  'discovery_auth_password',
] as const;

/** A publish_context list: a JSON array or a comma-separated string. */
function parseList(v: string | undefined): string[] | undefined {
  if (v === undefined || v === '') return undefined;
  if (v.startsWith('[')) {
    try {
      const arr = JSON.parse(v) as unknown;
      if (Array.isArray(arr)) return arr.map(String);
    } catch {
      /* fall through to comma-separated */
    }
  }
  return v.split(',').map((s) => s.trim());
}

function toInt(field: string, v: string): number {
  if (!/^\d+$/.test(v))
    throw invalidArgument(`publish_context.${field} must be an integer, got '${v.slice(0, 40)}'`);
  return Number(v);
}

/** Builds connection_info from publish_context's non-secret fields (opt-in mode). */
export function connectionInfoFromPublishContext(pc: Record<string, string>): ConnectionInfo {
  const type = pc.driver_volume_type;
  if (!type)
    throw invalidArgument('publish_context.driver_volume_type is required in node-stage-secrets mode');
  const info: ConnectionInfo = { driver_volume_type: type };
  const str = [
    'target_portal',
    'target_iqn',
    'name',
    'cluster_name',
    'volume_id',
    'access_mode',
    'secret_type',
    'secret_uuid',
  ];
  for (const k of str) if (pc[k]) info[k] = pc[k];
  if (pc.target_lun) info.target_lun = toInt('target_lun', pc.target_lun);
  const portals = parseList(pc.target_portals);
  if (portals) info.target_portals = portals;
  const iqns = parseList(pc.target_iqns);
  if (iqns) info.target_iqns = iqns;
  const luns = parseList(pc.target_luns);
  if (luns) info.target_luns = luns.map((l) => toInt('target_luns', l));
  const hosts = parseList(pc.hosts);
  if (hosts) info.hosts = hosts;
  const ports = parseList(pc.ports);
  if (ports) info.ports = ports;
  if (pc.auth_enabled) info.auth_enabled = pc.auth_enabled === 'true';
  if (pc.discard) info.discard = pc.discard === 'true';
  if (pc.target_discovered) info.target_discovered = pc.target_discovered === 'true';
  return info;
}

export async function resolveConnection(opts: {
  volumeId: string;
  publishContext: Record<string, string>;
  secrets: Record<string, string>;
  cinder: CinderApi | undefined;
  nodeStageSecretsMode: boolean;
  signal: AbortSignal;
}): Promise<ResolvedConnection> {
  const pc = opts.publishContext ?? {};
  const attachmentId = pc.attachment_id || undefined;
  if (opts.nodeStageSecretsMode) {
    const info = connectionInfoFromPublishContext(pc);
    for (const k of SECRET_FIELDS) if (opts.secrets[k]) info[k] = opts.secrets[k];
    if (info.auth_username && info.auth_password && !info.auth_method) info.auth_method = 'CHAP';
    const hasSecrets = Object.keys(opts.secrets).length > 0;
    return { info, attachmentId, secrets: hasSecrets ? opts.secrets : undefined };
  }
  if (!attachmentId) {
    throw invalidArgument(
      'publish_context.attachment_id is missing: the volume must be published to this node by ControllerPublishVolume first',
    );
  }
  if (!opts.cinder) throw failedPrecondition('the node plugin has no Cinder client configured');
  const att = await opts.cinder.getAttachment(attachmentId, { signal: opts.signal });
  if (att.volume_id && att.volume_id !== opts.volumeId) {
    throw failedPrecondition(
      `attachment ${attachmentId} belongs to volume ${att.volume_id}, not ${opts.volumeId}`,
    );
  }
  if (!att.connection_info) {
    throw failedPrecondition(
      `attachment ${attachmentId} has no connection info yet (status ${att.status}); ControllerPublishVolume has not finished`,
    );
  }
  return { info: att.connection_info, attachmentId, secrets: undefined };
}
