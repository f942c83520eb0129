/**
 * Kill rounds of the crash suite: SIGKILL the driver process at a chosen point inside an
 * operation, restart it, go on. Each round either arms kill points (Cinder requests of the
 * driver, seen by the fault proxy's hooks) or kills after a random delay (every fifth round).
 *
 * Kill points (docs/design.md, "Failure recovery"): each mutating Cinder request the controller
 * makes, in two phases:
 *   after   Cinder has acted on the request and the driver never sees the answer (the driver dies
 *           between the step and its own bookkeeping)
 *   before  the request never reaches Cinder (the driver dies just before the step)
 * When no armed point is reached within 45 s (150 s for a focused one) the round kills at once.
 * A point that only a retry after a kill reaches (the orphan-group sweep) `follows` that kill: its
 * focused rounds each kill there first, and it is armed before the driver restarts.
 */
import type { HookResult, ProxiedRequest } from '../fault-proxy.ts';
import type { DriverProcess } from './driver-process.ts';

export interface KillPoint {
  name: string;
  method: string;
  path: RegExp;
  /** Only requests whose body matches (e.g. one volume action). */
  body?: RegExp;
  /** Only once the driver sent a request matching this since the point was armed (the step it lies in). */
  within?: { method: string; url: RegExp };
  /**
   * The point (name) after whose kill (Cinder acted) a retry reaches this one: focused rounds only
   * (each preceded by a round killing there), never armed by the general rounds.
   */
  follows?: string;
}

export const KILL_POINTS: readonly KillPoint[] = [
  { name: 'POST /volumes (create)', method: 'POST', path: /\/volumes$/ },
  { name: 'POST /attachments (publish)', method: 'POST', path: /\/attachments$/ },
  {
    name: 'POST /volumes/{id}/metadata (publish record)',
    method: 'POST',
    path: /\/volumes\/[^/]+\/metadata$/,
  },
  {
    name: 'PUT /volumes/{id}/metadata (restore repair)',
    method: 'PUT',
    path: /\/volumes\/[^/]+\/metadata$/,
  },
  {
    name: 'POST /volumes/{id}/action os-extend (expand)',
    method: 'POST',
    path: /\/volumes\/[^/]+\/action$/,
    body: /"os-extend"/,
  },
  {
    name: 'POST /volumes/{id}/action os-retype (modify)',
    method: 'POST',
    path: /\/volumes\/[^/]+\/action$/,
    body: /"os-retype"/,
  },
  { name: 'POST /snapshots (snapshot, backup temp)', method: 'POST', path: /\/snapshots$/ },
  { name: 'POST /backups (backup)', method: 'POST', path: /\/backups$/ },
  { name: 'DELETE /attachments/{id} (unpublish)', method: 'DELETE', path: /\/attachments\/[^/]+$/ },
  {
    name: 'DELETE /volumes/{id}/metadata/{key} (unpublish record)',
    method: 'DELETE',
    path: /\/volumes\/[^/]+\/metadata\/[^/]+$/,
  },
  { name: 'DELETE /snapshots/{id}', method: 'DELETE', path: /\/snapshots\/[^/]+$/ },
  { name: 'DELETE /backups/{id}', method: 'DELETE', path: /\/backups\/[^/]+$/ },
  { name: 'DELETE /volumes/{id}', method: 'DELETE', path: /\/volumes\/[^/]+$/ },
  // Group snapshots (CreateVolumeGroupSnapshot / DeleteVolumeGroupSnapshot)
  { name: 'POST /groups (group snapshot: group)', method: 'POST', path: /\/groups$/ },
  { name: 'PUT /groups/{id} (group snapshot: members)', method: 'PUT', path: /\/groups\/[^/]+$/ },
  { name: 'POST /group_snapshots', method: 'POST', path: /\/group_snapshots$/ },
  { name: 'DELETE /group_snapshots/{id}', method: 'DELETE', path: /\/group_snapshots\/[^/]+$/ },
  {
    name: 'POST /groups/{id}/action delete (group snapshot delete)',
    method: 'POST',
    path: /\/groups\/[^/]+\/action$/,
    body: /"delete"/,
  },
  // DeleteVolumeGroupSnapshot's retry after the group snapshot went: the sweep of this cluster's
  // groups left without a group snapshot (src/csi/group-controller/own-group.ts) deletes its group.
  // The sweep lists groups without a name filter; the name lookups of creates filter by name.
  {
    name: 'POST /groups/{id}/action delete (orphan-group sweep)',
    method: 'POST',
    path: /\/groups\/[^/]+\/action$/,
    body: /"delete"/,
    within: { method: 'GET', url: /\/groups\/detail(\?(?!.*name=)|$)/ },
    follows: 'DELETE /group_snapshots/{id}',
  },
];

/**
 * The points the random rounds reach only rarely (once per lifecycle, late in it): each is armed
 * alone in its own rounds first (`KillSwitch.run`'s `focus`).
 */
export const RARE_POINTS: readonly string[] = KILL_POINTS.filter((p) =>
  /os-retype|groups|group_snapshots/.test(p.name),
).map((p) => p.name);

/** How long a round waits for an armed point (a focused one comes once per lifecycle). */
const WAIT_MS = 45_000;
const FOCUS_WAIT_MS = 150_000;

type Phase = 'before' | 'after';

interface Combo {
  point: KillPoint;
  phase: Phase;
}

interface Armed {
  /** Points (with their phase) any of which fires this round. */
  combos: Combo[];
  skip: number;
  /** Points whose `within` request has passed since they were armed. */
  within: Set<KillPoint>;
  fire: (what: string, combo: Combo) => void;
}

