/**
 * Connection setup: one undici `Agent` per client (a keep-alive `Pool` per origin), its timeouts
 * and TLS options (CA file, client certificate/key, the explicit `insecure` switch).
 */
import { readFileSync } from 'node:fs';
import type { Agent } from 'undici';
import type { TlsConfig } from '../../config/types.ts';
import type { Logger } from '../../util/logger.ts';
import type { ResolvedHttpOptions } from './types.ts';

/** The Agent options for the client's timeouts, pool size and TLS; reads the TLS files now. */
export function agentOptions(
  opts: Pick<
    ResolvedHttpOptions,
    'connectionsPerOrigin' | 'headersTimeoutMs' | 'bodyTimeoutMs' | 'connectTimeoutMs'
  >,
  tls: TlsConfig | undefined,
  logger: Logger,
): Agent.Options {
  return {
    connections: opts.connectionsPerOrigin,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyTimeoutMs,
    connect: { timeout: opts.connectTimeoutMs, ...tlsConnectOptions(tls, logger) },
  };
}

/** The client's Agent, created on first use: undici is a large module, and a node plugin may never call out. */
export class LazyAgent {
  #agent: Agent | undefined;
  readonly #options: Agent.Options;

  constructor(options: Agent.Options) {
    this.#options = options;
  }

  async get(): Promise<Agent> {
    if (!this.#agent) {
      // undici is CommonJS: its exports object is the default export, both under Node and in the
      // image's bundle (where named exports of a lazily imported CommonJS chunk do not exist).
      const undici = (await import('undici')).default;
      this.#agent ??= new undici.Agent(this.#options);
    }
    return this.#agent;
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    await this.#agent?.close();
  }
}

function tlsConnectOptions(tls: TlsConfig | undefined, logger: Logger): Record<string, unknown> {
  if (!tls) return {};
  const out: Record<string, unknown> = {};
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  if (tls.caFile) out['ca'] = read(tls.caFile, 'CA file');
  if (tls.certFile) out['cert'] = read(tls.certFile, 'client certificate');
  if (tls.keyFile) out['key'] = read(tls.keyFile, 'client key');
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new Error('TLS client certificate and key must be given together');
  }
  if (tls.insecure) {
    out['rejectUnauthorized'] = false;
    logger.warn('TLS certificate verification is DISABLED (insecure): only for tests and labs');
  }
  return out;
}
