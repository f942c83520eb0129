/**
 * Strict offline validation of Kubernetes objects against the API types of a Kubernetes release,
 * done by the TypeScript compiler: every object becomes a typed object literal
 * (`const o: Deployment = {...}`), so unknown fields (excess property check), missing required
 * fields and wrong types are all compile errors, reported with the object and the JSON path.
 *
 * Types per release, from maintained npm packages generated from Kubernetes' OpenAPI spec:
 *   1.30  kubernetes-types@1.30.0              (interfaces per group/version, e.g. apps/v1)
 *   1.34  @kubernetes/client-node@1.4.0 models (aliased as k8s-models-1-34; V1Deployment, ...)
 * Custom resources this project renders (VolumeSnapshotClass, ServiceMonitor, PodMonitor) are not
 * in either package: CRD_TYPES below declares them from their CRDs' schemas (external-snapshotter
 * v8 snapshot.storage.k8s.io/v1, prometheus-operator monitoring.coreos.com/v1), equally strict.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ts from 'typescript';

export type KubeVersion = '1.30' | '1.34';
export const KUBE_VERSIONS: readonly KubeVersion[] = ['1.30', '1.34'];

export interface KubeObject {
  /** Where the object came from, for messages (e.g. 'deploy/rbac.yaml #3'). */
  source: string;
  object: Record<string, unknown>;
}

export interface ValidationError {
  source: string;
  kind: string;
  name: string;
  message: string;
}

const require = createRequire(import.meta.url);

function packageDir(name: string): string {
  return dirname(require.resolve(`${name}/package.json`));
}

/** The global types the compiler requires, declared just enough for data-only API types. */
const MINIMAL_LIB = `declare global {
  interface Array<T> { length: number; [n: number]: T }
  interface ReadonlyArray<T> { readonly length: number; readonly [n: number]: T }
  interface Boolean {} interface Function {} interface CallableFunction {} interface NewableFunction {}
  interface IArguments {} interface Number {} interface Object {} interface RegExp {} interface String {}
  interface Date { getTime(): number; toISOString(): string }
  var Date: { new (value?: number | string): Date };
}`;

const INT_OR_STRING = 'export type IntOrString = number | string;';

const CRD_TYPES = `
interface ObjectMeta {
  name?: string; namespace?: string; labels?: { [k: string]: string }; annotations?: { [k: string]: string };
  finalizers?: string[]; generateName?: string;
}
interface LabelSelectorRequirement { key: string; operator: string; values?: string[] }
interface LabelSelector { matchLabels?: { [k: string]: string }; matchExpressions?: LabelSelectorRequirement[] }
interface NamespaceSelector { any?: boolean; matchNames?: string[] }
interface RelabelConfig {
  action?: string; modulus?: number; regex?: string; replacement?: string; separator?: string;
  sourceLabels?: string[]; targetLabel?: string;
}
interface ScrapeEndpoint {
  port?: string; path?: string; scheme?: 'http' | 'https'; interval?: string; scrapeTimeout?: string;
  honorLabels?: boolean; honorTimestamps?: boolean; params?: { [k: string]: string[] };
  relabelings?: RelabelConfig[]; metricRelabelings?: RelabelConfig[]; followRedirects?: boolean;
  enableHttp2?: boolean; filterRunning?: boolean;
}
export interface VolumeSnapshotClass {
  apiVersion: 'snapshot.storage.k8s.io/v1'; kind: 'VolumeSnapshotClass'; metadata?: ObjectMeta;
  driver: string; deletionPolicy: 'Delete' | 'Retain'; parameters?: { [k: string]: string };
}
export interface VolumeSnapshot {
  apiVersion: 'snapshot.storage.k8s.io/v1'; kind: 'VolumeSnapshot'; metadata?: ObjectMeta;
  spec: {
    source: { persistentVolumeClaimName?: string; volumeSnapshotContentName?: string };
    volumeSnapshotClassName?: string;
  };
}
export interface ServiceMonitor {
  apiVersion: 'monitoring.coreos.com/v1'; kind: 'ServiceMonitor'; metadata?: ObjectMeta;
  spec: {
    selector: LabelSelector; namespaceSelector?: NamespaceSelector; endpoints: (ScrapeEndpoint & { targetPort?: number | string })[];
    jobLabel?: string; targetLabels?: string[]; podTargetLabels?: string[]; sampleLimit?: number;
  };
}
export interface PodMonitor {
  apiVersion: 'monitoring.coreos.com/v1'; kind: 'PodMonitor'; metadata?: ObjectMeta;
  spec: {
    selector: LabelSelector; namespaceSelector?: NamespaceSelector; podMetricsEndpoints: ScrapeEndpoint[];
    jobLabel?: string; podTargetLabels?: string[]; sampleLimit?: number;
  };
}
`;

