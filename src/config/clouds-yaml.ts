/**
 * Reader for `clouds.yaml` + `secure.yaml` (the openstacksdk / os-client-config convention).
 *
 * File search (first found wins, separately for clouds and secure files): an explicit path, then
 * `$OS_CLIENT_CONFIG_FILE` (`$OS_CLIENT_SECURE_FILE`), then `clouds.yaml|yml|json`
 * (`secure.yaml|yml|json`) in the current directory, `~/.config/openstack/` and `/etc/openstack/`.
 * The entry of the selected cloud in secure.yaml is merged over the one in clouds.yaml.
 * YAML is parsed with the failsafe schema: every scalar stays text, so `password: 0123` or
 * `verify: no` mean what was typed, and this module does its own typed checks.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type * as Yaml from 'yaml';
import type { RawSettings, SettingName } from './settings.ts';
import { setSetting } from './settings.ts';
import { configError } from './values.ts';

export interface CloudsYamlOptions {
  cloud: string;
  /** What selected this cloud, for messages: e.g. `environment OS_CLOUD`. */
  selectedBy: string;
  /** Explicit clouds.yaml path (cloud.conf `clouds-file`) and where it was set; must exist. */
  cloudsFile?: { path: string; where: string };
  env: NodeJS.ProcessEnv;
  cwd: string;
  home: string;
  /** Directories searched for clouds/secure files; default [cwd, ~/.config/openstack, /etc/openstack]. */
  configDirs?: readonly string[];
}

const EXTENSIONS = ['yaml', 'yml', 'json'] as const;

/** The YAML parser is loaded on first use: start-up with cloud.conf or OS_* does not pay for it. */
let yamlModule: typeof Yaml | undefined;
function yaml(): typeof Yaml {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yamlModule;
}

/**
 * Loads the YAML parser ahead of a synchronous load that will read a clouds.yaml. Needed in the
 * image: its bundle has no node_modules, so only a dynamic import (which the bundler follows) finds
 * `yaml`; the `require` above serves the sources (tests).
 */
export async function preloadYaml(): Promise<void> {
  if (yamlModule) return;
  const m = await import('yaml');
  // (the bundle may hand a CommonJS module over as `default` only)
  const maybe = m as Partial<typeof Yaml> & { default?: typeof Yaml };
  yamlModule = (typeof maybe.parse === 'function' ? m : maybe.default) as typeof Yaml;
}

/** Top-level keys of a cloud entry. */
const CLOUD_KEYS: Readonly<Record<string, SettingName>> = {
  auth_type: 'authType',
  region_name: 'region',
  interface: 'interface',
  cacert: 'caFile',
  cert: 'certFile',
  key: 'keyFile',
  block_storage_endpoint_override: 'endpoint',
  volume_endpoint_override: 'endpoint',
};

/** Keys of a cloud's `auth` map. */
const AUTH_KEYS: Readonly<Record<string, SettingName>> = {
  auth_url: 'authUrl',
  username: 'username',
  user_id: 'userId',
  password: 'password',
  project_name: 'projectName',
  tenant_name: 'projectName',
  project_id: 'projectId',
  tenant_id: 'projectId',
  user_domain_name: 'userDomainName',
  user_domain_id: 'userDomainId',
  project_domain_name: 'projectDomainName',
  project_domain_id: 'projectDomainId',
  domain_name: 'domainName',
  domain_id: 'domainId',
  default_domain_name: 'domainName',
  default_domain_id: 'domainId',
  application_credential_id: 'applicationCredentialId',
  application_credential_name: 'applicationCredentialName',
  application_credential_secret: 'applicationCredentialSecret',
  token: 'token',
  trust_id: 'trustId',
  endpoint: 'endpoint',
};

/** Cloud entry keys that would change the meaning of the config but are not supported. */
const UNSUPPORTED_CLOUD_KEYS: Readonly<Record<string, string>> = {
  profile: 'vendor profiles are not supported; write the settings out in the cloud entry',
};

const PREFERRED_AUTH_KEY: Partial<Record<SettingName, string>> = {
  projectName: 'project_name',
  projectId: 'project_id',
  domainName: 'domain_name',
  domainId: 'domain_id',
};

/** Finds the clouds file, or undefined when none exists. Throws when an explicit path is missing. */
export function findCloudsFile(opts: CloudsYamlOptions): string | undefined {
  const fromEnv = opts.env.OS_CLIENT_CONFIG_FILE;
  const explicit =
    opts.cloudsFile ?? (fromEnv ? { path: fromEnv, where: 'environment OS_CLIENT_CONFIG_FILE' } : undefined);
  return findFile('clouds', explicit, opts);
}

function findSecureFile(opts: CloudsYamlOptions): string | undefined {
  const fromEnv = opts.env.OS_CLIENT_SECURE_FILE;
  return findFile(
    'secure',
    fromEnv ? { path: fromEnv, where: 'environment OS_CLIENT_SECURE_FILE' } : undefined,
    opts,
  );
}

function findFile(
  base: string,
  explicit: { path: string; where: string } | undefined,
  opts: CloudsYamlOptions,
): string | undefined {
  if (explicit) {
    const path = resolve(opts.cwd, explicit.path);
    if (!isFile(path)) throw configError(explicit.where, `file ${path} does not exist`);
    return path;
  }
  for (const dir of searchDirs(opts)) {
    for (const ext of EXTENSIONS) {
      const path = join(dir, `${base}.${ext}`);
      if (isFile(path)) return path;
    }
  }
  return undefined;
}

