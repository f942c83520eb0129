/**
 * Cinder client throughput on the lab (Keystone mode, Cinder on :8776), this client vs the Debian
 * packages python3-cinderclient and python3-openstacksdk (used as libraries, not through their CLIs):
 *   - list N volumes (default 1,000) in pages of 100 (limit + marker), median of --runs runs;
 *   - 200 sequential GET of one volume;
 *   - token requests made by 200 concurrent calls right after the cached token expired.
 *
 *   node bench/openstack-client.ts [--volumes 1000] [--runs 3] [--gets 200] [--keep]
 *
 * The volumes are `fake`-type, all named BENCH_NAME (so every client filters with the same exact
 * `name=` and other people's volumes do not count); missing ones are created in parallel batches,
 * and all are deleted at the end unless --keep (a later run then reuses them).
 * Needs the lab up in Keystone mode (test/lab-up.sh) and /usr/bin/python3 with both libraries
 * (apt-get install -y python3-cinderclient python3-openstacksdk). pyenv's python3 hides Debian's
 * modules, hence the absolute path.
 */
import { execFile } from 'node:child_process';
import { parseArgs, promisify } from 'node:util';
import type { CloudConfig } from '../src/config/types.ts';
import { CinderClient, ignoreNotFound } from '../src/openstack/cinder.ts';
import { HttpClient } from '../src/openstack/http.ts';
import { buildAuthRequest, refreshMarginMs } from '../src/openstack/keystone.ts';
import { OpenStackSession } from '../src/openstack/session.ts';
import { silentLogger } from '../src/util/logger.ts';

