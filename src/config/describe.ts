import { inspect } from 'node:util';
import { REDACTED } from '../util/logger.ts';
import type { AuthConfig, CloudConfig } from './types.ts';

function maskAuth(auth: AuthConfig): Record<string, unknown> {
  const { password, applicationCredentialSecret, token, ...rest } = auth;
  const masked: Record<string, unknown> = { ...rest };
  if (password !== undefined) masked.password = REDACTED;
  if (applicationCredentialSecret !== undefined) masked.applicationCredentialSecret = REDACTED;
  if (token !== undefined) masked.token = REDACTED;
  return masked;
}

/**
 * A loggable summary of a configuration for start-up logs: every identifier and path, secrets
 * (password, application credential secret, token) replaced by `[REDACTED]` when set.
 */
export function describeConfig(cfg: CloudConfig): Record<string, unknown> {
  return {
    auth: maskAuth(cfg.auth),
    region: cfg.region,
    interface: cfg.interface,
    endpointOverride: cfg.endpointOverride,
    tls: { ...cfg.tls },
    blockStorage: { ...cfg.blockStorage },
    sources: { ...cfg.sources },
  };
}

/**
 * Defence in depth: makes `JSON.stringify`, pino and `util.inspect` / `console.log` of the config
 * (or of its `auth` part) print the masked summary instead of the secrets. The hooks are
 * non-enumerable, so spreading, `isDeepStrictEqual` and `structuredClone` see plain data.
 */
export function protectSecrets(cfg: CloudConfig): CloudConfig {
  const hide = (target: object, summary: () => unknown): void => {
    Object.defineProperty(target, 'toJSON', { value: summary, enumerable: false });
    Object.defineProperty(target, inspect.custom, {
      value: (_depth: number, options: object) => inspect(summary(), options),
      enumerable: false,
    });
  };
  hide(cfg.auth, () => maskAuth(cfg.auth));
  hide(cfg, () => describeConfig(cfg));
  return cfg;
}
