/** What of a request or response may be logged: secret query parameters, headers and body fields redacted. */
import { isSecretKey, REDACTED, redactDeep } from '../../util/logger.ts';
import { stripQuery } from '../errors.ts';

/** Path plus query with secret-named parameters redacted, for logs. */
export function safePath(url: string): string {
  try {
    const u = new URL(url);
    for (const k of [...u.searchParams.keys()]) if (isSecretKey(k)) u.searchParams.set(k, REDACTED);
    return u.pathname + u.search;
  } catch {
    return stripQuery(url);
  }
}

export function redactHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = isSecretKey(k) ? REDACTED : v;
  return out;
}

const MAX_LOGGED_BODY = 4096;

export function redactBody(body: unknown): unknown {
  if (body === undefined) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    try {
      return redactDeep(JSON.parse(text));
    } catch {
      // Unparseable text cannot be redacted field by field: log only its size.
      return `<${text.length} bytes>`;
    }
  }
  const json = JSON.stringify(redactDeep(body));
  return json.length > MAX_LOGGED_BODY ? `${json.slice(0, MAX_LOGGED_BODY)}...` : JSON.parse(json);
}
