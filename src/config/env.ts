/**
 * Reader for the OpenStack clients' `OS_*` environment variables (python-openstackclient,
 * cinderclient). For each setting the first variable that is set wins.
 */
import type { RawSettings, SettingName } from './settings.ts';
import { setSetting } from './settings.ts';

/** Variables per setting, in order of preference. */
export const ENV_VARS: Readonly<Record<SettingName, readonly string[]>> = {
  authType: ['OS_AUTH_TYPE'],
  authUrl: ['OS_AUTH_URL'],
  username: ['OS_USERNAME'],
  userId: ['OS_USER_ID'],
  password: ['OS_PASSWORD'],
  projectName: ['OS_PROJECT_NAME', 'OS_TENANT_NAME'],
  projectId: ['OS_PROJECT_ID', 'OS_TENANT_ID'],
  userDomainName: ['OS_USER_DOMAIN_NAME'],
  userDomainId: ['OS_USER_DOMAIN_ID'],
  projectDomainName: ['OS_PROJECT_DOMAIN_NAME'],
  projectDomainId: ['OS_PROJECT_DOMAIN_ID'],
  domainName: ['OS_DOMAIN_NAME'],
  domainId: ['OS_DOMAIN_ID'],
  applicationCredentialId: ['OS_APPLICATION_CREDENTIAL_ID'],
  applicationCredentialName: ['OS_APPLICATION_CREDENTIAL_NAME'],
  applicationCredentialSecret: ['OS_APPLICATION_CREDENTIAL_SECRET'],
  token: ['OS_TOKEN'],
  trustId: ['OS_TRUST_ID'],
  region: ['OS_REGION_NAME'],
  interface: ['OS_INTERFACE', 'OS_ENDPOINT_TYPE'],
  endpoint: ['OS_ENDPOINT', 'OS_BLOCK_STORAGE_ENDPOINT_OVERRIDE', 'OS_VOLUME_ENDPOINT_OVERRIDE'],
  caFile: ['OS_CACERT'],
  certFile: ['OS_CERT'],
  keyFile: ['OS_KEY'],
  insecure: ['OS_INSECURE'],
  nodeVolumeAttachLimit: [],
  rescanOnResize: [],
  ignoreVolumeAZ: [],
  ignoreVolumeMicroversion: [],
};

/** Variables whose presence means "the environment configures a cloud". */
const SELECTING_VARS = [
  'OS_AUTH_URL',
  'OS_AUTH_TYPE',
  'OS_ENDPOINT',
  'OS_USERNAME',
  'OS_USER_ID',
  'OS_APPLICATION_CREDENTIAL_ID',
  'OS_TOKEN',
] as const;

export function envConfiguresCloud(env: NodeJS.ProcessEnv): boolean {
  return SELECTING_VARS.some((name) => (env[name] ?? '') !== '');
}

export function readEnv(env: NodeJS.ProcessEnv): RawSettings {
  const raw: RawSettings = {
    origin: 'environment',
    values: {},
    keyOf: (name) => ENV_VARS[name][0] ?? name,
    files: [],
    notes: [],
  };
  for (const [name, vars] of Object.entries(ENV_VARS) as [SettingName, readonly string[]][]) {
    const found = vars.find((v) => (env[v] ?? '') !== '');
    if (found !== undefined) setSetting(raw, name, env[found] ?? '', `environment ${found}`);
  }
  return raw;
}
