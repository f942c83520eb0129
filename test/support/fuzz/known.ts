/**
 * Violations the fuzz suite finds that are known and owned by an open fix (issue 11), in ONE place:
 * each entry names the area, why it is still open, and matches as narrowly as it can. A run counts
 * them separately and prints them; it fails on anything not listed here. Remove an entry with the
 * fix that makes it unnecessary.
 */
import type { Violation } from './harness.ts';

export interface KnownViolation {
  id: string;
  /** Who owns the fix (issue 11 item / area). */
  area: string;
  reason: string;
  matches(v: Violation): boolean;
}

export const KNOWN_VIOLATIONS: KnownViolation[] = [];

export function isKnown(v: Violation): KnownViolation | undefined {
  return KNOWN_VIOLATIONS.find((k) => k.matches(v));
}
