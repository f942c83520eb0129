/**
 * Kill rounds of the crash suite: SIGKILL the driver process at a chosen point inside an
 * operation, restart it, go on. Each round either arms a kill point (a Cinder request of the
 * driver, seen by the fault proxy's hooks) or kills after a random delay (every fifth round).
 *
 * Kill points (docs/design.md, "Failure recovery"): each mutating Cinder request the controller
 * makes, in two phases:
 *   after   Cinder has acted on the request and the driver never sees the answer (the driver dies
 *           between the step and its own bookkeeping)
 *   before  the request never reaches Cinder (the driver dies just before the step)
 * A point not reached within 45 s (the workload is elsewhere) becomes an immediate kill.
 */
import type { HookResult, ProxiedRequest } from '../fault-proxy.ts';
import type { DriverProcess } from './driver-process.ts';

export interface KillPoint {
  name: string;
  method: string;
  path: RegExp;
}

export const KILL_POINTS: readonly KillPoint[] = [
  { name: 'POST /volumes (create)', method: 'POST', path: /\/volumes$/ },
  { name: 'POST /attachments (publish)', method: 'POST', path: /\/attachments$/ },
  {
    name: 'POST /volumes/{id}/metadata (publish record)',
    method: 'POST',
    path: /\/volumes\/[^/]+\/metadata$/,
  },
  { name: 'POST /volumes/{id}/action (extend, retype)', method: 'POST', path: /\/volumes\/[^/]+\/action$/ },
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
];

type Phase = 'before' | 'after';

interface Armed {
  point: KillPoint;
  phase: Phase;
  skip: number;
  fire: (what: string) => void;
}

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

  /** The proxy hook: kills the driver when the armed point passes. */
  async hook(req: ProxiedRequest, phase: Phase): Promise<HookResult> {
    const a = this.#armed;
    if (!a || a.phase !== phase || a.point.method !== req.method || !a.point.path.test(req.path))
      return undefined;
    if (a.skip > 0) {
      a.skip--;
      return undefined;
    }
    this.#armed = undefined;
    await this.#driver.kill();
    a.fire(`${req.method} ${req.url} #${req.seq}`);
    return 'abort';
  }

  async run(rounds: number): Promise<void> {
    const combos: { point: KillPoint; phase: Phase }[] = [
      ...KILL_POINTS.map((point) => ({ point, phase: 'after' as const })),
      ...KILL_POINTS.map((point) => ({ point, phase: 'before' as const })),
    ];
    let k = 0;
    try {
      for (let r = 0; r < rounds; r++) {
        let what: string;
        if (r % 5 === 4) {
          const ms = Math.round(300 + this.#rand() * 4000);
          await sleep(ms);
          await this.#driver.kill();
          what = `random delay ${ms} ms`;
        } else {
          const c = combos[k++ % combos.length]!;
          const skip = Math.floor(this.#rand() * 2);
          what = `${c.phase} ${c.point.name}`;
          const hit = await new Promise<string | undefined>((resolve) => {
            const t = setTimeout(() => {
              this.#armed = undefined;
              resolve(undefined);
            }, 45_000);
            this.#armed = {
              ...c,
              skip,
              fire: (req) => {
                clearTimeout(t);
                resolve(req);
              },
            };
          });
          if (hit) what += ` at ${hit}`;
          else {
            await this.#driver.kill();
            what += ' (not reached in 45 s: killed at once)';
          }
        }
        const key = what.replace(/ at .*| \d+ ms/, '');
        this.fired[key] = (this.fired[key] ?? 0) + 1;
        this.history.push(`+${((Date.now() - this.#t0) / 1000).toFixed(1)}s round ${r + 1}: ${what}`);
        this.#log(`kill round ${r + 1}/${rounds}: ${what}`);
        await this.#driver.start();
        await sleep(300 + this.#rand() * 1200);
      }
    } finally {
      this.#armed = undefined;
      this.done = true;
      if (!this.#driver.running) await this.#driver.start();
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
