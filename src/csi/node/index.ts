export { connectionInfoFromPublishContext, resolveConnection } from './connection.ts';
export { toCsiError } from './errors.ts';
export {
  createNodeService,
  DEFAULT_MAX_VOLUMES_PER_NODE,
  type NodeServiceImpl,
  type NodeServiceOptions,
} from './service.ts';
export { StateFileError, StateStore, type VolumeState } from './state.ts';
