import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSync } from '@grpc/proto-loader';
import {
  CSI_PROTO_PATH,
  csiDescriptorFromProto,
  DESCRIPTOR_MODULE,
  descriptorModule,
} from '../../../scripts/gen-proto-json.ts';
import { CSI_DESCRIPTOR } from '../../../src/grpc/csi-descriptor.ts';
import { LOADER_OPTIONS, loadCsiRoot, loadCsiServices, sharedCsiRoot } from '../../../src/grpc/proto.ts';

test('the precomputed CSI descriptor matches proto/csi.proto (run scripts/gen-proto-json.ts)', () => {
  const fresh = csiDescriptorFromProto();
  assert.deepEqual(CSI_DESCRIPTOR, fresh);
  assert.equal(readFileSync(DESCRIPTOR_MODULE, 'utf8'), descriptorModule(fresh));
});

test('a csi.proto changed after generation is detected', () => {
  const mutated = readFileSync(CSI_PROTO_PATH, 'utf8').replace(
    'string staging_target_path = 3;',
    'string staging_target_path = 3 [(csi_secret) = true];',
  );
  assert.notEqual(mutated, readFileSync(CSI_PROTO_PATH, 'utf8'), 'the test edits a real field');
  const path = join(tmpdir(), `csi-mutated-${process.pid}.proto`);
  writeFileSync(path, mutated);
  try {
    assert.notDeepEqual(csiDescriptorFromProto(path), CSI_DESCRIPTOR);
  } finally {
    rmSync(path, { force: true });
  }
});

/** Sample messages that exercise oneofs, maps, int64, enums, wrappers, nested and repeated fields. */
const SAMPLES: [string, string, Record<string, unknown>][] = [
  ['Identity', 'GetPluginInfo', {}],
  [
    'Controller',
    'CreateVolume',
    {
      name: 'pvc-1',
      capacity_range: { required_bytes: '10737418240', limit_bytes: '0' },
      volume_capabilities: [
        {
          mount: { fs_type: 'ext4', mount_flags: ['noatime'], volume_mount_group: '' },
          access_mode: { mode: 'SINGLE_NODE_WRITER' },
        },
        { block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } },
      ],
      parameters: { type: 'fake' },
      secrets: { password: 'x' },
      volume_content_source: { snapshot: { snapshot_id: 's-1' } },
      accessibility_requirements: { requisite: [{ segments: { zone: 'nova' } }], preferred: [] },
    },
  ],
  ['Controller', 'ListVolumes', { max_entries: 5, starting_token: 'abc' }],
  [
    'Node',
    'NodeStageVolume',
    {
      volume_id: 'v',
      publish_context: { attachment_id: 'a' },
      staging_target_path: '/x',
      volume_capability: { block: {}, access_mode: { mode: 'SINGLE_NODE_MULTI_WRITER' } },
      secrets: {},
      volume_context: {},
    },
  ],
];
const RESPONSES: [string, string, Record<string, unknown>][] = [
  ['Identity', 'Probe', { ready: { value: true } }],
  [
    'Controller',
    'CreateSnapshot',
    {
      snapshot: {
        size_bytes: '1073741824',
        snapshot_id: 's',
        source_volume_id: 'v',
        creation_time: { seconds: '1700000000', nanos: 5 },
        ready_to_use: true,
        group_snapshot_id: '',
      },
    },
  ],
  [
    'Node',
    'NodeGetVolumeStats',
    { usage: [{ available: '1', total: '2', used: '1', unit: 'BYTES' }], volume_condition: null },
  ],
];

test('service definitions encode and decode exactly like @grpc/proto-loader with the same options', () => {
  const ours = loadCsiServices();
  const theirs = loadSync(CSI_PROTO_PATH, LOADER_OPTIONS);
  for (const svc of ['Identity', 'Controller', 'Node', 'GroupController', 'SnapshotMetadata'] as const) {
    const ref = theirs[`csi.v1.${svc}`] as unknown as Record<string, Record<string, unknown>>;
    const mine = ours[svc] as unknown as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(mine).sort(), Object.keys(ref).sort(), `${svc} methods`);
    for (const [m, d] of Object.entries(ref)) {
      const o = mine[m]!;
      for (const k of ['path', 'requestStream', 'responseStream', 'originalName']) {
        assert.equal(o[k], d[k], `${svc}.${m}.${k}`);
      }
      const typeName = (x: unknown) => (x as { type: { name: string } }).type.name;
      assert.equal(typeName(o['requestType']), typeName(d['requestType']));
      assert.equal(typeName(o['responseType']), typeName(d['responseType']));
    }
  }
  type Fn = (x: unknown) => unknown;
  const fns = (svc: string, m: string, which: 'request' | 'response') => {
    const o = (ours as unknown as Record<string, Record<string, Record<string, Fn>>>)[svc]![m]!;
    const r = (theirs[`csi.v1.${svc}`] as unknown as Record<string, Record<string, Fn>>)[m]!;
    return {
      ser: [o[`${which}Serialize`]!, r[`${which}Serialize`]!],
      de: [o[`${which}Deserialize`]!, r[`${which}Deserialize`]!],
    };
  };
  for (const [list, which] of [
    [SAMPLES, 'request'],
    [RESPONSES, 'response'],
  ] as const) {
    for (const [svc, m, msg] of list) {
      const { ser, de } = fns(svc, m, which);
      const a = Buffer.from(ser[0]!(msg) as Uint8Array);
      const b = Buffer.from(ser[1]!(msg) as Uint8Array);
      assert.deepEqual(a, b, `${svc}.${m} ${which} bytes`);
      assert.deepEqual(de[0]!(b), de[1]!(b), `${svc}.${m} ${which} decoded`);
    }
  }
});

test('the reflection root keeps the csi_secret field options', () => {
  const t = loadCsiRoot().lookupType('csi.v1.NodeStageVolumeRequest');
  assert.equal(t.fields['secrets']?.options?.['(csi_secret)'], true);
  assert.equal(t.fields['volume_id']?.options?.['(csi_secret)'], undefined);
});

test('sharedCsiRoot: one resolved root per process (the startup snapshot builds it at build time)', () => {
  const root = sharedCsiRoot();
  assert.equal(sharedCsiRoot(), root);
  assert.notEqual(loadCsiRoot(), root, 'loadCsiRoot still builds a fresh one');
  assert.equal(root.lookupService('csi.v1.Identity').methods['Probe']?.responseType, 'ProbeResponse');
});
