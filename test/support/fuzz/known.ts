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

export const KNOWN_VIOLATIONS: KnownViolation[] = [
  {
    id: 'url-shaped-ids',
    area: 'client: issue 11 item 1 (ids checked before they enter a Cinder URL, responses shape-checked)',
    reason:
      'an id "detail", "summary" or "backup:detail" makes Cinder answer with a list; the client returns ' +
      'undefined and the caller throws TypeError (INTERNAL). Seen: ListSnapshots {"snapshot_id":"backup:detail"}',
    matches: (v) => v.kind === 'INTERNAL' && /"(backup:)?(detail|summary)"/.test(v.request),
  },
];

export function isKnown(v: Violation): KnownViolation | undefined {
  return KNOWN_VIOLATIONS.find((k) => k.matches(v));
}
