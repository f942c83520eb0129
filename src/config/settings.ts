/**
 * The source-neutral intermediate form of a cloud configuration: string values keyed by setting
 * name, each with the place it came from. Every source reader (cloud.conf INI, clouds.yaml, OS_*
 * environment) produces `RawSettings`; src/config/resolve.ts validates them into a `CloudConfig`.
 */

export const SETTING_NAMES = [
  'authType',
  'authUrl',
  'username',
  'userId',
  'password',
  'projectName',
  'projectId',
  'userDomainName',
  'userDomainId',
  'projectDomainName',
  'projectDomainId',
  'domainName',
  'domainId',
  'applicationCredentialId',
  'applicationCredentialName',
  'applicationCredentialSecret',
  'token',
  'trustId',
  'region',
  'interface',
  'endpoint',
  'caFile',
  'certFile',
  'keyFile',
  'insecure',
  'nodeVolumeAttachLimit',
  'rescanOnResize',
  'ignoreVolumeAZ',
  'ignoreVolumeMicroversion',
] as const;

export type SettingName = (typeof SETTING_NAMES)[number];

/** Settings whose values are secrets: never logged, never put in an error message. */
export const SECRET_SETTINGS: ReadonlySet<SettingName> = new Set<SettingName>([
  'password',
  'applicationCredentialSecret',
  'token',
]);

export interface Setting {
  value: string;
  /** Where the value was read, e.g. `/etc/kubernetes/cloud.conf: [Global] auth-url`. */
  where: string;
}

export interface RawSettings {
  /** Short description of the source for messages about missing keys, e.g. the file path(s). */
  origin: string;
  values: Partial<Record<SettingName, Setting>>;
  /** How this source spells a setting, e.g. `[Global] auth-url`, `OS_AUTH_URL`. */
  keyOf(name: SettingName): string;
  /** Files that contributed (watched for rotation). */
  files: string[];
  /** Things worth a debug line: ignored sections and keys, fallbacks taken. */
  notes: string[];
}

/** Set `name`; an empty value means "not set" (and clears a value from an earlier file), as upstream. */
export function setSetting(raw: RawSettings, name: SettingName, value: string, where: string): void {
  if (value === '') delete raw.values[name];
  else raw.values[name] = { value, where };
}
