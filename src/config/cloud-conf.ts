/**
 * Reader for the upstream cinder-csi-plugin `cloud.conf` (gcfg INI, parsed with the `ini` package).
 * Several files may be given; they are read in order and a key in a later file overrides the same
 * key in an earlier one (upstream reads multiple files into one struct the same way).
 * Section and key names are case-insensitive, as in gcfg.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'ini';
import type { RawSettings, SettingName } from './settings.ts';
import { setSetting } from './settings.ts';
import { configError } from './values.ts';

/** `[Global]` keys: upstream names first; aliases after. */
const GLOBAL_KEYS: Readonly<Record<string, SettingName>> = {
  'auth-url': 'authUrl',
  username: 'username',
  'user-id': 'userId',
  password: 'password',
  'tenant-id': 'projectId',
  'project-id': 'projectId',
  'tenant-name': 'projectName',
  'project-name': 'projectName',
  'domain-id': 'domainId',
  'domain-name': 'domainName',
  'user-domain-id': 'userDomainId',
  'user-domain-name': 'userDomainName',
  'tenant-domain-id': 'projectDomainId',
  'project-domain-id': 'projectDomainId',
  'tenant-domain-name': 'projectDomainName',
  'project-domain-name': 'projectDomainName',
  region: 'region',
  'application-credential-id': 'applicationCredentialId',
  'application-credential-name': 'applicationCredentialName',
  'application-credential-secret': 'applicationCredentialSecret',
  'trust-id': 'trustId',
  'ca-file': 'caFile',
  'cert-file': 'certFile',
  'key-file': 'keyFile',
  'tls-insecure': 'insecure',
  'os-endpoint-type': 'interface',
  // Extensions of this driver (not upstream):
  'auth-type': 'authType',
  endpoint: 'endpoint',
  'block-storage-endpoint': 'endpoint',
};

/** `[Global]` keys that select clouds.yaml (upstream `use-clouds`), handled by the loader. */
const GLOBAL_CLOUDS_KEYS = ['use-clouds', 'clouds-file', 'cloud'] as const;
export type CloudsKey = (typeof GLOBAL_CLOUDS_KEYS)[number];

/** Upstream `[Global]` keys this driver does not support; refused so that auth does not fail obscurely. */
const GLOBAL_UNSUPPORTED: Readonly<Record<string, string>> = {
  'trustee-id': 'trustee authentication is not supported by this driver',
  'trustee-password': 'trustee authentication is not supported by this driver',
};

const BLOCK_STORAGE_KEYS: Readonly<Record<string, SettingName>> = {
  'node-volume-attach-limit': 'nodeVolumeAttachLimit',
  'rescan-on-resize': 'rescanOnResize',
  'ignore-volume-az': 'ignoreVolumeAZ',
  'ignore-volume-microversion': 'ignoreVolumeMicroversion',
};

/** Legacy `[BlockStorage]` keys of the in-tree provider: accepted and ignored. */
const BLOCK_STORAGE_IGNORED = new Set(['bs-version', 'trust-device-path']);

/**
 * Sections of the shared cloud.conf that belong to other OpenStack components (cloud controller
 * manager, KMS plugin): ignored with a debug note. gcfg subsections (`[LoadBalancerClass "x"]`)
 * are matched by their section name.
 */
export const IGNORED_SECTIONS = new Set([
  'networking',
  'loadbalancer',
  'loadbalancerclass',
  'metadata',
  'route',
  'keymanager',
]);

/** Preferred spelling of each setting, for messages about missing keys. */
const PREFERRED_KEY: Partial<Record<SettingName, string>> = {
  projectId: 'tenant-id',
  projectName: 'tenant-name',
  projectDomainId: 'tenant-domain-id',
  projectDomainName: 'tenant-domain-name',
  endpoint: 'endpoint',
};

export function cloudConfKeyOf(name: SettingName): string {
  const blockKey = Object.entries(BLOCK_STORAGE_KEYS).find(([, n]) => n === name)?.[0];
  if (blockKey !== undefined) return `[BlockStorage] ${blockKey}`;
  const key = PREFERRED_KEY[name] ?? Object.entries(GLOBAL_KEYS).find(([, n]) => n === name)?.[0] ?? name;
  return `[Global] ${key}`;
}

