/**
 * The scale bench's figures (bench/scale.ts): one row per step, and each figure's growth: the slope
 * per 1,000 volumes between the first and the last step, and how far the middle steps are from that
 * line (linear when small), as a Markdown table. With `--flag-variants`, the controller process's
 * figures per V8 flag variant and step (medians of the runs), each as a ratio of the second variant
 * to the first (opt / image), with both variants' slopes per 1,000 volumes.
 */
import type { Mem } from './proc.ts';

/** ListVolumes over all pages: wall time, pages, Cinder requests, entries. */
export interface Listing {
  ms: number;
  pages: number;
  reqs: number;
  n: number;
}

export interface Row {
  n: number;
  createS: number;
  list0: Listing;
  list100: Listing;
  passMs: number;
  passReqs: number;
  examined: number;
  rss: number;
  anon: number;
  grpcListMs: number;
}

/** Prints the growth table of `rows` (nothing for fewer than two steps). */
export function printGrowth(rows: Row[]): void {
  if (rows.length >= 2) {
    const a = rows[0]!;
    const b = rows.at(-1)!;
    const figures: [string, (r: Row) => number, string][] = [
      ['ListVolumes all pages (default page)', (r) => r.list0.ms, 'ms'],
      ['ListVolumes Cinder requests (default page)', (r) => r.list0.reqs, ''],
      ['ListVolumes all pages (page 100)', (r) => r.list100.ms, 'ms'],
      ['ListVolumes Cinder requests (page 100)', (r) => r.list100.reqs, ''],
      ['reconciler pass', (r) => r.passMs, 'ms'],
      ['reconciler Cinder requests', (r) => r.passReqs, ''],
      ['controller RSS', (r) => r.rss, 'MiB'],
      ['controller anon', (r) => r.anon, 'MiB'],
    ];
    console.log(
      `| figure | ${rows.map((r) => r.n).join(' | ')} | slope per 1,000 | largest deviation from the line |`,
    );
    console.log(`|---|${rows.map(() => '---|').join('')}---|---|`);
    for (const [name, f, unit] of figures) {
      const slope = ((f(b) - f(a)) / (b.n - a.n)) * 1000;
      const dev = Math.max(...rows.map((r) => Math.abs(f(r) - (f(a) + (slope * (r.n - a.n)) / 1000))));
      const fmt = (x: number) => (unit === 'MiB' ? x.toFixed(1) : x.toFixed(0));
      console.log(
        `| ${name}${unit ? ` (${unit})` : ''} | ${rows.map((r) => fmt(f(r))).join(' | ')} | ${slope.toFixed(unit === 'MiB' ? 2 : 1)} | ${fmt(dev)} |`,
      );
    }
  }
}

/** One run of the controller process (bench/scale-controller.ts). */
export interface ControllerRun {
  readyMs: number;
  /** CPU used by the process until ready (start-up). */
  startCpu: number;
  /** Ready → the start-up reconciler pass's end, wall (NaN when its end was not seen) and CPU (then: over the settle time). */
  passMs: number;
  passCpu: number;
  /** False when the pass's end was not seen (no kubeconfig, nothing stale, or past its bound). */
  passSeen: boolean;
  idle: Mem;
  listMs: number;
  listCpu: number;
  pages: number;
  after: Mem;
}

/** One step's controller runs per flag variant (the same number of runs each, interleaved). */
export interface VariantStep {
  n: number;
  runs: Record<string, ControllerRun[]>;
}

/** Median of the numbers among `xs` (NaN: not measured). */
const med = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The variant figures: name, unit, value of one run. */
export const VARIANT_FIGURES: [string, string, (r: ControllerRun) => number][] = [
  ['start → ready', 'ms', (r) => r.readyMs],
  ['CPU to ready', 'ms', (r) => r.startCpu],
  ['start-up reconciler pass after ready', 'ms', (r) => r.passMs],
  ['— its CPU', 'ms', (r) => r.passCpu],
  ['idle RSS after start and pass', 'MiB', (r) => r.idle.rss],
  ['— anon', 'MiB', (r) => r.idle.anon],
  ['— file', 'MiB', (r) => r.idle.file],
  ['ListVolumes all pages over gRPC', 'ms', (r) => r.listMs],
  ['— its CPU', 'ms', (r) => r.listCpu],
  ['RSS after the listing', 'MiB', (r) => r.after.rss],
  ['— anon', 'MiB', (r) => r.after.anon],
  ['— file', 'MiB', (r) => r.after.file],
];

