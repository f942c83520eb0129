/**
 * Validates source-neutral `RawSettings` into a `CloudConfig`: the auth type, the keys each auth
 * type requires, and every value's syntax. Errors name the source and key, never a value.
 */
import { protectSecrets } from './describe.ts';
import type { RawSettings, Setting, SettingName } from './settings.ts';
import type {
  AuthConfig,
  AuthType,
  BlockStorageConfig,
  CloudConfig,
  ConfigError,
  TlsConfig,
} from './types.ts';
import {
  checkNoauthProjectId,
  checkNoauthUserId,
  checkReadableFile,
  configError,
  parseBool,
  parseHttpUrl,
  parseInterface,
  parsePositiveInt,
} from './values.ts';

export const DEFAULT_NODE_VOLUME_ATTACH_LIMIT = 256;

/** Accepted auth type spellings (keystoneauth / openstacksdk / cinderclient names). */
const AUTH_TYPES: Readonly<Record<string, AuthType>> = {
  password: 'password',
  v3password: 'password',
  v3applicationcredential: 'v3applicationcredential',
  applicationcredential: 'v3applicationcredential',
  token: 'token',
  v3token: 'token',
  noauth: 'noauth',
  none: 'noauth',
};

/** Where each setting lands in the CloudConfig, for `CloudConfig.sources`. */
const CONFIG_PATH: Readonly<Record<SettingName, string>> = {
  authType: 'auth.type',
  authUrl: 'auth.authUrl',
  username: 'auth.username',
  userId: 'auth.userId',
  password: 'auth.password',
  projectName: 'auth.projectName',
  projectId: 'auth.projectId',
  userDomainName: 'auth.userDomainName',
  userDomainId: 'auth.userDomainId',
  projectDomainName: 'auth.projectDomainName',
  projectDomainId: 'auth.projectDomainId',
  domainName: 'auth.domainName',
  domainId: 'auth.domainId',
  applicationCredentialId: 'auth.applicationCredentialId',
  applicationCredentialName: 'auth.applicationCredentialName',
  applicationCredentialSecret: 'auth.applicationCredentialSecret',
  token: 'auth.token',
  trustId: 'auth.trustId',
  region: 'region',
  interface: 'interface',
  endpoint: 'endpointOverride',
  caFile: 'tls.caFile',
  certFile: 'tls.certFile',
  keyFile: 'tls.keyFile',
  insecure: 'tls.insecure',
  nodeVolumeAttachLimit: 'blockStorage.nodeVolumeAttachLimit',
  rescanOnResize: 'blockStorage.rescanOnResize',
  ignoreVolumeAZ: 'blockStorage.ignoreVolumeAZ',
  ignoreVolumeMicroversion: 'blockStorage.ignoreVolumeMicroversion',
};

/** Reads a trimmed non-secret value; empty means unset. */
function textOf(raw: RawSettings, name: SettingName): string | undefined {
  return raw.values[name]?.value.trim() || undefined;
}

/** The error for a required setting that is missing, naming every key that would satisfy it. */
function missing(raw: RawSettings, names: SettingName[], why: string): ConfigError {
  return configError(`${raw.origin}: ${names.map((n) => raw.keyOf(n)).join(' or ')}`, why);
}

export function resolveSettings(raw: RawSettings): CloudConfig {
  const v = raw.values;
  const type = resolveAuthType(raw);
  const auth = type === 'noauth' ? resolveNoauth(raw) : resolveKeystoneAuth(raw, type);
  const cfg: CloudConfig = {
    auth,
    interface: v.interface ? parseInterface(v.interface) : 'public',
    tls: resolveTls(raw),
    blockStorage: resolveBlockStorage(raw),
    sources: {},
  };
  const region = textOf(raw, 'region');
  if (region !== undefined) cfg.region = region;
  if (v.endpoint) cfg.endpointOverride = parseHttpUrl(v.endpoint);

  for (const [name, setting] of Object.entries(v) as [SettingName, Setting][]) {
    cfg.sources[CONFIG_PATH[name]] = setting.where;
  }
  return protectSecrets(cfg);
}

function resolveNoauth(raw: RawSettings): AuthConfig {
  const v = raw.values;
  const why = 'required for auth type noauth';
  if (!v.endpoint) throw missing(raw, ['endpoint'], `${why} (the Cinder endpoint, e.g. http://host:8776/v3)`);
  if (!v.projectId) throw missing(raw, ['projectId'], why);
  if (!v.userId) throw missing(raw, ['userId'], why);
  return {
    type: 'noauth',
    projectId: checkNoauthProjectId(v.projectId),
    noauthUserId: checkNoauthUserId(v.userId),
  };
}

/** Identity fields copied as given for the Keystone auth types. */
const KEYSTONE_IDENTITY_FIELDS = [
  'username',
  'userId',
  'projectName',
  'projectId',
  'userDomainName',
  'userDomainId',
  'projectDomainName',
  'projectDomainId',
  'domainName',
  'domainId',
  'trustId',
] as const;