export function searchDirs(opts: Pick<CloudsYamlOptions, 'cwd' | 'home' | 'configDirs'>): readonly string[] {
  return opts.configDirs ?? [opts.cwd, join(opts.home, '.config', 'openstack'), '/etc/openstack'];
}

function isFile(path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Reads the named cloud from clouds.yaml (+ secure.yaml). */
export function readCloudsYaml(opts: CloudsYamlOptions): RawSettings {
  const cloudsFile = findCloudsFile(opts);
  if (cloudsFile === undefined) {
    throw configError(
      opts.selectedBy,
      `no clouds.yaml found (searched ${searchDirs(opts).join(', ')}; set OS_CLIENT_CONFIG_FILE to name one)`,
    );
  }
  const secureFile = findSecureFile(opts);
  const prefix = `clouds.${opts.cloud}`;
  const raw: RawSettings = {
    origin: cloudsFile,
    values: {},
    keyOf: (name) => yamlKeyOf(prefix, name),
    files: [cloudsFile],
    notes: [],
  };
  const main = cloudEntry(cloudsFile, opts.cloud);
  if (main === undefined) throw configError(`${cloudsFile}: ${prefix}`, 'no such cloud in this file');
  readEntry(cloudsFile, prefix, main, raw);
  if (secureFile !== undefined) {
    raw.files.push(secureFile);
    const secure = cloudEntry(secureFile, opts.cloud);
    if (secure !== undefined) readEntry(secureFile, prefix, secure, raw);
    else raw.notes.push(`${secureFile}: has no entry for cloud ${opts.cloud}`);
  }
  return raw;
}

function yamlKeyOf(prefix: string, name: SettingName): string {
  const top = Object.entries(CLOUD_KEYS).find(([, n]) => n === name)?.[0];
  if (name === 'endpoint') return `${prefix}.block_storage_endpoint_override`;
  if (name === 'insecure') return `${prefix}.verify`;
  if (top !== undefined) return `${prefix}.${top}`;
  const auth = PREFERRED_AUTH_KEY[name] ?? Object.entries(AUTH_KEYS).find(([, n]) => n === name)?.[0];
  return auth !== undefined ? `${prefix}.auth.${auth}` : `${prefix}.${name}`;
}

type YamlMap = Record<string, unknown>;

function isMap(v: unknown): v is YamlMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The `clouds.<name>` map of a file, or undefined when the file has no such cloud. */
function cloudEntry(file: string, cloud: string): YamlMap | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(file, `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // prettyErrors off and only code/position reported: a parser message may quote the source text.
  const doc = yaml().parseDocument(text, { schema: 'failsafe', prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const offset = first.pos[0];
    const before = text.slice(0, offset).split('\n');
    const at = ` at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
    throw configError(file, `invalid YAML (${first.code})${at}`);
  }
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 100 });
  } catch {
    // e.g. alias expansion limits; the parser's message is not repeated (it may quote content).
    throw configError(file, 'invalid YAML (cannot be converted, e.g. too many aliases)');
  }
  if (root === null || root === undefined) return undefined;
  if (!isMap(root) || !isMap(root.clouds)) throw configError(`${file}: clouds`, 'expected a map of clouds');
  const entry = root.clouds[cloud];
  if (entry === undefined) return undefined;
  if (!isMap(entry)) throw configError(`${file}: clouds.${cloud}`, 'expected a map');
  return entry;
}

function text(file: string, path: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null) return '';
  throw configError(`${file}: ${path}`, 'expected a single value');
}

function readEntry(file: string, prefix: string, entry: YamlMap, raw: RawSettings): void {
  for (const [key, value] of Object.entries(entry)) {
    const path = `${prefix}.${key}`;
    const where = `${file}: ${path}`;
    if (key === 'auth') {
      if (value === null) continue;
      if (!isMap(value)) throw configError(where, 'expected a map');
      for (const [authKey, authValue] of Object.entries(value)) {
        const name = AUTH_KEYS[authKey];
        const authWhere = `${where}.${authKey}`;
        if (name === undefined) throw configError(authWhere, 'unknown auth key');
        setSetting(raw, name, text(file, `${path}.${authKey}`, authValue), authWhere);
      }
    } else if (key === 'verify') {
      // openstacksdk: verify false = do not check TLS certificates.
      const v = text(file, path, value).trim().toLowerCase();
      if (!['true', 'false', 'yes', 'no', '1', '0'].includes(v)) {
        throw configError(where, 'not a boolean (use true/false, 1/0 or yes/no)');
      }
      setSetting(raw, 'insecure', ['false', 'no', '0'].includes(v) ? 'true' : 'false', where);
    } else if (key === 'regions') {
      if (raw.values.region === undefined && Array.isArray(value) && value.length > 0) {
        const first: unknown = value[0];
        const name = isMap(first) ? first.name : first;
        setSetting(raw, 'region', text(file, `${path}[0]`, name), `${where}[0]`);
      }
    } else if (UNSUPPORTED_CLOUD_KEYS[key] !== undefined) {
      throw configError(where, UNSUPPORTED_CLOUD_KEYS[key]);
    } else {
      const name = CLOUD_KEYS[key];
      if (name !== undefined) setSetting(raw, name, text(file, path, value), where);
      else raw.notes.push(`${where}: not used by this driver; ignored`);
    }
  }
}
