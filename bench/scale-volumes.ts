/**
 * The scale bench's volumes in the lab (bench/scale.ts): a pool of parallel calls with retries,
 * listing one run's volumes, and the bounded clean-up (attachments, stuck creates, volumes) that the
 * bench's `finally`, its signal handler and `--purge` run.
 */
import { META } from '../src/csi/controller/index.ts';
import type { CinderClient } from '../src/openstack/cinder.ts';
import type { Volume } from '../src/openstack/cinder-types.ts';
import { labNoauth } from '../test/support/lab.ts';
import { sleep } from './proc.ts';

export { median, sleep } from './proc.ts';

/** Every run's volumes are named and tagged `scale-bench-<hex>`. */
export const PREFIX_ROOT = 'scale-bench-';

export interface VolumeOps {
  pool<T>(items: T[], fn: (x: T) => Promise<void>): Promise<void>;
  tries<T>(what: string, fn: () => Promise<T>): Promise<T>;
  listOwn(prefix: string | undefined): Promise<Volume[]>;
  purge(prefix: string | undefined, limitMs: number): Promise<number>;
}

/** The operations on `cinder`, `parallel` calls at a time. */
export function volumeOps(cinder: CinderClient, parallel: number): VolumeOps {
  /** Runs `fn` over `items`, `parallel` at a time. */
  async function pool<T>(items: T[], fn: (x: T) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(parallel, items.length) }, async () => {
        while (next < items.length) await fn(items[next++]!);
      }),
    );
  }

  async function tries<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= 2) throw new Error(`${what}: ${(err as Error).message}`);
        await sleep(500 * 2 ** i);
      }
    }
  }

  async function listOwn(prefix: string | undefined): Promise<Volume[]> {
    const out: Volume[] = [];
    const filters = prefix ? { metadata: { [META.cluster]: prefix } } : {};
    for await (const v of cinder.listVolumes({ ...filters, limit: 1000 })) {
      if ((v.name ?? '').startsWith(prefix ?? PREFIX_ROOT)) out.push(v);
    }
    return out;
  }

  /**
   * Admin `os-reset_status` to `error` (noauth API): for volumes the lab never finished creating
   * (seen under load: a create lost between scheduler and volume service stays `creating` forever).
   */
  async function resetToError(id: string): Promise<void> {
    const n = labNoauth();
    await fetch(`${n.endpoint}/${n.projectId}/volumes/${id}/action`, {
      method: 'POST',
      headers: {
        'X-Auth-Token': `${n.userId}:${n.projectId}`,
        'Content-Type': 'application/json',
        'OpenStack-API-Version': 'volume 3.0',
      },
      body: JSON.stringify({ 'os-reset_status': { status: 'error' } }),
      signal: AbortSignal.timeout(30_000),
    })
      .then((r) => r.arrayBuffer())
      .catch(() => {});
  }

  /** A volume `creating` (or `deleting`) for longer than this is stuck: reset to `error`, then deleted. */
  const STUCK_MS = 300_000;

  /** Deletes the attachments and volumes of one run (or of every scale-bench run); bounded. */
  async function purge(prefix: string | undefined, limitMs: number): Promise<number> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const left = await listOwn(prefix);
      if (left.length === 0) return 0;
      if (Date.now() > deadline) {
        console.error(
          `clean-up: ${left.length} volumes left (run 'node bench/scale.ts --purge ${prefix ?? ''}'): ` +
            left
              .slice(0, 5)
              .map((v) => `${v.id} (${v.status})`)
              .join(', '),
        );
        return left.length;
      }
      const withAttachments = left.filter((v) => ['reserved', 'attaching', 'in-use'].includes(v.status));
      await pool(withAttachments, async (v) => {
        const atts = await cinder.listAttachments({ volume_id: v.id }).catch(() => []);
        for (const a of atts) await cinder.deleteAttachment(a.id).catch(() => {});
      });
      const stuck = left.filter(
        (v) =>
          (v.status === 'creating' && Date.now() - Date.parse(`${v.created_at}Z`) > STUCK_MS) ||
          (v.status === 'deleting' && Date.now() - Date.parse(`${v.updated_at ?? v.created_at}Z`) > STUCK_MS),
      );
      await pool(stuck, (v) => resetToError(v.id));
      const deletable = left.filter(
        (v) => !v.status.startsWith('delet') && v.status !== 'creating' && !withAttachments.includes(v),
      );
      await pool(deletable, (v) => cinder.deleteVolume(v.id).catch(() => {}));
      await sleep(2000);
    }
  }

  return { pool, tries, listOwn, purge };
}
