/**
 * Produces the driver's `CloudConfig` from exactly one source, chosen by precedence:
 *
 *   1. `--cloud-config` files (upstream cloud.conf INI), if any are given. With
 *      `[Global] use-clouds = true` the named cloud of clouds.yaml fills the keys the files leave
 *      empty (upstream behaviour).
 *   2. else `OS_CLOUD`: that cloud from clouds.yaml (+ secure.yaml).
 *   3. else the `OS_*` environment variables.
 *
 * Sources are not merged beyond the documented `use-clouds` fallback (docs/configuration.md).
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { readCloudConfFiles } from './cloud-conf.ts';
import { readCloudsYaml } from './clouds-yaml.ts';
import { envConfiguresCloud, readEnv } from './env.ts';
import { resolveSettings } from './resolve.ts';
import type { RawSettings, SettingName } from './settings.ts';
import type { CloudConfig } from './types.ts';
import { ConfigError } from './types.ts';
import { configError, parseBool } from './values.ts';

export interface CloudConfigOptions {
  /** cloud.conf files in the order given on the command line (later files override earlier keys). */
  files?: readonly string[];
  /** Environment to read OS_* and OS_CLOUD from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Directory for relative paths and the first clouds.yaml search location; default `process.cwd()`. */
  cwd?: string;
  /** Home directory for `~/.config/openstack`; default `os.homedir()`. */
  home?: string;
  /** Override of the clouds.yaml search directories (tests). */
  configDirs?: readonly string[];
}

export type ConfigSourceKind = 'cloud.conf' | 'clouds.yaml' | 'environment';

export interface LoadedCloudConfig {
  config: CloudConfig;
  source: ConfigSourceKind;
  /** Every file read, absolute (watched for credential rotation). */
  files: string[];
  /** Debug notes: ignored sections/keys, fallbacks taken. Never contain values. */
  notes: string[];
}

/** Loads and validates the cloud configuration; throws `ConfigError` with file, section and key. */
export function loadCloudConfig(opts: CloudConfigOptions = {}): CloudConfig {
  return loadCloudConfigDetailed(opts).config;
}

export function loadCloudConfigDetailed(opts: CloudConfigOptions = {}): LoadedCloudConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const home = opts.home ?? homedir();
  const common = { env, cwd, home, ...(opts.configDirs ? { configDirs: opts.configDirs } : {}) };
  const files = (opts.files ?? []).filter((f) => f !== '').map((f) => resolve(cwd, f));

  let raw: RawSettings;
  let source: ConfigSourceKind;
  if (files.length > 0) {
    source = 'cloud.conf';
    const conf = readCloudConfFiles(files);
    raw = conf.raw;
    const { 'use-clouds': useClouds, 'clouds-file': cloudsFile, cloud } = conf.clouds;
    if (useClouds && parseBool(useClouds)) {
      const cloudName = cloud?.value.trim() || env.OS_CLOUD;
      if (!cloudName) {
        throw configError(
          `${raw.origin}: [Global] cloud`,
          'required with use-clouds = true (or set OS_CLOUD)',
        );
      }
      const yaml = readCloudsYaml({
        ...common,
        cloud: cloudName,
        selectedBy: useClouds.where,
        ...(cloudsFile?.value ? { cloudsFile: { path: cloudsFile.value, where: cloudsFile.where } } : {}),
      });
      for (const [name, setting] of Object.entries(yaml.values) as [
        SettingName,
        { value: string; where: string },
      ][]) {
        if (raw.values[name] === undefined) raw.values[name] = setting;
      }
      raw.files.push(...yaml.files);
      raw.notes.push(
        ...yaml.notes,
        `cloud.conf keys left empty were filled from cloud ${cloudName} of ${yaml.origin}`,
      );
    } else if (cloudsFile || cloud) {
      raw.notes.push(`${raw.origin}: [Global] clouds-file/cloud ignored without use-clouds = true`);
    }
    if (env.OS_CLOUD) raw.notes.push('OS_CLOUD is set but --cloud-config files take precedence');
  } else if (env.OS_CLOUD) {
    source = 'clouds.yaml';
    raw = readCloudsYaml({ ...common, cloud: env.OS_CLOUD, selectedBy: 'environment OS_CLOUD' });
  } else if (envConfiguresCloud(env)) {
    source = 'environment';
    raw = readEnv(env);
  } else {
    throw new ConfigError(
      'no cloud configuration: pass --cloud-config <cloud.conf>, set OS_CLOUD (clouds.yaml), ' +
        'or set OS_AUTH_URL/OS_AUTH_TYPE and the other OS_* variables',
    );
  }
  return { config: resolveSettings(raw), source, files: raw.files, notes: raw.notes };
}
