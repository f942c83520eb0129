/**
 * Helpers for integration tests against the lab Cinder (test/lab-up.sh):
 *   - `labAvailable()`: undefined when the lab answers, else the reason to skip;
 *   - `labConfig('keystone' | 'noauth', 'admin' | 'demo')`: a CloudConfig built directly
 *     (independent of the config loaders under test elsewhere);
 *   - `uniqueName(prefix)`: resource names that do not collide between concurrent test runs;
 *   - `labHostConnector(node)`: a node's host connector for attachments on the lab.
 *
 * Passwords come from CINDER_LAB_ADMIN_PASSWORD / CINDER_LAB_DEMO_PASSWORD or the lab defaults.
 * The noauth api (127.0.0.1:8786) and its project id come from the file test/lab-up.sh writes
 * (/var/lib/cinder-lab/cinder-noauth/noauth.env), or CINDER_LAB_NOAUTH_ENDPOINT / _PROJECT.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CloudConfig } from '../../src/config/types.ts';
import type { HostConnector } from '../../src/openstack/cinder-types.ts';

export const LAB_KEYSTONE_URL = process.env['CINDER_LAB_KEYSTONE_URL'] ?? 'http://127.0.0.1:5000/v3';
export const LAB_CINDER_URL = process.env['CINDER_LAB_ENDPOINT'] ?? 'http://127.0.0.1:8776/v3';
export const LAB_REGION = 'RegionOne';
/** Glance of the lab (keystone mode only; catalog type `image`) and the public raw test image
 * (1 MiB of zeros) that `cinder-lab.sh up` uploads. */
export const LAB_GLANCE_URL = process.env['CINDER_LAB_GLANCE_ENDPOINT'] ?? 'http://127.0.0.1:9292';
export const LAB_IMAGE_NAME = process.env['CINDER_LAB_IMAGE_NAME'] ?? 'cinder-csi-lab-raw';
const STATE = process.env['CINDER_LAB_STATE'] ?? '/var/lib/cinder-lab';

export type LabUser = 'admin' | 'demo';

export function labPassword(user: LabUser): string {
  return user === 'admin'
    ? (process.env['CINDER_LAB_ADMIN_PASSWORD'] ?? 'admin')
    : (process.env['CINDER_LAB_DEMO_PASSWORD'] ?? 'demo');
}

/** The noauth api's endpoint and project (written by test/lab-up.sh). */
export function labNoauth(): { endpoint: string; projectId: string; userId: string } {
  const vars: Record<string, string> = {};
  try {
    for (const line of readFileSync(`${STATE}/cinder-noauth/noauth.env`, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) vars[m[1]!] = m[2]!;
    }
  } catch {
    // not written (lab not brought up by test/lab-up.sh): environment or defaults
  }
  const get = (k: string, dflt: string) => process.env[k] ?? vars[k] ?? dflt;
  return {
    endpoint: get('CINDER_LAB_NOAUTH_ENDPOINT', 'http://127.0.0.1:8786/v3'),
    projectId: get('CINDER_LAB_NOAUTH_PROJECT', '0123456789abcdef0123456789abcdef'),
    userId: get('CINDER_LAB_NOAUTH_USER', 'admin'),
  };
}

/** The driver's OS_* settings for the lab's noauth Cinder API (labNoauth). */
export function labNoauthEnv(): Record<string, string> {
  const na = labNoauth();
  return {
    OS_AUTH_TYPE: 'noauth',
    OS_USER_ID: na.userId,
    OS_PROJECT_ID: na.projectId,
    OS_ENDPOINT: na.endpoint,
  };
}

const baseConfig = (): Omit<CloudConfig, 'auth'> => ({
  region: LAB_REGION,
  interface: 'public',
  tls: { insecure: false },
  blockStorage: {
    nodeVolumeAttachLimit: 256,
    rescanOnResize: false,
    ignoreVolumeAZ: false,
    ignoreVolumeMicroversion: false,
  },
  sources: { auth: 'test/support/lab.ts' },
});

/** A CloudConfig for the lab in the given auth mode (noauth: always admin, by Cinder's design). */
export function labConfig(mode: 'keystone' | 'noauth', user: LabUser = 'admin'): CloudConfig {
  if (mode === 'noauth') {
    const n = labNoauth();
    return {
      ...baseConfig(),
      auth: { type: 'noauth', noauthUserId: n.userId, projectId: n.projectId },
      endpointOverride: n.endpoint,
    };
  }
  return {
    ...baseConfig(),
    auth: {
      type: 'password',
      authUrl: LAB_KEYSTONE_URL,
      username: user,
      password: labPassword(user),
      userDomainName: 'Default',
      projectName: user,
      projectDomainName: 'Default',
    },
  };
}

async function probe(url: string, init: RequestInit = {}): Promise<string | undefined> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
    await res.arrayBuffer();
    return res.status < 500 ? undefined : `${url} answered HTTP ${res.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    return `${url} is not reachable (${cause})`;
  }
}

let cached: Promise<string | undefined> | undefined;

/**
 * Undefined when the lab is up (Keystone, the Keystone-mode cinder-api and the noauth api all
 * answer), else why not: a message for `{ skip }`. Cached per process.
 */
export function labAvailable(): Promise<string | undefined> {
  cached ??= (async () => {
    const n = labNoauth();
    const reasons = (
      await Promise.all([
        probe(`${LAB_KEYSTONE_URL}/`),
        probe(`${new URL(LAB_CINDER_URL).origin}/`),
        probe(`${n.endpoint}/${n.projectId}/volumes?limit=1`, {
          headers: { 'X-Auth-Token': `${n.userId}:${n.projectId}` },
        }),
      ])
    ).filter((r): r is string => r !== undefined);
    return reasons.length === 0
      ? undefined
      : `lab not up (${reasons.join('; ')}); bring it up with: sudo bash test/lab-up.sh`;
  })();
  return cached;
}

/** A unique resource name for this test area: `<prefix>-<time>-<random>` (lower case, <= 64 chars). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`.toLowerCase().slice(0, 64);
}

/** A node's host connector like the node plugin computes it (the lab needs no real initiator). */
export function labHostConnector(host: string): HostConnector {
  return {
    host,
    initiator: `iqn.2004-10.com.ubuntu:01:${host}`,
    ip: '127.0.0.1',
    multipath: false,
    platform: 'x86_64',
    os_type: 'linux',
    do_local_attach: false,
  };
}
