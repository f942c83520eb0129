/**
 * The driver's resolved cloud configuration, whatever source it came from (cloud.conf INI,
 * clouds.yaml + secure.yaml, OS_* environment). Produced by src/config/load.ts.
 */

export type AuthType = 'password' | 'v3applicationcredential' | 'token' | 'noauth';

export interface AuthConfig {
  type: AuthType;
  /** Keystone v3 URL, e.g. http://127.0.0.1:5000/v3 (not used with noauth). */
  authUrl?: string;
  username?: string;
  userId?: string;
  password?: string;
  userDomainName?: string;
  userDomainId?: string;
  projectName?: string;
  projectId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
  /** Domain scope shortcut (cloud.conf domain-name/domain-id): default for user and project domain. */
  domainName?: string;
  domainId?: string;
  applicationCredentialId?: string;
  applicationCredentialName?: string;
  applicationCredentialSecret?: string;
  token?: string;
  trustId?: string;
  /** noauth: the user id sent as `X-Auth-Token: user_id:project_id`. */
  noauthUserId?: string;
}

export interface TlsConfig {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecure: boolean;
}

export interface BlockStorageConfig {
  /** Upstream `node-volume-attach-limit` (default 256). */
  nodeVolumeAttachLimit: number;
  rescanOnResize: boolean;
  ignoreVolumeAZ: boolean;
  ignoreVolumeMicroversion: boolean;
}

export interface CloudConfig {
  auth: AuthConfig;
  region?: string;
  /** public | internal | admin (default public). */
  interface: 'public' | 'internal' | 'admin';
  /** Block storage endpoint override (required for noauth), e.g. http://127.0.0.1:8776/v3. */
  endpointOverride?: string;
  tls: TlsConfig;
  blockStorage: BlockStorageConfig;
  /** Where each value came from, for messages: e.g. { 'auth.password': '/etc/cloud.conf [Global] password' }. */
  sources: Record<string, string>;
}

/** A configuration error names the file, section and key; it never contains a secret value. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
