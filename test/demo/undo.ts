/**
 * What the walk-through owes Cinder: undo actions, newest first. An action is registered *before*
 * the call that creates its object, so a call that fails half-way (or times out after Cinder did
 * the work) is still undone; the walk-through removes an action only once it has fully undone the
 * object itself. `drain()` runs every action left exactly once, in order, even when some fail, and
 * even if an action touches the list while it runs (the bug this replaces: iterating the list
 * while a detach removed itself from it skipped the next entry, so deletes then failed on
 * dependents and the demo leaked volumes).
 */

export interface Undo {
  readonly name: string;
  readonly fn: () => Promise<unknown>;
}

export class UndoList {
  readonly #items: Undo[] = [];

  /** Registers an undo action; it runs before every action registered earlier. */
  add(name: string, fn: () => Promise<unknown>): Undo {
    const u = { name, fn };
    this.#items.unshift(u);
    return u;
  }

  /** The walk-through undid this object itself: nothing is owed any more. */
  settle(u: Undo): void {
    const i = this.#items.indexOf(u);
    if (i >= 0) this.#items.splice(i, 1);
  }

  get pending(): readonly string[] {
    return this.#items.map((u) => u.name);
  }

  /** Runs and removes every action left (newest first); `run` reports each and must not throw. */
  async drain(run: (u: Undo) => Promise<void>): Promise<void> {
    for (let u = this.#items.shift(); u; u = this.#items.shift()) await run(u);
  }
}

/** gRPC codes that mean "not now": Cinder is still finishing a detach, an extend, a clone. */
const BUSY = new Set([4 /* DEADLINE_EXCEEDED */, 9 /* FAILED_PRECONDITION */, 10 /* ABORTED */, 14]);

/** Runs `fn`, again while it fails with a busy code (at most `attempts` times, `delayMs` apart). */
export async function whileBusy<T>(fn: () => Promise<T>, attempts = 20, delayMs = 3000): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (i >= attempts || typeof code !== 'number' || !BUSY.has(code)) throw e;
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

/** Runs every call, even when an earlier one failed; throws the first failure at the end. */
export async function allOf(calls: (() => Promise<unknown>)[]): Promise<void> {
  let first: unknown;
  for (const c of calls) {
    try {
      await c();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}

/**
 * Registers the deletion of the object a create call makes, before the call: `create` is the
 * (idempotent, by name) CSI create call. If the first call was sent but its answer never arrived,
 * the clean-up sends it again to learn the id of what Cinder made, then deletes that.
 */
export function owedCreate<T>(
  undo: UndoList,
  undoName: string,
  create: () => Promise<T>,
  idOf: (r: T) => string,
  remove: (id: string) => Promise<unknown>,
): () => Promise<T> {
  let id: string | undefined;
  let sent = false;
  undo.add(undoName, async () => {
    if (id === undefined && sent) id = idOf(await create());
    if (id !== undefined) await whileBusy(() => remove(id!));
  });
  return async () => {
    sent = true;
    const r = await create();
    id = idOf(r);
    return r;
  };
}