export interface CloudConfResult {
  raw: RawSettings;
  /** The clouds.yaml selection keys of [Global], with their location. */
  clouds: Partial<Record<CloudsKey, { value: string; where: string }>>;
}

export function readCloudConfFiles(files: readonly string[]): CloudConfResult {
  const raw: RawSettings = {
    origin: files.join(', '),
    values: {},
    keyOf: cloudConfKeyOf,
    files: [...files],
    notes: [],
  };
  const clouds: CloudConfResult['clouds'] = {};
  for (const file of files) readOne(file, raw, clouds);
  return { raw, clouds };
}

function readOne(file: string, raw: RawSettings, clouds: CloudConfResult['clouds']): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw configError(
      file,
      code === 'ENOENT' ? 'file does not exist' : `cannot read file (${code ?? 'error'})`,
    );
  }
  checkLines(file, text);
  // A key without '=' parses to `true`, and quoted JSON may parse to numbers: both become text.
  const doc = parse(text) as Record<string, unknown>;
  for (const [sectionName, body] of Object.entries(doc)) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw configError(
        `${file}: ${sectionName}`,
        'key outside of any section (expected [Global] or [BlockStorage])',
      );
    }
    const section = sectionName.trim().toLowerCase();
    const entries = Object.entries(body as Record<string, unknown>);
    if (section === 'global') {
      readGlobal(file, entries, raw, clouds);
    } else if (section === 'blockstorage') {
      readBlockStorage(file, entries, raw);
    } else if (IGNORED_SECTIONS.has(section.split(/\s+/)[0] ?? '')) {
      raw.notes.push(`${file}: [${sectionName}] is not used by this driver; ignored`);
    } else {
      throw configError(`${file}: [${sectionName}]`, 'unknown section (expected [Global] or [BlockStorage])');
    }
  }
}

/**
 * gcfg accepts only `[section]`, `key = value`, comments and blank lines. The ini parser would
 * read any other line as a key, so reject it here, by line number only: such a line is often the
 * wrapped tail of a value, possibly a password.
 */
function checkLines(file: string, text: string): void {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (/^\[[^\]]*\]$/.test(line)) continue;
    if (/^[A-Za-z][A-Za-z0-9_.-]*\s*=/.test(line)) continue;
    throw configError(`${file}: line ${i + 1}`, 'not a [section] or key = value line');
  }
}

function scalar(file: string, section: string, key: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value))
    throw configError(`${file}: [${section}] ${key}`, 'array keys (key[]) are not supported');
  // An object here is a dotted subsection such as [Global.x].
  throw configError(`${file}: [${section}.${key}]`, 'unknown section (expected [Global] or [BlockStorage])');
}

function readGlobal(
  file: string,
  entries: [string, unknown][],
  raw: RawSettings,
  clouds: CloudConfResult['clouds'],
): void {
  const seen = new Map<SettingName, string>();
  for (const [rawKey, rawValue] of entries) {
    const key = rawKey.trim().toLowerCase();
    const where = `${file}: [Global] ${key}`;
    const value = scalar(file, 'Global', key, rawValue);
    const name = GLOBAL_KEYS[key];
    if (name !== undefined) {
      const other = seen.get(name);
      if (other !== undefined && other !== key) {
        throw configError(where, `conflicts with [Global] ${other} (they are the same setting; keep one)`);
      }
      seen.set(name, key);
      setSetting(raw, name, value, where);
    } else if ((GLOBAL_CLOUDS_KEYS as readonly string[]).includes(key)) {
      clouds[key as CloudsKey] = { value, where };
    } else if (GLOBAL_UNSUPPORTED[key] !== undefined) {
      throw configError(where, GLOBAL_UNSUPPORTED[key]);
    } else {
      throw configError(where, 'unknown key');
    }
  }
}

function readBlockStorage(file: string, entries: [string, unknown][], raw: RawSettings): void {
  for (const [rawKey, rawValue] of entries) {
    const key = rawKey.trim().toLowerCase();
    const where = `${file}: [BlockStorage] ${key}`;
    const value = scalar(file, 'BlockStorage', key, rawValue);
    const name = BLOCK_STORAGE_KEYS[key];
    if (name !== undefined) setSetting(raw, name, value, where);
    else if (BLOCK_STORAGE_IGNORED.has(key)) raw.notes.push(`${where}: legacy in-tree key, ignored`);
    else throw configError(where, 'unknown key');
  }
}
