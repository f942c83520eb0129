/**
 * Minimal Cinder v3 client for the host-layer integration tests (plain fetch + Keystone token),
 * kept here so these tests do not depend on the OpenStack client being written concurrently.
 * Everything has a timeout; resources are named with the caller's prefix.
 */
const KEYSTONE = process.env.OS_AUTH_URL ?? 'http://127.0.0.1:5000/v3';
/**
 * Per request. The lab's Keystone-mode API answered a POST /volumes in 11–18 s while benches loaded
 * the machine (load 13–20; 1 s on a quiet one): 15 s failed host/iscsi.test.ts's set-up there.
 */
const TIMEOUT_MS = 60_000;

export interface LabSession {
  token: string;
  endpoint: string;
}

export async function labLogin(user = 'admin', password = 'admin', project = 'admin'): Promise<LabSession> {
  const res = await fetch(`${KEYSTONE}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(TIMEOUT_MS),
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user, domain: { name: 'Default' }, password } },
        },
        scope: { project: { name: project, domain: { name: 'Default' } } },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`keystone login failed: HTTP ${res.status}`);
  const token = res.headers.get('x-subject-token') ?? '';
  const body = (await res.json()) as {
    token: {
      project: { id: string };
      catalog: { type: string; endpoints: { interface: string; url: string }[] }[];
    };
  };
  const svc = body.token.catalog.find((c) => c.type === 'volumev3' || c.type === 'block-storage');
  const url = svc?.endpoints.find((e) => e.interface === 'public')?.url;
  const endpoint = url ?? `http://127.0.0.1:8776/v3/${body.token.project.id}`;
  return { token, endpoint };
}

/** True when Keystone and Cinder answer (the lab is up). */
export async function labAvailable(): Promise<boolean> {
  try {
    const r = await fetch('http://127.0.0.1:8776/', { signal: AbortSignal.timeout(3000) });
    await r.body?.cancel();
    const k = await fetch(KEYSTONE, { signal: AbortSignal.timeout(3000) });
    await k.body?.cancel();
    return k.ok;
  } catch {
    return false;
  }
}

export async function cinder<T>(s: LabSession, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${s.endpoint}${path}`, {
    method,
    headers: {
      'x-auth-token': s.token,
      'content-type': 'application/json',
      'openstack-api-version': 'volume 3.70',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

interface Vol {
  id: string;
  status: string;
  size: number;
}

export async function waitVolume(
  s: LabSession,
  id: string,
  want: string[],
  timeoutMs = 60_000,
): Promise<Vol> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { volume } = await cinder<{ volume: Vol }>(s, 'GET', `/volumes/${id}`);
    if (want.includes(volume.status)) return volume;
    if (volume.status.startsWith('error')) throw new Error(`volume ${id} went to ${volume.status}`);
    if (Date.now() > deadline) throw new Error(`volume ${id} stuck in ${volume.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function createVolume(s: LabSession, name: string, type: string, size = 1): Promise<string> {
  const { volume } = await cinder<{ volume: Vol }>(s, 'POST', '/volumes', {
    volume: { name, size, volume_type: type },
  });
  await waitVolume(s, volume.id, ['available']);
  return volume.id;
}

export async function createAttachment(
  s: LabSession,
  volumeId: string,
  connector: Record<string, unknown>,
): Promise<{ id: string; connection_info: Record<string, unknown> }> {
  const { attachment } = await cinder<{
    attachment: { id: string; connection_info: Record<string, unknown> };
  }>(s, 'POST', '/attachments', { attachment: { volume_uuid: volumeId, connector, mode: 'rw' } });
  return attachment;
}

/** A host connector for the lab's attachments (the lab needs no real initiator; rbd none at all). */
export function labConnector(host: string, initiator?: string): Record<string, unknown> {
  return {
    ...(initiator ? { initiator } : {}),
    ip: '127.0.0.1',
    host,
    multipath: false,
    platform: 'x86_64',
    os_type: 'linux2',
  };
}

/** Best-effort cleanup: delete the attachment(s) then the volume; errors are swallowed. */
export async function cleanup(s: LabSession, volumeId: string, attachmentIds: string[] = []): Promise<void> {
  for (const a of attachmentIds) await cinder(s, 'DELETE', `/attachments/${a}`).catch(() => undefined);
  try {
    await waitVolume(s, volumeId, ['available', 'error'], 30_000);
  } catch {
    /* delete anyway */
  }
  await cinder(s, 'DELETE', `/volumes/${volumeId}`).catch(() => undefined);
}

/**
 * Deletes what a test run left under its name prefix that it never learned the id of (a create
 * whose answer or wait timed out on a loaded lab): snapshots first, then volumes with their
 * attachments. Best effort, bounded (one page of 1,000 of each); errors are swallowed.
 */
export async function cleanupPrefix(s: LabSession, prefix: string): Promise<void> {
  const named = <T extends { name?: string | null }>(xs: T[]) => xs.filter((x) => x.name?.startsWith(prefix));
  const list = async <T>(path: string, key: string): Promise<T[]> =>
    ((await cinder<Record<string, T[]>>(s, 'GET', path).catch(() => ({}) as Record<string, T[]>))[key] ??
      []) as T[];
  type Named = { id: string; name?: string | null };
  // A volume with snapshots cannot be deleted: delete them until they are gone (bounded); one still
  // `creating` refuses the DELETE and gets it again on the next pass.
  type Snap = Named & { status?: string };
  for (let i = 0; i < 60; i++) {
    const snaps = named(await list<Snap>('/snapshots?limit=1000', 'snapshots'));
    if (snaps.length === 0) break;
    for (const snap of snaps.filter((x) => x.status !== 'deleting')) {
      await cinder(s, 'DELETE', `/snapshots/${snap.id}`).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  for (const v of named(await list<Named>('/volumes?limit=1000', 'volumes'))) {
    const attachments = await list<{ id: string }>(`/attachments?volume_id=${v.id}`, 'attachments');
    await cleanup(
      s,
      v.id,
      attachments.map((a) => a.id),
    );
  }
}
