/** The figures and violations of a fuzz run as text (bench output, test diagnostics). */
import { LAB_SLOW_MS, SLOW_MS } from './calls.ts';
import type { FuzzResult, Violation } from './harness.ts';

/** One line per figure, for the bench and the test's diagnostics. */
export function formatResult(r: FuzzResult): string {
  const codes = Object.entries(r.codes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const lines = [
    `seed=${r.seed} requests=${r.requests} raw-frames=${r.rawFrames}`,
    `codes: ${codes}`,
    `latency: max=${r.maxLatencyMs}ms (${r.maxLatencyRpc}) p99=${r.p99LatencyMs}ms; over ${SLOW_MS} ms while the lab's own GETs failed or took >= ${LAB_SLOW_MS} ms: ${r.slowWhileLabSlow}; lab GET max=${r.labMaxMs}ms, failed=${r.labFailed}; successful long operations over ${SLOW_MS} ms: ${r.longOperations}`,
    `probes: ok=${r.probes.ok} failed=${r.probes.failed}; connection teardowns=${r.teardowns}`,
    `violations=${r.violations.length} known=${r.knownViolations.length}; leftovers swept=${r.leftoversSwept}; driver log ${r.logBytes} bytes`,
  ];
  for (const v of r.violations.slice(0, 50)) lines.push(`VIOLATION seed=${r.seed} ${formatViolation(v)}`);
  const byKnown = new Map<string, number>();
  for (const v of r.knownViolations) byKnown.set(v.known!.id, (byKnown.get(v.known!.id) ?? 0) + 1);
  for (const [id, n] of byKnown) lines.push(`known ${id}: ${n}`);
  return lines.join('\n');
}

export function formatViolation(v: Violation): string {
  return `${v.kind} ${v.rpc} code=${v.code ?? '-'} ${v.latencyMs ?? '-'}ms message=${JSON.stringify(v.message ?? '')} request=${v.request}`;
}
