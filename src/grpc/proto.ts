import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** proto/csi.proto, found relative to this module both in src/ (dev) and dist/ (image). */
export const CSI_PROTO_PATH = fileURLToPath(new URL('../../proto/csi.proto', import.meta.url));

/**
 * Loader options; the generated types in src/csi/generated were made with the same ones
 * (scripts/gen-proto-types.sh). int64 → decimal strings (converted to bigint in src/csi/rpc.ts),
 * enums → their names, absent fields → defaults, oneofs → a virtual field naming the set member.
 */
export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface CsiServiceDefinitions {
  Identity: ServiceDefinition;
  Controller: ServiceDefinition;
  Node: ServiceDefinition;
  GroupController: ServiceDefinition;
  SnapshotMetadata: ServiceDefinition;
}

export function loadCsiServices(): CsiServiceDefinitions {
  const def = loadSync(CSI_PROTO_PATH, LOADER_OPTIONS);
  const pick = (name: string) => {
    const svc = def[`csi.v1.${name}`];
    if (!svc) throw new Error(`csi.proto has no service csi.v1.${name}`);
    return svc as unknown as ServiceDefinition;
  };
  return {
    Identity: pick('Identity'),
    Controller: pick('Controller'),
    Node: pick('Node'),
    GroupController: pick('GroupController'),
    SnapshotMetadata: pick('SnapshotMetadata'),
  };
}

/** The protobufjs reflection root of csi.proto, with field options (csi_secret) preserved. */
export function loadCsiRoot(): protobuf.Root {
  const require = createRequire(import.meta.url);
  const descriptor = require('protobufjs/google/protobuf/descriptor.json') as {
    nested: { google: { nested: { protobuf: { nested: protobuf.INamespace['nested'] } } } };
  };
  protobuf.common('descriptor', descriptor.nested.google.nested.protobuf.nested ?? {});
  const root = new protobuf.Root();
  root.loadSync(CSI_PROTO_PATH, { keepCase: true });
  root.resolveAll();
  return root;
}
