/**
 * The host connector: os-brick's `get_connector_properties` for this node, sent to Cinder with
 * every attachment so the backend exports the volume to us (and picks CHAP, multipath...).
 * It holds no secret and is safe to log and to publish on the Node object.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { HostConnector } from '../openstack/cinder-types.ts';
import type { Logger } from '../util/logger.ts';
import type { Executor } from './exec.ts';
import type { HostPaths } from './paths.ts';

export interface HostConnectorOptions {
  paths: HostPaths;
  /** The node's storage-network address; default: the first non-internal IPv4 (else IPv6) address. */
  ip?: string;
  /** Default: os.hostname(). Cinder identifies the host's attachments by it. */
  hostname?: string;
  multipath?: boolean;
  /** Reserved for tools that need probing (e.g. `nvme gen-hostnqn`); unused today. */
  executor?: Executor;
  /** Warned when the node has no iSCSI initiator name (its iSCSI attachments would fail). */
  logger?: Logger;
}

/** Reads `InitiatorName=` from /etc/iscsi/initiatorname.iscsi (comments ignored). */
export function parseInitiatorName(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    const m = /^InitiatorName\s*=\s*(\S+)/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/** The first external IPv4 address, else the first external IPv6 one. */
export function primaryAddress(ifaces = os.networkInterfaces()): string | undefined {
  const all = Object.values(ifaces).flatMap((l) => l ?? []);
  const ext = all.filter((a) => !a.internal);
  return (
    (ext.find((a) => a.family === 'IPv4') ?? ext.find((a) => a.family === 'IPv6'))?.address ?? all[0]?.address
  );
}

export async function buildHostConnector(opts: HostConnectorOptions): Promise<HostConnector> {
  let initiator: string | undefined;
  const file = opts.paths.etcIscsi('initiatorname.iscsi');
  try {
    initiator = parseInitiatorName(await readFile(file, 'utf8'));
  } catch {
    initiator = undefined; // no open-iscsi on this host: RBD only
  }
  if (!initiator)
    // Cinder refuses an iSCSI attachment for a connector without one (HTTP 500 "Connector doesn't
    // have required information: initiator"), which the controller can only report as a failed publish.
    opts.logger?.warn(
      { file },
      "no iSCSI initiator name on this node (no InitiatorName= in the file): iSCSI volumes cannot be attached here, only RBD ones; install open-iscsi on the host (it writes the file) or mount the host's /etc/iscsi",
    );
  const connector: HostConnector = {
    platform: os.arch() === 'x64' ? 'x86_64' : os.arch() === 'arm64' ? 'aarch64' : os.arch(),
    os_type: os.platform() === 'linux' ? 'linux2' : os.platform(),
    ip: opts.ip ?? primaryAddress() ?? '127.0.0.1',
    host: opts.hostname ?? os.hostname(),
    multipath: opts.multipath ?? false,
    do_local_attach: false,
  };
  if (initiator) connector.initiator = initiator;
  return connector;
}