/** Median of one figure over a variant's runs of a step. */
export function variantMedian(step: VariantStep, variant: string, f: (r: ControllerRun) => number): number {
  return med((step.runs[variant] ?? []).map(f));
}

const ratio = (x: number, y: number) => (Number.isFinite(y / x) ? `×${(y / x).toFixed(2)}` : '×–');
const fmt = (x: number, unit: string) =>
  Number.isNaN(x) ? '–' : unit === 'MiB' ? x.toFixed(1) : x.toFixed(0);

/** One line per step while the bench runs: each figure's medians `a / b` and their ratio b/a. */
export function variantSummary(step: VariantStep, a = 'image', b = 'opt'): string {
  const runs = step.runs[a]?.length ?? 0;
  const items: [string, string, (r: ControllerRun) => number][] = [
    ['CPU to ready', 'ms', (r) => r.startCpu],
    ['pass CPU', 'ms', (r) => r.passCpu],
    ['idle RSS', 'MiB', (r) => r.idle.rss],
    ['ListVolumes', 'ms', (r) => r.listMs],
    ['its CPU', 'ms', (r) => r.listCpu],
    ['RSS after', 'MiB', (r) => r.after.rss],
  ];
  const parts = items.map(([name, unit, f]) => {
    const x = variantMedian(step, a, f);
    const y = variantMedian(step, b, f);
    return `${name} ${fmt(x, unit)} / ${fmt(y, unit)} ${unit} (${ratio(x, y)})`;
  });
  return `${step.n} volumes, ${a} / ${b} (median of ${runs} runs each): ${parts.join(', ')}`;
}

/**
 * The Markdown table of every figure per step, `a / b (×b/a)`, and the slope per 1,000 volumes of
 * each variant between the first and the last step with volumes (when there are two such steps).
 */
export function variantTable(steps: VariantStep[], a = 'image', b = 'opt'): string[] {
  const grown = steps.filter((s) => s.n > 0);
  const first = grown[0];
  const last = grown.length >= 2 ? grown.at(-1) : undefined;
  const seen = grown.flatMap((s) => Object.values(s.runs).flat());
  const out = [
    `V8 flags: ${a} / ${b} (×${b}/${a}); medians of ${steps[0]?.runs[a]?.length ?? 0} runs per variant and step, ` +
      `alternating order; the start-up pass's end seen in ${seen.filter((r) => r.passSeen).length} of ${seen.length} runs with volumes ` +
      '(else its CPU is over the settle time)',
    `| figure | ${steps.map((s) => s.n).join(' | ')} | slope per 1,000 volumes, ${a} / ${b} |`,
    `|---|${steps.map(() => '---|').join('')}---|`,
  ];
  for (const [name, unit, f] of VARIANT_FIGURES) {
    const cells = steps.map((s) => {
      const x = variantMedian(s, a, f);
      const y = variantMedian(s, b, f);
      return `${fmt(x, unit)} / ${fmt(y, unit)} (${ratio(x, y)})`;
    });
    let slope = '';
    if (first && last) {
      const per = (v: string) =>
        ((variantMedian(last, v, f) - variantMedian(first, v, f)) / (last.n - first.n)) * 1000;
      const digits = unit === 'MiB' ? 2 : 1;
      const show = (x: number) => (Number.isNaN(x) ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`);
      slope = `${show(per(a))} / ${show(per(b))}`;
    }
    out.push(`| ${name} (${unit}) | ${cells.join(' | ')} | ${slope} |`);
  }
  return out;
}