function resolveKeystoneAuth(raw: RawSettings, type: Exclude<AuthType, 'noauth'>): AuthConfig {
  const v = raw.values;
  const has = (name: SettingName): boolean => textOf(raw, name) !== undefined;
  const why = `required for auth type ${type}`;
  if (!v.authUrl) throw missing(raw, ['authUrl'], why);
  const auth: AuthConfig = { type, authUrl: parseHttpUrl(v.authUrl) };
  for (const name of KEYSTONE_IDENTITY_FIELDS) {
    const value = textOf(raw, name);
    if (value !== undefined) auth[name] = value;
  }

  const requireUser = (): void => {
    if (!has('userId') && !has('username')) throw missing(raw, ['userId', 'username'], why);
    const domainGiven = has('userDomainId') || has('userDomainName') || has('domainId') || has('domainName');
    if (!has('userId') && !domainGiven) {
      throw missing(
        raw,
        ['userDomainName', 'userDomainId', 'domainName', 'domainId'],
        'required with username',
      );
    }
  };
  const requireScope = (): void => {
    if (has('trustId') || has('projectId')) return;
    if (!has('projectName')) throw missing(raw, ['projectId', 'projectName', 'trustId'], why);
    const domainGiven =
      has('projectDomainId') || has('projectDomainName') || has('domainId') || has('domainName');
    if (!domainGiven) {
      throw missing(
        raw,
        ['projectDomainName', 'projectDomainId', 'domainName', 'domainId'],
        'required with a project name',
      );
    }
  };

  if (type === 'password') {
    requireUser();
    if (!v.password?.value) throw missing(raw, ['password'], why);
    requireScope();
    auth.password = v.password.value;
  } else if (type === 'token') {
    if (!v.token?.value) throw missing(raw, ['token'], why);
    requireScope();
    auth.token = v.token.value;
  } else {
    if (!v.applicationCredentialSecret?.value) throw missing(raw, ['applicationCredentialSecret'], why);
    auth.applicationCredentialSecret = v.applicationCredentialSecret.value;
    const id = textOf(raw, 'applicationCredentialId');
    const name = textOf(raw, 'applicationCredentialName');
    if (id !== undefined) {
      auth.applicationCredentialId = id;
    } else if (name !== undefined) {
      requireUser();
      auth.applicationCredentialName = name;
    } else {
      throw missing(raw, ['applicationCredentialId', 'applicationCredentialName'], why);
    }
  }

  // domain-id / domain-name are the default for the user's and the project's domain.
  if (auth.userDomainId === undefined && auth.userDomainName === undefined) {
    if (auth.domainId !== undefined) auth.userDomainId = auth.domainId;
    else if (auth.domainName !== undefined) auth.userDomainName = auth.domainName;
  }
  if (auth.projectDomainId === undefined && auth.projectDomainName === undefined) {
    if (auth.domainId !== undefined) auth.projectDomainId = auth.domainId;
    else if (auth.domainName !== undefined) auth.projectDomainName = auth.domainName;
  }
  return auth;
}

function resolveAuthType(raw: RawSettings): AuthType {
  const v = raw.values;
  if (v.authType) {
    const type = AUTH_TYPES[v.authType.value.trim().toLowerCase()];
    if (type === undefined) {
      throw configError(
        v.authType.where,
        `unsupported auth type (use one of ${Object.keys(AUTH_TYPES).join(', ')})`,
      );
    }
    return type;
  }
  if (v.applicationCredentialId || v.applicationCredentialName || v.applicationCredentialSecret) {
    return 'v3applicationcredential';
  }
  if (v.token && !v.password) return 'token';
  return 'password';
}

function resolveTls(raw: RawSettings): TlsConfig {
  const v = raw.values;
  const tls: TlsConfig = { insecure: v.insecure ? parseBool(v.insecure) : false };
  if (v.caFile) tls.caFile = checkReadableFile(v.caFile);
  if (v.certFile && !v.keyFile)
    throw configError(`${raw.origin}: ${raw.keyOf('keyFile')}`, 'required with a client certificate');
  if (v.keyFile && !v.certFile)
    throw configError(`${raw.origin}: ${raw.keyOf('certFile')}`, 'required with a client key');
  if (v.certFile) tls.certFile = checkReadableFile(v.certFile);
  if (v.keyFile) tls.keyFile = checkReadableFile(v.keyFile);
  return tls;
}

function resolveBlockStorage(raw: RawSettings): BlockStorageConfig {
  const v = raw.values;
  return {
    nodeVolumeAttachLimit: v.nodeVolumeAttachLimit
      ? parsePositiveInt(v.nodeVolumeAttachLimit)
      : DEFAULT_NODE_VOLUME_ATTACH_LIMIT,
    rescanOnResize: v.rescanOnResize ? parseBool(v.rescanOnResize) : false,
    ignoreVolumeAZ: v.ignoreVolumeAZ ? parseBool(v.ignoreVolumeAZ) : false,
    ignoreVolumeMicroversion: v.ignoreVolumeMicroversion ? parseBool(v.ignoreVolumeMicroversion) : false,
  };
}
