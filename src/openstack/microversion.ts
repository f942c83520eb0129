/**
 * Cinder microversions: parsing, comparison, negotiation and the feature table the client gates
 * calls on. Pure functions; the HTTP side (version discovery) lives in cinder-discovery.ts.
 */
import type { Microversion } from './cinder-api.ts';
import { MicroversionError } from './errors.ts';

/** The highest microversion this client understands (Cinder Zed serves up to 3.70). */
export const CLIENT_MAX_MICROVERSION = '3.70';
/** What "no microversion" means for Cinder v3. */
export const BASE_MICROVERSION = '3.0';

/** Parses "3.44" (also "v3.0" from version ids). Throws MicroversionError on anything else. */
export function parseMicroversion(text: string): Microversion {
  const m = /^v?(\d+)\.(\d+)$/.exec(text.trim());
  if (!m) throw new MicroversionError(`invalid microversion "${text}": expected MAJOR.MINOR such as 3.44`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

export function formatMicroversion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareMicroversions(a: Microversion, b: Microversion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

/** The range a server advertises in its version document (`min_version`..`version`). */
export interface ServerVersionRange {
  min: Microversion;
  max: Microversion;
}

/**
 * The highest microversion both sides support: min(clientMax, server max). A server that advertises
 * no microversions (empty `version`) only speaks 3.0. Throws MicroversionError when the ranges do
 * not overlap (client max below the server's minimum).
 */
export function negotiateMicroversion(
  clientMax: Microversion,
  server: ServerVersionRange | undefined,
): Microversion {
  if (!server) return parseMicroversion(BASE_MICROVERSION);
  if (compareMicroversions(clientMax, server.min) < 0) {
    throw new MicroversionError(
      `no common Cinder API microversion: client supports up to ${formatMicroversion(clientMax)}, ` +
        `server requires at least ${formatMicroversion(server.min)}`,
    );
  }
  return compareMicroversions(clientMax, server.max) <= 0 ? clientMax : server.max;
}

/**
 * The microversion each gated feature needs. `requireFeature` names the feature in its error, so a
 * refusal reads "attachments (createAttachment) need Cinder API microversion 3.27, negotiated 3.20".
 */
export const CINDER_FEATURES = {
  userMessages: { version: '3.3', label: 'user messages' },
  userMessageFilters: { version: '3.5', label: 'user message filters' },
  groups: { version: '3.13', label: 'generic volume groups' },
  groupSnapshots: { version: '3.14', label: 'group snapshots' },
  forceDeleteVolume: { version: '3.23', label: 'force delete of a volume' },
  attachments: { version: '3.27', label: 'attachments' },
  attachmentFilters: { version: '3.31', label: 'attachment list filters' },
  revertToSnapshot: { version: '3.40', label: 'revert to snapshot' },
  onlineExtend: { version: '3.42', label: 'online (in-use) extend' },
  backupMetadata: { version: '3.43', label: 'backup metadata' },
  attachmentComplete: { version: '3.44', label: 'attachment complete' },
  volumeFromBackup: { version: '3.47', label: 'volume from backup' },
  backupAvailabilityZone: { version: '3.51', label: 'backup availability zone' },
  attachMode: { version: '3.54', label: 'attachment mode' },
  timeFilters: { version: '3.60', label: 'time-comparison list filters' },
  defaultVolumeType: { version: '3.62', label: 'default volume type' },
} as const satisfies Record<string, { version: string; label: string }>;

export type CinderFeature = keyof typeof CINDER_FEATURES;

/** True when `negotiated` is at least the feature's version. */
export function hasFeature(negotiated: Microversion, feature: CinderFeature): boolean {
  return compareMicroversions(negotiated, parseMicroversion(CINDER_FEATURES[feature].version)) >= 0;
}

/** Throws MicroversionError (locally, no request sent) when `negotiated` is below the feature's version. */
export function requireFeature(negotiated: Microversion, feature: CinderFeature, operation: string): void {
  if (hasFeature(negotiated, feature)) return;
  const { version, label } = CINDER_FEATURES[feature];
  throw new MicroversionError(
    `${label} (${operation}) need Cinder API microversion ${version}, but the negotiated microversion is ` +
      `${formatMicroversion(negotiated)}; upgrade Cinder or raise the client's maximum microversion`,
  );
}