const CRD_KINDS: Record<string, string> = {
  'snapshot.storage.k8s.io/v1/VolumeSnapshotClass': 'VolumeSnapshotClass',
  'snapshot.storage.k8s.io/v1/VolumeSnapshot': 'VolumeSnapshot',
  'monitoring.coreos.com/v1/ServiceMonitor': 'ServiceMonitor',
  'monitoring.coreos.com/v1/PodMonitor': 'PodMonitor',
};

/** The declaration file and type name for (apiVersion, kind) in a release; undefined if unknown. */
function typeFor(
  version: KubeVersion,
  apiVersion: string,
  kind: string,
): { file: string; type: string } | undefined {
  const [groupPart, ver] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  if (version === '1.30') {
    // kubernetes-types names directories after the group's first label (rbac.authorization.k8s.io → rbac).
    const dir = join(packageDir('kubernetes-types'), groupPart!.split('.')[0]!);
    const file = join(dir, `${ver}.d.ts`);
    if (!existsSync(file) || !readFileSync(file, 'utf8').includes(`export interface ${kind} {`))
      return undefined;
    return { file, type: kind };
  }
  // client-node models are named <Version><Kind>, e.g. V1Deployment, V1CSIDriver.
  const type = `${ver![0]!.toUpperCase()}${ver!.slice(1)}${kind}`;
  const file = join(packageDir('k8s-models-1-34'), 'dist', 'gen', 'models', `${type}.d.ts`);
  return existsSync(file) ? { file, type } : undefined;
}

/** `typescript` import specifier for a .d.ts file given by absolute path. */
function specifier(file: string): string {
  return file.replace(/\.d\.ts$/, '.js');
}

/**
 * Validates every object strictly against the given release's API types. Returns one error per
 * problem (empty = all valid). Objects of an unknown apiVersion/kind are errors too.
 */