const { values } = parseArgs({
  options: {
    volumes: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '3' },
    gets: { type: 'string', default: '200' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(values.volumes);
const RUNS = Number(values.runs);
const GETS = Number(values.gets);
const PAGE = 100;
const BATCH = 20;
const BENCH_NAME = 'bench-openstack-client-vol';
/** Bound of the set-up wait (all volumes available) and of the clean-up wait (all gone). */
const SETUP_LIMIT_MS = 600_000;
const AUTH = {
  url: process.env['OS_AUTH_URL'] ?? 'http://127.0.0.1:5000/v3',
  user: process.env['OS_USERNAME'] ?? 'admin',
  password: process.env['OS_PASSWORD'] ?? process.env['CINDER_LAB_ADMIN_PASSWORD'] ?? 'admin',
  project: process.env['OS_PROJECT_NAME'] ?? 'admin',
  region: process.env['OS_REGION_NAME'] ?? 'RegionOne',
};

const config: CloudConfig = {
  auth: {
    type: 'password',
    authUrl: AUTH.url,
    username: AUTH.user,
    password: AUTH.password,
    userDomainName: 'Default',
    projectName: AUTH.project,
    projectDomainName: 'Default',
  },
  region: AUTH.region,
  interface: 'public',
  tls: { insecure: false },
  blockStorage: {
    nodeVolumeAttachLimit: 256,
    rescanOnResize: false,
    ignoreVolumeAZ: false,
    ignoreVolumeMicroversion: false,
  },
  sources: {},
};

/**
 * The Python side: one round of both libraries (1 list + GETS sequential GETs each), wall and CPU
 * milliseconds as JSON on stdout. Authentication and a warm-up GET happen before timing. The
 * password comes through the environment.
 */
const PYTHON = `
import json, os, sys, time
from keystoneauth1.identity import v3
from keystoneauth1 import session
from cinderclient import client as cclient
import openstack
name, page, gets, vol_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
kw = dict(auth_url=os.environ['B_URL'], username=os.environ['B_USER'], password=os.environ['B_PASSWORD'],
          project_name=os.environ['B_PROJECT'], user_domain_name='Default', project_domain_name='Default')
def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    n = fn()
    return {'ms': (time.perf_counter() - t) * 1000, 'cpuMs': (time.process_time() - c) * 1000, 'n': n}

c = cclient.Client('3.70', session=session.Session(auth=v3.Password(**kw)), region_name=os.environ['B_REGION'])
def cc_list():
    marker, n = None, 0
    while True:
        vols = c.volumes.list(search_opts={'name': name}, marker=marker, limit=page)
        n += len(vols)
        if len(vols) < page:
            return n
        marker = vols[-1].id
def cc_gets():
    for _ in range(gets):
        c.volumes.get(vol_id)
    return gets

conn = openstack.connect(region_name=os.environ['B_REGION'], block_storage_api_version='3', **kw)
def sdk_list():
    return sum(1 for _ in conn.block_storage.volumes(details=True, limit=page, name=name))
def sdk_gets():
    for _ in range(gets):
        conn.block_storage.get_volume(vol_id)
    return gets

c.volumes.get(vol_id)
conn.block_storage.get_volume(vol_id)
print(json.dumps({'cinderclient': {'list': timed(cc_list), 'get': timed(cc_gets)},
                  'openstacksdk': {'list': timed(sdk_list), 'get': timed(sdk_gets)}}))
`;

interface Timing {
  ms: number;
  cpuMs: number;
  n: number;
}
type Round = Record<string, { list: Timing; get: Timing }>;

async function timed(fn: () => Promise<number>): Promise<Timing> {
  const t = performance.now();
  const c = process.cpuUsage();
  const n = await fn();
  const cpu = process.cpuUsage(c);
  return { ms: performance.now() - t, cpuMs: (cpu.user + cpu.system) / 1000, n };
}

async function nodeRound(cinder: CinderClient, probe: string): Promise<Round[string]> {
  const list = await timed(async () => {
    let n = 0;
    for await (const _ of cinder.listVolumes({ name: BENCH_NAME, limit: PAGE })) n++;
    return n;
  });
  const get = await timed(async () => {
    for (let i = 0; i < GETS; i++) await cinder.getVolume(probe);
    return GETS;
  });
  return { list, get };
}

async function pythonRound(probe: string): Promise<Round> {
  const { stdout } = await promisify(execFile)(
    '/usr/bin/python3',
    ['-c', PYTHON, BENCH_NAME, String(PAGE), String(GETS), probe],
    {
      timeout: 600_000,
      maxBuffer: 1 << 20,
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        B_URL: AUTH.url,
        B_USER: AUTH.user,
        B_PASSWORD: AUTH.password,
        B_PROJECT: AUTH.project,
        B_REGION: AUTH.region,
      },
    },
  );
  return JSON.parse(stdout) as Round;
}

/** Token lifetime as Keystone issues it (the lab: 24 h), from one token of our own. */
async function tokenLifetimeMs(): Promise<number> {
  const http = new HttpClient({ logger: silentLogger() });
  try {
    const res = await http.request<{ token: { issued_at: string; expires_at: string } }>({
      method: 'POST',
      url: `${AUTH.url.replace(/\/+$/, '')}/auth/tokens`,
      body: buildAuthRequest(config.auth),
      operation: 'bench.token',
    });
    return Date.parse(res.body.token.expires_at) - Date.parse(res.body.token.issued_at);
  } finally {
    await http.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

async function benchVolumes(cinder: CinderClient): Promise<{ id: string; status: string }[]> {
  const out: { id: string; status: string }[] = [];
  for await (const v of cinder.listVolumes({ name: BENCH_NAME, limit: 1000 }))
    out.push({ id: v.id, status: v.status });
  return out;
}

async function ensureVolumes(cinder: CinderClient): Promise<string[]> {
  const existing = await benchVolumes(cinder);
  const missing = Math.max(0, N - existing.length);
  const t0 = performance.now();
  if (missing > 0) {
    process.stderr.write(`creating ${missing} fake volumes (${existing.length} reused)...\n`);
    await inBatches(Array.from({ length: missing }), BATCH, () =>
      cinder.createVolume({
        size: 1,
        name: BENCH_NAME,
        volume_type: 'fake',
        metadata: { bench: 'openstack-client' },
      }),
    );
  }
  // Bounded: a volume stuck in `creating` ends the set-up with an error (main's finally deletes).
  const deadline = Date.now() + SETUP_LIMIT_MS;
  for (;;) {
    const vols = await benchVolumes(cinder);
    const pending = vols.filter((v) => v.status !== 'available');
    if (pending.some((v) => v.status.startsWith('error'))) throw new Error('a bench volume went to error');
    if (Date.now() > deadline) {
      const stuck = pending.slice(0, 5).map((v) => `${v.id} ${v.status}`);
      throw new Error(
        `set-up: ${pending.length} volumes not available after ${SETUP_LIMIT_MS / 1000} s (${stuck.join(', ')})`,
      );
    }
    if (pending.length === 0 && vols.length >= N) {
      if (missing > 0)
        process.stderr.write(
          `setup: ${missing} volumes in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
        );
      return vols.map((v) => v.id);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function deleteAll(cinder: CinderClient): Promise<void> {
  const t0 = performance.now();
  const ids = (await benchVolumes(cinder)).map((v) => v.id);
  await inBatches(ids, BATCH, (id) => ignoreNotFound(cinder.deleteVolume(id)).catch(() => {}));
  const deadline = Date.now() + SETUP_LIMIT_MS;
  for (;;) {
    const left = await benchVolumes(cinder);
    if (left.length === 0) break;
    if (Date.now() > deadline) {
      process.stderr.write(
        `cleanup: ${left.length} volumes left after ${SETUP_LIMIT_MS / 1000} s: ${left
          .slice(0, 10)
          .map((v) => `${v.id} (${v.status})`)
          .join(', ')}\n`,
      );
      return;
    }
    // Volumes that were still creating when the first deletes went out: delete them again.
    await inBatches(
      left.filter((v) => v.status === 'available' || v.status.startsWith('error')),
      BATCH,
      (v) => ignoreNotFound(cinder.deleteVolume(v.id)).catch(() => {}),
    );
    await new Promise((r) => setTimeout(r, 1000));
  }
  process.stderr.write(
    `cleanup: ${ids.length} volumes deleted in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}

async function main(): Promise<void> {
  // A settable clock lets the token-expiry measurement jump past the token's refresh time.
  let skewMs = 0;
  const session = new OpenStackSession({ config, logger: silentLogger(), now: () => Date.now() + skewMs });
  const cinder = new CinderClient({ session: session.service('block-storage'), logger: silentLogger() });
  await cinder.negotiate();
  const lifetime = await tokenLifetimeMs();
  try {
    const ids = await ensureVolumes(cinder);
    const probe = ids[0]!;
    await new Promise((r) => setTimeout(r, 5000)); // let the lab settle after the creations
    await cinder.getVolume(probe);
    // Rounds interleave the three clients so that load drift on the shared lab hits all alike.
    const rounds: Round[] = [];
    for (let r = 0; r < RUNS; r++) {
      const node = await nodeRound(cinder, probe);
      rounds.push({ 'cinder-csi CinderClient (node)': node, ...(await pythonRound(probe)) });
    }

    // Token requests during 200 concurrent calls after the cached token expired: the session's
    // clock jumps to 1 min past the token's refresh time (its lifetime minus the refresh margin,
    // counted from now, which is later than when it was issued).
    const before = session.tokenRequests;
    skewMs = lifetime - refreshMarginMs(lifetime) + 60_000;
    await Promise.all(Array.from({ length: 200 }, () => cinder.getVolume(probe)));
    const tokenRequests = session.tokenRequests - before;
    skewMs = 0;

    const clients = Object.keys(rounds[0]!);
    const med = (client: string, op: 'list' | 'get', k: 'ms' | 'cpuMs') =>
      median(rounds.map((r) => r[client]![op][k]));
    const baseList = med(clients[0]!, 'list', 'ms');
    const baseGet = med(clients[0]!, 'get', 'ms');
    console.log(
      `\nCinder client bench: list ${N} volumes in pages of ${PAGE}, ${GETS} sequential GET volume; ` +
        `median of ${RUNS} interleaved rounds (wall ms; client CPU ms in brackets)`,
    );
    const header = ['client', 'listed', `list ${N}`, '/ node', `${GETS} GET`, 'ms/GET', '/ node'];
    const widths = [32, 6, 16, 7, 16, 7, 7];
    const line = (cells: string[]) =>
      console.log(cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
    line(header);
    for (const c of clients) {
      const list = med(c, 'list', 'ms');
      const get = med(c, 'get', 'ms');
      line([
        c,
        String(rounds[0]![c]!.list.n),
        `${list.toFixed(0)} [${med(c, 'list', 'cpuMs').toFixed(0)}]`,
        (list / baseList).toFixed(2),
        `${get.toFixed(0)} [${med(c, 'get', 'cpuMs').toFixed(0)}]`,
        (get / GETS).toFixed(1),
        (get / baseGet).toFixed(2),
      ]);
    }
    console.log(`\ntoken requests during 200 concurrent calls after token expiry: ${tokenRequests}`);
  } finally {
    if (!values.keep) await deleteAll(cinder);
    await session.close();
  }
}

await main();
