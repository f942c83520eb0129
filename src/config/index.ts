/** Public API of the configuration layer. */
export { preloadYaml } from './clouds-yaml.ts';
export { describeConfig } from './describe.ts';
export {
  type CloudConfigOptions,
  type ConfigSourceKind,
  type LoadedCloudConfig,
  loadCloudConfig,
  loadCloudConfigDetailed,
} from './load.ts';
export { DEFAULT_NODE_VOLUME_ATTACH_LIMIT } from './resolve.ts';
export { CloudConfigSource, type CloudConfigSourceOptions } from './source.ts';
export type { AuthConfig, AuthType, BlockStorageConfig, CloudConfig, TlsConfig } from './types.ts';
export { ConfigError } from './types.ts';
