/**
 * Keystone v3 authentication: builds the `POST /v3/auth/tokens` body for every supported method
 * (password by user id or name + domain, application credential by id or name + user, token,
 * trust scope; project scope by id or name + domain) and turns the answer into a `KeystoneToken`.
 *
 * Nothing here logs or returns a secret: the token value is only in `KeystoneToken.value`, and
 * authentication errors name the user/method but never the password or secret.
 */
import { type AuthConfig, ConfigError } from '../config/types.ts';
import type { CatalogEntry } from './catalog.ts';
import { OpenStackError } from './errors.ts';
import type { HttpClient, HttpResponse } from './http.ts';

export interface KeystoneToken {
  /** The X-Subject-Token value. Secret. */
  value: string;
  /** Epoch milliseconds on the local clock (Keystone's granted lifetime counted from receipt). */
  expiresAt: number;
  issuedAt: number;
  /** When to refresh: min(5 min, 10% of the lifetime) before expiry. */
  refreshAt: number;
  userId: string | undefined;
  projectId: string | undefined;
  projectName: string | undefined;
  roles: string[];
  catalog: CatalogEntry[];
}

/** Refresh margin before expiry: the smaller of 5 minutes and 10% of the token's lifetime. */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.max(0, Math.min(5 * 60_000, lifetimeMs * 0.1));
}

/** `http://h:5000`, `http://h:5000/`, `http://h:5000/v3/` → `http://h:5000/v3/auth/tokens`. */
export function tokensUrl(authUrl: string): string {
  const base = authUrl.replace(/\/+$/, '');
  return /\/v3$/.test(base) ? `${base}/auth/tokens` : `${base}/v3/auth/tokens`;
}

/** Base identity URL (`.../v3`) for other Keystone calls. */
export function identityUrl(authUrl: string): string {
  return tokensUrl(authUrl).replace(/\/auth\/tokens$/, '');
}

function domainOf(
  name: string | undefined,
  id: string | undefined,
): { id: string } | { name: string } | undefined {
  if (id) return { id };
  if (name) return { name };
  return undefined;
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new ConfigError(`Keystone auth: ${what} is required`);
  return value;
}

/** The JSON body of `POST /v3/auth/tokens` for this auth configuration. */
export function buildAuthRequest(auth: AuthConfig): { auth: Record<string, unknown> } {
  const userDomain = domainOf(auth.userDomainName ?? auth.domainName, auth.userDomainId ?? auth.domainId);
  const projectDomain = domainOf(
    auth.projectDomainName ?? auth.domainName,
    auth.projectDomainId ?? auth.domainId,
  );
  const userRef = (): Record<string, unknown> => {
    if (auth.userId) return { id: auth.userId };
    const name = need(auth.username, 'user id or user name');
    if (!userDomain) {
      throw new ConfigError(`Keystone auth: user name "${name}" needs a user domain (name or id)`);
    }
    return { name, domain: userDomain };
  };

  let identity: Record<string, unknown>;
  let scopeAllowed = true;
  switch (auth.type) {
    case 'password':
      identity = {
        methods: ['password'],
        password: { user: { ...userRef(), password: need(auth.password, 'password') } },
      };
      break;
    case 'v3applicationcredential': {
      const secret = need(auth.applicationCredentialSecret, 'application credential secret');
      const cred: Record<string, unknown> = auth.applicationCredentialId
        ? { id: auth.applicationCredentialId, secret }
        : {
            name: need(auth.applicationCredentialName, 'application credential id or name'),
            user: userRef(),
            secret,
          };
      identity = { methods: ['application_credential'], application_credential: cred };
      // An application credential is already bound to its project: Keystone refuses a scope.
      scopeAllowed = false;
      break;
    }
    case 'token':
      identity = { methods: ['token'], token: { id: need(auth.token, 'token') } };
      break;
    default:
      throw new ConfigError(`Keystone auth: unsupported auth type "${auth.type}"`);
  }

  const body: Record<string, unknown> = { identity };
  if (scopeAllowed) {
    if (auth.trustId) {
      body['scope'] = { 'OS-TRUST:trust': { id: auth.trustId } };
    } else if (auth.projectId) {
      body['scope'] = { project: { id: auth.projectId } };
    } else if (auth.projectName) {
      if (!projectDomain) {
        throw new ConfigError(`Keystone auth: project name "${auth.projectName}" needs a project domain`);
      }
      body['scope'] = { project: { name: auth.projectName, domain: projectDomain } };
    }
  }
  return { auth: body };
}

