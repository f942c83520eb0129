/**
 * node:test reporter for scripts/test.sh: node's own `spec` output, unchanged, plus the list of
 * every skip of the run — skipped suites as well as tests (node's `ℹ skipped` counts only tests) —
 * with its reason, printed just before node's closing summary lines (`ℹ tests …` … `ℹ duration_ms`).
 *
 * A skip is allowed only when its reason matches a line of scripts/allowed-skips.txt (true limits
 * of a machine, not missing set-up). Under CI (CI=true or 1) any other skip is a failure: the list
 * marks it, and the verdict goes to the file named by CINDER_CSI_TEST_VERDICT, which test.sh reads
 * to set the exit code (a reporter cannot set the test runner's exit status itself).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { spec as Spec } from 'node:test/reporters';

interface Skip {
  kind: 'suite' | 'test';
  file: string;
  name: string;
  reason: string;
  allowed: boolean;
}

interface Event {
  type: string;
  data: {
    name?: string;
    nesting?: number;
    file?: string;
    skip?: string | boolean;
    message?: string;
    details?: { type?: string };
  };
}

const ALLOWED_FILE = path.join(import.meta.dirname, 'allowed-skips.txt');
const ci = /^(true|1|yes)$/i.test(process.env['CI'] ?? '');
const HEARTBEAT_MS = 15_000;

function allowedReasons(): string[] {
  try {
    return readFileSync(ALLOWED_FILE, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(' # ')[0]!.trim());
  } catch {
    return [];
  }
}

export default class SkipReporter extends Transform {
  readonly #spec = new Spec() as Transform;
  readonly #allowed = allowedReasons();
  readonly #skips: Skip[] = [];
  /** Names of the running tests per file and nesting level, for "suite › test" paths. */
  readonly #stack = new Map<string, string[]>();
  #printed = false;
  /** When output last went out, and what runs now: a line every ~15 s while a long test runs. */
  #lastOutput = Date.now();
  #running = '';
  #runningSince = Date.now();
  readonly #heartbeat: NodeJS.Timeout;

  constructor() {
    super({ writableObjectMode: true });
    this.#heartbeat = setInterval(() => {
      if (Date.now() - this.#lastOutput < HEARTBEAT_MS) return;
      const secs = Math.round((Date.now() - this.#runningSince) / 1000);
      const what = this.#running ? `: ${this.#running}` : '';
      this.#emit(`# … tests still running${what} (${secs}s since the last result)\n`);
    }, 1000);
    this.#heartbeat.unref();
  }

  #emit(chunk: unknown): void {
    this.#lastOutput = Date.now();
    this.push(chunk);
  }

  override _transform(ev: Event, _enc: BufferEncoding, cb: TransformCallback): void {
    if (ev.type === 'test:pass' || ev.type === 'test:fail') {
      this.#running = '';
      this.#runningSince = Date.now();
    }
    try {
      this.#observe(ev);
      if (!this.#printed && ev.type === 'test:diagnostic' && /^tests \d+$/.test(ev.data.message ?? '')) {
        // node's closing summary starts: the skip list goes right before it
        this.#printed = true;
        this.#emit(this.#report());
      }
    } catch (e) {
      this.#emit(`test-reporter: ${String(e)}\n`);
    }
    this.#spec.write(ev);
    for (let c = this.#spec.read(); c !== null; c = this.#spec.read()) this.#emit(c);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    clearInterval(this.#heartbeat);
    if (!this.#printed) this.push(this.#report());
    this.#spec.on('data', (c) => this.push(c));
    this.#spec.on('end', () => {
      this.#verdict();
      cb();
    });
    this.#spec.end();
  }

  #observe(ev: Event): void {
    const d = ev.data;
    const file = d.file ? path.relative(process.cwd(), d.file) : '';
    if (ev.type === 'test:start' && d.name !== undefined && d.nesting !== undefined) {
      const stack = this.#stack.get(file) ?? [];
      stack.length = d.nesting;
      stack[d.nesting] = d.name;
      this.#stack.set(file, stack);
      this.#running = [file, ...stack].filter(Boolean).join(' › ');
      this.#runningSince = Date.now();
      return;
    }
    if ((ev.type !== 'test:pass' && ev.type !== 'test:fail') || d.skip === undefined || d.skip === false)
      return;
    const parents = (this.#stack.get(file) ?? []).slice(0, d.nesting ?? 0);
    const name = [...parents, d.name ?? '?'].join(' › ');
    const reason = typeof d.skip === 'string' && d.skip ? d.skip : '(no reason given)';
    this.#skips.push({
      kind: d.details?.type === 'suite' ? 'suite' : 'test',
      file,
      name,
      reason,
      allowed: this.#allowed.some((a) => reason.includes(a)),
    });
  }

  #report(): string {
    const s = this.#skips;
    const suites = s.filter((x) => x.kind === 'suite').length;
    const bad = s.filter((x) => !x.allowed);
    const lines = [
      '',
      s.length === 0
        ? 'skips: none'
        : `skips: ${s.length} (${suites} suites, ${s.length - suites} tests; a skipped suite runs none of its tests)`,
    ];
    for (const x of s) {
      const mark = x.allowed ? 'allowed' : ci ? 'NOT ALLOWED IN CI' : 'not allowed in CI';
      lines.push(`  ﹣ ${x.kind.padEnd(5)} ${x.file} › ${x.name}`, `      reason: ${x.reason}  [${mark}]`);
    }
    if (bad.length > 0) {
      lines.push(
        ci
          ? `✖ CI: ${bad.length} skip(s) not on the allowed list (${path.relative(process.cwd(), ALLOWED_FILE)}): a missing tool, lab or root fails the run`
          : `  (${bad.length} of these would fail CI: bring up what they need, e.g. as root: bash test/setup.sh)`,
      );
    }
    return `${lines.join('\n')}\n\n`;
  }

  #verdict(): void {
    const out = process.env['CINDER_CSI_TEST_VERDICT'];
    if (!out) return;
    const bad = this.#skips.filter((x) => !x.allowed).length;
    writeFileSync(out, `skips ${this.#skips.length}\nnot-allowed ${bad}\nci ${ci ? 1 : 0}\n`);
  }
}
