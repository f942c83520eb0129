/**
 * The scale bench's figures (bench/scale.ts): one row per step, and each figure's growth: the slope
 * per 1,000 volumes between the first and the last step, and how far the middle steps are from that
 * line (linear when small), as a Markdown table.
 */

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
