/**
 * Glance v2: just what volume-from-image needs — an image by id, by (unique) name, or either.
 */
import type { Logger } from '../util/logger.ts';
import type { CallOptions } from './cinder-api.ts';
import type { GlanceImage } from './cinder-types.ts';
import { OpenStackError } from './errors.ts';
import type { ServiceSession } from './session.ts';

/** No image with that id or name: an OpenStackError with status 404 (so `.notFound` holds). */
export class ImageNotFoundError extends OpenStackError {
  override name = 'ImageNotFoundError';
  readonly ref: string;
  constructor(ref: string, url: string) {
    super({ status: 404, faultMessage: `No image named "${ref}" found in Glance`, method: 'GET', url });
    this.ref = ref;
  }
}

/** Several images share the name; the caller has to use an id. */
export class AmbiguousImageError extends Error {
  override name = 'AmbiguousImageError';
  readonly ids: readonly string[];
  constructor(name: string, ids: readonly string[], more: boolean) {
    super(
      `image name "${name}" is ambiguous: ${more ? 'more than ' : ''}${ids.length} images match ` +
        `(${ids.join(', ')}${more ? ', ...' : ''}); use the image id`,
    );
    this.ids = ids;
  }
}

export interface GlanceClientOptions {
  session: ServiceSession;
  logger: Logger;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How many same-named images an ambiguity error lists. */
const AMBIGUITY_LIST_LIMIT = 20;

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { notFound?: unknown }).notFound === true;
}

export class GlanceClient {
  readonly #session: ServiceSession;

  constructor(opts: GlanceClientOptions) {
    this.#session = opts.session;
  }

  /** Absolute URL of a v2 path, whether the catalog endpoint carries the version or not. */
  async #url(path: string, signal: AbortSignal | undefined): Promise<string> {
    const endpoint = (await this.#session.endpoint(signal)).replace(/\/+$/, '').replace(/\/v2(\.\d+)?$/, '');
    return `${endpoint}/v2${path}`;
  }

  async getImage(id: string, opts: CallOptions = {}): Promise<GlanceImage> {
    const res = await this.#session.request<GlanceImage>({
      method: 'GET',
      path: await this.#url(`/images/${encodeURIComponent(id)}`, opts.signal),
      idempotent: true,
      signal: opts.signal,
      operation: 'glance.image.get',
    });
    return res.body;
  }

  /** The one image with exactly this name: ImageNotFoundError for none, AmbiguousImageError for several. */
  async getImageByName(name: string, opts: CallOptions = {}): Promise<GlanceImage> {
    const url = await this.#url('/images', opts.signal);
    const res = await this.#session.request<{ images: GlanceImage[]; next?: string }>({
      method: 'GET',
      path: url,
      query: { name, limit: AMBIGUITY_LIST_LIMIT },
      idempotent: true,
      signal: opts.signal,
      operation: 'glance.image.list',
    });
    const images = res.body.images.filter((i) => i.name === name);
    if (images.length === 0) throw new ImageNotFoundError(name, url);
    if (images.length > 1 || res.body.next) {
      throw new AmbiguousImageError(
        name,
        images.map((i) => i.id),
        Boolean(res.body.next),
      );
    }
    return images[0]!;
  }

  /** An id (UUID) is looked up as an id first, then as a name; anything else as a name. */
  async resolveImage(idOrName: string, opts: CallOptions = {}): Promise<GlanceImage> {
    if (UUID_RE.test(idOrName)) {
      try {
        return await this.getImage(idOrName, opts);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return this.getImageByName(idOrName, opts);
  }
}
