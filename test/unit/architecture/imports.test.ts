/**
 * The import graph of src/: no cycles (type-only imports included; a module importing itself is
 * not a cycle), and each layer imports only from layers below it, as the README's layering says:
 * cli → grpc → csi → {kube, host} → openstack → {config, metrics} → util. Reads the sources;
 * runs nothing.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const SRC = path.resolve(import.meta.dirname, '../../../src');

/** Relative imports of every .ts file under src/ (static, re-exports and dynamic `import()`). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const rel of files) {
    const text = readFileSync(path.join(SRC, rel), 'utf8');
    const specs = [
      ...[...text.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+'(\.{1,2}\/[^']+)'/gms)].map((m) => m[1]),
      ...[...text.matchAll(/import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)].map((m) => m[1]),
      ...[...text.matchAll(/^\s*import\s+'(\.{1,2}\/[^']+)'/gm)].map((m) => m[1]),
    ] as string[];
    const deps = specs.map((s) => path.normalize(path.join(path.dirname(rel), s))).filter((d) => d !== rel);
    graph.set(rel, [...new Set(deps)]);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d].join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return found;
}

/** Rank of each top-level folder of src/: a module may import only from a lower rank (or its own folder). */
const RANK: Record<string, number> = {
  cli: 5,
  grpc: 4,
  csi: 3,
  kube: 2,
  host: 2,
  openstack: 1,
  config: 0,
  metrics: 0,
  // the bottom: config and metrics use its logger
  util: -1,
};

describe('src/ import graph', () => {
  const graph = importGraph();

  it('sees the modules (sanity)', () => {
    assert.ok(graph.size > 50, `only ${graph.size} modules found`);
    assert.ok(graph.get(path.join('host', 'connector-factory.ts'))?.includes(path.join('host', 'iscsi.ts')));
  });

  it('has no import cycles', () => {
    assert.deepEqual(cycles(graph), []);
  });

  it('imports only downward between layers', () => {
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      const from = file.split(path.sep)[0] as string;
      for (const d of deps) {
        const to = d.split(path.sep)[0] as string;
        if (from === to || !(from in RANK) || !(to in RANK)) continue;
        if ((RANK[to] as number) >= (RANK[from] as number)) wrong.push(`${file} -> ${d}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});
