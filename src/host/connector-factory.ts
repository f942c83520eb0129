/**
 * The factory that knows every storage connector: picks the one for a connection_info's
 * `driver_volume_type` (or a stored device's protocol), like os-brick's connector factory. Kept
 * apart from connector.ts, which the connectors themselves import, so there is no import cycle.
 */
import type { ConnectionInfo } from '../openstack/cinder-types.ts';
import { type ConnectorBaseDeps, type Protocol, protocolOf, type StorageConnector } from './connector.ts';
import { IscsiConnector, type IscsiOptions } from './iscsi.ts';
import { RbdConnector, type RbdOptions } from './rbd.ts';

export interface ConnectorDeps extends ConnectorBaseDeps {
  iscsi?: IscsiOptions;
  rbd?: RbdOptions;
}

export function connectorFor(
  info: Pick<ConnectionInfo, 'driver_volume_type'>,
  deps: ConnectorDeps,
): StorageConnector {
  return connectorForProtocol(protocolOf(info), deps);
}

/** For disconnect after a restart: the stored ConnectedDevice only has the protocol. */
export function connectorForProtocol(protocol: Protocol, deps: ConnectorDeps): StorageConnector {
  return protocol === 'iscsi' ? new IscsiConnector(deps) : new RbdConnector(deps);
}