/** Who is authenticating, for error messages (never a secret). */
export function describeAuth(auth: AuthConfig): string {
  const user = auth.userId ? `user id ${auth.userId}` : auth.username ? `user "${auth.username}"` : undefined;
  switch (auth.type) {
    case 'password':
      return `password auth for ${user ?? 'unknown user'}`;
    case 'v3applicationcredential':
      return auth.applicationCredentialId
        ? `application credential ${auth.applicationCredentialId}`
        : `application credential "${auth.applicationCredentialName}" of ${user ?? 'unknown user'}`;
    case 'token':
      return 'token auth';
    default:
      return `${auth.type} auth`;
  }
}

interface TokenBody {
  token?: {
    expires_at?: string;
    issued_at?: string;
    user?: { id?: string };
    project?: { id?: string; name?: string };
    roles?: { name?: string }[];
    catalog?: CatalogEntry[];
  };
}

/** Authenticates against Keystone; throws OpenStackError (401 for bad credentials) or ConfigError. */
export async function authenticate(
  http: HttpClient,
  auth: AuthConfig,
  opts: { signal?: AbortSignal; timeoutMs?: number; now?: () => number } = {},
): Promise<KeystoneToken> {
  const authUrl = need(auth.authUrl, 'auth URL');
  const body = buildAuthRequest(auth);
  const url = tokensUrl(authUrl);
  let res: HttpResponse<TokenBody>;
  try {
    res = await http.request<TokenBody>({
      method: 'POST',
      url,
      body,
      // Issuing a token changes nothing a retry could duplicate.
      idempotent: true,
      operation: 'keystone.token.issue',
      service: 'identity',
      expectJson: true,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
  } catch (err) {
    if (err instanceof OpenStackError && err.status !== undefined) {
      throw new OpenStackError({
        status: err.status,
        faultMessage: `Keystone refused ${describeAuth(auth)}: ${err.faultMessage}`,
        method: err.method,
        url: err.url,
        requestId: err.requestId,
        retryAfterMs: err.retryAfterMs,
      });
    }
    throw err;
  }
  const value = res.headers['x-subject-token'];
  const t = res.body?.token;
  if (!value || !t?.expires_at) {
    throw new OpenStackError({
      status: res.status,
      faultMessage: 'Keystone answered without X-Subject-Token or token.expires_at',
      method: 'POST',
      url,
      requestId: res.requestId,
    });
  }
  // Anchor the lifetime Keystone granted (expires_at - issued_at) at our own clock, so a skew
  // between Keystone's clock and ours neither expires tokens early nor keeps them too long.
  const now = opts.now?.() ?? Date.now();
  const serverExpires = Date.parse(t.expires_at);
  const serverIssued = t.issued_at ? Date.parse(t.issued_at) : Number.NaN;
  const lifetime = Number.isNaN(serverIssued)
    ? Math.max(0, serverExpires - now)
    : Math.max(0, serverExpires - serverIssued);
  const expiresAt = now + lifetime;
  return {
    value,
    expiresAt,
    issuedAt: now,
    refreshAt: expiresAt - refreshMarginMs(lifetime),
    userId: t.user?.id,
    projectId: t.project?.id,
    projectName: t.project?.name,
    roles: (t.roles ?? []).flatMap((r) => (r.name ? [r.name] : [])),
    catalog: t.catalog ?? [],
  };
}
