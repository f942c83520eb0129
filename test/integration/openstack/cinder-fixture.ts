/**
 * The lab fixture of the Cinder client's integration tests (cinder*.test.ts): a per-run name prefix
 * and metadata tag, waits, clean-up helpers, and `describeOnLab`, which runs a suite against the lab
 * Cinder in both auth modes (Keystone on :8776, noauth on :8786) with a negotiated CinderClient.
 */
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CinderClient, ignoreNotFound } from '../../../src/openstack/cinder.ts';
import type { Volume } from '../../../src/openstack/cinder-types.ts';
import type { ServiceSession } from '../../../src/openstack/session.ts';
import { silentLogger } from '../../../src/util/logger.ts';
import { type LabMode, type LabSession, labSession } from './cinder-lab-session.ts';

export const RUN = `cinderclient-it-${randomBytes(3).toString('hex')}`;
export const RUN_META = { 'cinderclient-it': RUN };
export const BACKENDS = ['fake', 'rbd', 'tgt'] as const;
export const CONNECTOR = {
  host: `${RUN}-node`,
  initiator: 'iqn.1993-08.org.debian:01:cinderclientit',
  ip: '127.0.0.1',
  platform: 'x86_64',
  os_type: 'linux',
  multipath: false,
  do_local_attach: false,
};
/** Upper bound for one wait on the lab (create is ~0.5 s; rbd clones up to ~1.3 s). */
export const WAIT_MS = 60_000;
export const wait = () => AbortSignal.timeout(WAIT_MS);
/** cinder-backup reads and checksums the whole volume, one backup after another: give it room. */
export const BACKUP_WAIT_MS = 300_000;
export const backupWait = () => AbortSignal.timeout(BACKUP_WAIT_MS);

export async function listAll<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Runs `fn` and collects cleanup steps that run in reverse order even when `fn` fails. */
export async function withCleanup(
  fn: (defer: (step: () => Promise<unknown>) => void) => Promise<void>,
): Promise<void> {
  const steps: (() => Promise<unknown>)[] = [];
  try {
    await fn((s) => steps.push(s));
  } finally {
    for (const step of steps.reverse()) {
      await step().catch((err) => console.error(`cleanup failed: ${(err as Error).message}`));
    }
  }
}

/** What a suite of `describeOnLab` gets: the lab session, a negotiated client and volume helpers. */
export interface CinderLab {
  mode: LabMode;
  lab: LabSession;
  session: ServiceSession;
  cinder: CinderClient;
  /** Creates a volume and registers its deletion (after waiting for a settled state). */
  volume(
    defer: (s: () => Promise<unknown>) => void,
    req: Parameters<CinderClient['createVolume']>[0],
  ): Promise<Volume>;
  /** Deletes volumes in parallel and waits until they are gone. */
  deleteVolumes(ids: string[]): Promise<void>;
}

/** `describe(`${title} (${mode})`)` for each auth mode, on the lab; a skip when the mode is down. */
export function describeOnLab(title: string, suite: (t: CinderLab) => void): void {
  for (const mode of ['keystone', 'noauth'] as LabMode[]) {
    describe(`${title} (${mode})`, async () => {
      const lab = await labSession(mode);
      if (!lab.session) {
        it('lab round trips', { skip: lab.reason }, () => {});
        return;
      }
      const session = lab.session;
      const cinder = new CinderClient({ session, logger: silentLogger() });

      async function volume(
        defer: (s: () => Promise<unknown>) => void,
        req: Parameters<CinderClient['createVolume']>[0],
      ): Promise<Volume> {
        const v = await cinder.createVolume({ ...req, metadata: { ...RUN_META, ...req.metadata } });
        defer(async () => {
          await cinder
            .waitForVolume(v.id, { target: ['available', 'error', 'in-use'], failOn: [], signal: wait() })
            .catch(() => {});
          await ignoreNotFound(cinder.deleteVolume(v.id, { cascade: true }));
          await cinder.waitForVolume(v.id, { target: [], gone: true, signal: wait() });
        });
        return v;
      }

      async function deleteVolumes(ids: string[]): Promise<void> {
        await Promise.all(
          ids.map(async (id) => {
            await cinder
              .waitForVolume(id, { target: ['available', 'error'], failOn: [], signal: wait() })
              .catch(() => {});
            await ignoreNotFound(cinder.deleteVolume(id, { cascade: true }));
            await cinder.waitForVolume(id, { target: [], gone: true, signal: wait() });
          }),
        );
      }

      before(() => cinder.negotiate());
      after(() => lab.close());
      suite({ mode, lab, session, cinder, volume, deleteVolumes });
    });
  }
}
