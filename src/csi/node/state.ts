/**
 * Per-volume node state: one JSON file per staged volume (mode 0600, in a 0700 directory), written
 * atomically (temp file + rename). It is what lets unstage, publish, stats and expand work after a
 * plugin restart. It never holds secrets: the connector's details are redacted once more before
 * they are written, as a second line of defence.
 */
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectedDevice } from '../../host/connector.ts';
import { redactDeep } from '../../util/logger.ts';

export const STATE_VERSION = 1;

/** A state file that cannot be used (corrupt, foreign): the node's state, not a driver bug. */
export class StateFileError extends Error {
  override name = 'StateFileError';
}

export interface VolumeState {
  version: number;
  volumeId: string;
  /** Cinder attachment this staging belongs to. */
  attachmentId?: string;
  /** `os-complete` succeeded for the attachment. */
  attachmentCompleted: boolean;
  device: ConnectedDevice;
  accessType: 'mount' | 'block';
  /** Filesystem type for mount access. */
  fsType?: string;
  stagingPath: string;
  /** The staging mount (and so every publish) is read-only. */
  readOnly: boolean;
  /** Access mode name the volume was staged with. */
  accessMode: string;
  /** Target paths currently published. */
  targets: { path: string; readOnly: boolean }[];
  /**
   * Target paths this driver created (an empty directory or file to mount onto) and has not
   * removed yet: recorded before creating them, so unpublish removes exactly these and never a
   * file or directory it did not make. Absent in state written before this field existed.
   */
  placeholders?: string[];
  /** The individual mount options the volume was staged with (mount access). */
  mountFlags?: string[];
  /** Set once the device is mounted at the staging path (mount access) or ready (block). */
  staged: boolean;
  updatedAt: string;
}

/** Volume ids become file names: only ids of this shape are accepted (Cinder ids are UUIDs). */
export const VOLUME_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class StateStore {
  readonly #dir: string;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.#dir = path.resolve(dir);
  }

  get dir(): string {
    return this.#dir;
  }

  #file(volumeId: string): string {
    if (!VOLUME_ID_PATTERN.test(volumeId)) throw new Error(`unsafe volume id for a state file: ${volumeId}`);
    return path.join(this.#dir, `${volumeId}.json`);
  }

  #ensureDir(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      await chmod(this.#dir, 0o700);
    })();
    return this.#ready;
  }

  /** The state of a volume, or undefined when none is stored. A corrupt file is an error. */
  async get(volumeId: string): Promise<VolumeState | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file(volumeId), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let s: VolumeState;
    try {
      s = JSON.parse(text) as VolumeState;
    } catch {
      s = {} as VolumeState;
    }
    if (
      s?.version !== STATE_VERSION ||
      s.volumeId !== volumeId ||
      !s.device?.devicePath ||
      !Array.isArray(s.targets)
    ) {
      throw new StateFileError(
        `state file for volume ${volumeId} is not in the expected format; move ${this.#file(volumeId)} away and stage the volume again`,
      );
    }
    return s;
  }

  /**
   * Writes the state atomically (temp file + rename). No fsync: the state only has to survive a
   * plugin restart (the page cache does); a node crash drops the mounts and sessions it describes.
   */
  async put(state: VolumeState): Promise<void> {
    await this.#ensureDir();
    const file = this.#file(state.volumeId);
    const safe: VolumeState = {
      ...state,
      version: STATE_VERSION,
      device: { ...state.device, details: redactDeep(state.device.details) as Record<string, unknown> },
      updatedAt: new Date().toISOString(),
    };
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(safe, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, file);
  }

  async delete(volumeId: string): Promise<void> {
    await rm(this.#file(volumeId), { force: true });
  }

  /** Ids of every volume with a state file (for start-up reconciliation and tests). */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.#dir))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length))
        .filter((id) => VOLUME_ID_PATTERN.test(id));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }
}