export function validateObjects(objects: readonly KubeObject[], version: KubeVersion): ValidationError[] {
  const errors: ValidationError[] = [];
  const header: string[] = [`import type { ${Object.values(CRD_KINDS).join(', ')} } from './crds.js';`];
  const lines: string[] = [];
  const ranges: { start: number; end: number; obj: KubeObject }[] = [];
  const imports = new Map<string, string>();
  objects.forEach((entry, i) => {
    const { apiVersion, kind } = entry.object as { apiVersion?: string; kind?: string };
    const name = String((entry.object['metadata'] as { name?: string } | undefined)?.name ?? '');
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      errors.push({
        source: entry.source,
        kind: String(kind),
        name,
        message: 'apiVersion and kind are required',
      });
      return;
    }
    let typeName = CRD_KINDS[`${apiVersion}/${kind}`];
    if (!typeName) {
      const t = typeFor(version, apiVersion, kind);
      if (!t) {
        errors.push({
          source: entry.source,
          kind,
          name,
          message: `no ${apiVersion} ${kind} in Kubernetes ${version}`,
        });
        return;
      }
      const key = `${t.file}#${t.type}`;
      typeName = imports.get(key) ?? `T${imports.size}_${t.type}`;
      if (!imports.has(key)) {
        imports.set(key, typeName);
        header.push(`import type { ${t.type} as ${typeName} } from ${JSON.stringify(specifier(t.file))};`);
      }
    }
    const body = JSON.stringify(entry.object, null, 2).split('\n');
    const start = lines.length;
    lines.push(`export const o${i}: ${typeName} = ${body[0]}`, ...body.slice(1));
    lines[lines.length - 1] += ';';
    ranges.push({ start, end: lines.length - 1, obj: entry });
  });
  const shift = header.length;
  const text = [...header, ...lines].join('\n');

  const root = join(process.cwd(), '.k8s-validate', `objects-${version}.ts`);
  const crds = join(dirname(root), 'crds.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    // The API types need only a handful of built-ins; the full lib would double the check time.
    noLib: true,
    types: [],
  };
  const host = ts.createCompilerHost(options, true);
  const virtual = new Map([
    [root, `${text}\n${MINIMAL_LIB}`],
    [crds, CRD_TYPES],
  ]);
  // client-node's models import two helper types from dist/types.d.ts, which re-exports the whole
  // client (thousands of declarations, seconds to check). Serve those two declarations alone.
  const modelTypes = join(packageDir('k8s-models-1-34'), 'dist', 'types.d.ts');
  if (version === '1.34' && readFileSync(modelTypes, 'utf8').includes(INT_OR_STRING)) {
    virtual.set(
      modelTypes,
      `${INT_OR_STRING}\nexport declare class V1MicroTime extends Date { toISOString(): string; }\n`,
    );
  }
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, onError, create) => {
    const v = virtual.get(file);
    return v !== undefined
      ? ts.createSourceFile(file, v, lang, true)
      : getSourceFile(file, lang, onError, create);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => virtual.has(file) || fileExists(file);
  const readFile = host.readFile.bind(host);
  host.readFile = (file) => virtual.get(file) ?? readFile(file);
  const directoryExists = host.directoryExists?.bind(host);
  host.directoryExists = (dir) => dir === dirname(root) || (directoryExists ? directoryExists(dir) : true);

  const program = ts.createProgram({ rootNames: [root], options, host });
  const diagnostics = [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics()];
  for (const d of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.file.fileName !== root || d.start === undefined) {
      errors.push({ source: d.file?.fileName ?? 'validator', kind: '', name: '', message });
      continue;
    }
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    const r = ranges.find((x) => line >= x.start + shift && line <= x.end + shift);
    const kind = String(r?.obj.object['kind'] ?? '');
    const name = String((r?.obj.object['metadata'] as { name?: string } | undefined)?.name ?? '');
    const path = r ? jsonPathAt(lines, r.start, line - shift) : '';
    errors.push({
      source: r?.obj.source ?? `line ${line}`,
      kind,
      name,
      message: `${path ? `${path}: ` : ''}${message.split('\n').slice(-1)[0]}`,
    });
  }
  return errors;
}

/** Best-effort JSON path of a line of a pretty-printed object (keys of the enclosing lines). */
function jsonPathAt(lines: string[], start: number, line: number): string {
  const path: string[] = [];
  let indent = Number.POSITIVE_INFINITY;
  for (let i = line; i > start; i--) {
    const l = lines[i]!;
    const ind = l.length - l.trimStart().length;
    if (ind < indent) {
      const m = /^\s*"([^"]+)":/.exec(l);
      if (m) path.unshift(m[1]!);
      else if (/^\s*[[{]/.test(l)) path.unshift('[]');
      indent = ind;
    }
  }
  return path.join('.');
}

export function formatErrors(errors: readonly ValidationError[]): string {
  return errors.map((e) => `${e.source} ${e.kind}/${e.name}: ${e.message}`).join('\n');
}
