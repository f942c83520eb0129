import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names whose values are secrets wherever they appear in a logged object: OpenStack auth
 * bodies, Cinder connection info (CHAP, keyrings), HTTP headers. Shared by every layer; pino
 * redacts them at any of the nesting depths listed below. CSI messages are redacted separately, by
 * the `csi_secret` option of their fields in csi.proto (src/grpc/redact.ts).
 */
export const SECRET_KEYS = [
  'password',
  'secret',
  'token',
  'auth_password',
  'discovery_auth_password',
  'auth_username',
  'discovery_auth_username',
  'keyring',
  'key',
  'application_credential_secret',
  'applicationCredentialSecret',
  'x-auth-token',
  'X-Auth-Token',
  'x-subject-token',
  'X-Subject-Token',
  'x-service-token',
  'X-Service-Token',
  'authorization',
  'Authorization',
  'passcode',
] as const;

const SECRET_KEY_SET: ReadonlySet<string> = new Set(SECRET_KEYS.map((k) => k.toLowerCase()));

export const REDACTED = '[REDACTED]';

/** True when a field of this name holds a secret and must not be logged or returned. */
export function isSecretKey(name: string): boolean {
  return SECRET_KEY_SET.has(name.toLowerCase());
}

/**
 * Deep copy of `value` with every secret-named field replaced by `[REDACTED]`. Used for objects of
 * unknown shape (HTTP bodies, connection info) before they are logged or put in an error.
 */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (depth > 32 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = isSecretKey(k) ? REDACTED : redactDeep(v, depth + 1);
  }
  return out;
}

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const k of SECRET_KEYS) {
    const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
    const dot = key.startsWith('[') ? '' : '.';
    paths.push(key, `*${dot}${key}`, `*.*${dot}${key}`, `*.*.*${dot}${key}`);
  }
  return paths;
}

export interface LoggerSettings {
  level?: string;
  pretty?: boolean;
  /** Where to write; defaults to stdout. Tests pass a stream to capture lines. */
  destination?: { write(line: string): unknown };
  base?: Record<string, unknown>;
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: settings.base ?? { name: 'cinder-csi' },
    redact: { paths: redactPaths(), censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (settings.pretty && !settings.destination) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  if (settings.destination) return pino(options, settings.destination as pino.DestinationStream);
  return pino(options, pino.destination({ dest: 1, sync: false }));
}

/** A logger that drops everything; for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