type Hit = { req: string; combo: Combo } | undefined;

export class KillSwitch {
  done = false;
  readonly fired: Record<string, number> = {};
  readonly history: string[] = [];
  readonly #driver: DriverProcess;
  readonly #rand: () => number;
  readonly #log: (line: string) => void;
  readonly #t0 = Date.now();
  #armed: Armed | undefined;

  constructor(driver: DriverProcess, rand: () => number, log: (line: string) => void) {
    this.#driver = driver;
    this.#rand = rand;
    this.#log = log;
  }

  /** The proxy hook: kills the driver when an armed point passes. */
  async hook(req: ProxiedRequest, phase: Phase): Promise<HookResult> {
    const a = this.#armed;
    if (a && phase === 'before')
      for (const { point } of a.combos)
        if (point.within?.method === req.method && point.within.url.test(req.url)) a.within.add(point);
    const combo = a?.combos.find(
      (c) =>
        c.phase === phase &&
        c.point.method === req.method &&
        c.point.path.test(req.path) &&
        (!c.point.body || c.point.body.test(req.body)) &&
        (!c.point.within || a.within.has(c.point)),
    );
    if (!a || !combo) return undefined;
    if (a.skip > 0) {
      a.skip--;
      return undefined;
    }
    this.#armed = undefined;
    await this.#driver.kill();
    a.fire(`${req.method} ${req.url} #${req.seq}`, combo);
    return 'abort';
  }

  /**
   * `rounds` kills. First the `focus` points (names of KILL_POINTS), each armed alone, after and
   * then before Cinder acted (one round per phase, waiting up to 150 s for the point), while
   * rounds remain; then point rounds that arm every point not hit yet in the current cycle
   * (alternating phases; a cycle ends when each point was hit in both phases or is not reached),
   * so the rounds spread over the steps the workload actually performs; every fifth of those kills
   * after a random delay instead. A focused point that `follows` another gets four rounds: a kill
   * after Cinder acted at the point it follows, then this one after; the same, then this one before.
   */
  async run(rounds: number, focus: readonly string[] = []): Promise<void> {
    const general = KILL_POINTS.filter((p) => !p.follows);
    const all = (): Combo[] => [
      ...general.map((point) => ({ point, phase: 'after' as const })),
      ...general.map((point) => ({ point, phase: 'before' as const })),
    ];
    const focused = focus.flatMap((name): Combo[] => {
      const point = killPoint(name);
      if (!point.follows)
        return [
          { point, phase: 'after' },
          { point, phase: 'before' },
        ];
      const first: Combo = { point: killPoint(point.follows), phase: 'after' };
      return [first, { point, phase: 'after' }, first, { point, phase: 'before' }];
    });
    let pending = all();
    let prearmed: Promise<Hit> | undefined;
    try {
      for (let r = 0; r < rounds; r++) {
        let what: string;
        const g = r - focused.length;
        if (g >= 0 && g % 5 === 4) {
          const ms = Math.round(300 + this.#rand() * 4000);
          await sleep(ms);
          await this.#driver.kill();
          what = `random delay ${ms} ms`;
        } else {
          const one = focused[r];
          const phase: Phase = one?.phase ?? (r % 2 === 0 ? 'after' : 'before');
          let combos = one ? [one] : pending.filter((c) => c.phase === phase);
          if (combos.length === 0) combos = pending;
          if (combos.length === 0) combos = pending = all();
          const skip = one ? 0 : Math.floor(this.#rand() * 2);
          const waitMs = one ? FOCUS_WAIT_MS : WAIT_MS;
          const hit = await (prearmed ?? this.#arm(combos, skip, waitMs));
          prearmed = undefined;
          if (hit) {
            what = `${hit.combo.phase} ${hit.combo.point.name} at ${hit.req}`;
            pending = pending.filter((c) => c.point !== hit.combo.point || c.phase !== hit.combo.phase);
          } else {
            await this.#driver.kill();
            what = `${phase}${one ? ` ${one.point.name}` : ''} (no armed point reached in ${waitMs / 1000} s: killed at once)`;
            if (!one) pending = all();
          }
        }
        const key = what.replace(/ at .*| \d+ ms/, '');
        this.fired[key] = (this.fired[key] ?? 0) + 1;
        this.history.push(`+${((Date.now() - this.#t0) / 1000).toFixed(1)}s round ${r + 1}: ${what}`);
        this.#log(`kill round ${r + 1}/${rounds}: ${what}`);
        // A point only the retry reaches is armed before the driver (and so the retry) comes back.
        const following = r + 1 < rounds ? focused[r + 1] : undefined;
        if (following?.point.follows) prearmed = this.#arm([following], 0, FOCUS_WAIT_MS);
        await this.#driver.start();
        if (!prearmed) await sleep(300 + this.#rand() * 1200);
      }
    } finally {
      this.#armed = undefined;
      this.done = true;
      if (!this.#driver.running) await this.#driver.start();
    }
  }

  /** Arms `combos` for one round: the hit, or undefined when none was reached within `waitMs`. */
  #arm(combos: Combo[], skip: number, waitMs: number): Promise<Hit> {
    return new Promise<Hit>((resolve) => {
      const t = setTimeout(() => {
        this.#armed = undefined;
        resolve(undefined);
      }, waitMs);
      this.#armed = {
        combos,
        skip,
        within: new Set(),
        fire: (req, combo) => {
          clearTimeout(t);
          resolve({ req, combo });
        },
      };
    });
  }
}

function killPoint(name: string): KillPoint {
  const point = KILL_POINTS.find((p) => p.name === name);
  if (!point) throw new Error(`kill point ${name} is unknown`);
  return point;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
