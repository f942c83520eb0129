import type protobuf from 'protobufjs';
import { REDACTED } from '../util/logger.ts';

/**
 * Redaction of CSI messages for logs, driven by the proto's own `(csi.v1.csi_secret) = true` field
 * option, not by a hand-kept list: a secret field added to a future csi.proto is redacted without a
 * code change. Nested messages are walked by their declared types, so a secret inside a sub-message
 * (e.g. VolumeContentSource) is found too.
 */
export class CsiRedactor {
  /** message full name → field name → nested message type name, or SECRET. */
  readonly #plans = new Map<string, Map<string, string | typeof SECRET>>();
  readonly #load: () => protobuf.Root;
  #loaded: protobuf.Root | undefined;

  /**
   * `root` may be a function: the reflection root is then built on first use, so a driver that
   * never logs at debug level never pays for it.
   */
  constructor(root: protobuf.Root | (() => protobuf.Root)) {
    this.#load = typeof root === 'function' ? root : () => root;
  }

  get #root(): protobuf.Root {
    this.#loaded ??= this.#load();
    return this.#loaded;
  }

  /** Names of the secret fields of a message type (for tests and docs). */
  secretFields(typeName: string): string[] {
    const plan = this.#plan(typeName);
    return [...plan].filter(([, v]) => v === SECRET).map(([k]) => k);
  }

  /** A copy of `message` (of proto type `typeName`) with every csi_secret field's value replaced. */
  redact(typeName: string, message: unknown): unknown {
    return this.#redact(typeName, message, 0);
  }

  /**
   * Every value of a csi_secret field in `message` (string values, map values), so a message that
   * would echo one can be scrubbed (see scrubSecrets).
   */
  secretValues(typeName: string, message: unknown): string[] {
    const out: string[] = [];
    this.#collect(typeName, message, 0, out);
    return out;
  }

  #collect(typeName: string, message: unknown, depth: number, out: string[]): void {
    if (message === null || typeof message !== 'object' || depth > 16) return;
    const plan = this.#plan(typeName);
    for (const [field, action] of plan) {
      const value = (message as Record<string, unknown>)[field];
      if (value === undefined || value === null) continue;
      if (action === SECRET) {
        if (typeof value === 'string') out.push(value);
        else if (typeof value === 'object' && !Array.isArray(value)) {
          for (const v of Object.values(value)) if (typeof v === 'string') out.push(v);
        }
      } else if (Array.isArray(value)) {
        for (const v of value) this.#collect(action, v, depth + 1, out);
      } else {
        this.#collect(action, value, depth + 1, out);
      }
    }
  }

  #redact(typeName: string, message: unknown, depth: number): unknown {
    if (message === null || typeof message !== 'object' || depth > 16) return message;
    const plan = this.#plan(typeName);
    if (plan.size === 0) return message;
    const out: Record<string, unknown> = { ...(message as Record<string, unknown>) };
    for (const [field, action] of plan) {
      const value = out[field];
      if (value === undefined || value === null) continue;
      if (action === SECRET) {
        out[field] = redactValue(value);
      } else if (Array.isArray(value)) {
        out[field] = value.map((v) => this.#redact(action, v, depth + 1));
      } else if (typeof value === 'object') {
        out[field] = this.#redact(action, value, depth + 1);
      }
    }
    return out;
  }

  #plan(typeName: string): Map<string, string | typeof SECRET> {
    const cached = this.#plans.get(typeName);
    if (cached) return cached;
    const plan = new Map<string, string | typeof SECRET>();
    this.#plans.set(typeName, plan); // set first: recursive message types terminate
    const type = this.#root.lookupType(typeName);
    for (const field of type.fieldsArray) {
      if (field.options?.['(csi_secret)'] === true || field.options?.['(csi.v1.csi_secret)'] === true) {
        plan.set(field.name, SECRET);
        continue;
      }
      const resolved = field.resolve().resolvedType;
      if (resolved && 'fieldsArray' in resolved) {
        const nested = resolved.fullName.replace(/^\./, '');
        if (nested.startsWith('csi.') && this.#containsSecret(nested, new Set([typeName]))) {
          plan.set(field.name, nested);
        }
      }
    }
    return plan;
  }

  #containsSecret(typeName: string, seen: Set<string>): boolean {
    if (seen.has(typeName)) return false;
    seen.add(typeName);
    const type = this.#root.lookupType(typeName);
    for (const field of type.fieldsArray) {
      if (field.options?.['(csi_secret)'] === true || field.options?.['(csi.v1.csi_secret)'] === true)
        return true;
      const resolved = field.resolve().resolvedType;
      if (resolved && 'fieldsArray' in resolved) {
        const nested = resolved.fullName.replace(/^\./, '');
        if (nested.startsWith('csi.') && this.#containsSecret(nested, seen)) return true;
      }
    }
    return false;
  }
}

const SECRET: unique symbol = Symbol('secret');

function redactValue(value: unknown): unknown {
  // Keep the keys of a secrets map (useful when debugging which secret was passed), never values.
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(Object.keys(value).map((k) => [k, REDACTED]));
  }
  return REDACTED;
}

/** Secrets shorter than this are not scrubbed from text (they would garble every message). */
const MIN_SCRUB_LENGTH = 4;

/** `text` with every occurrence of each secret value replaced by [REDACTED]. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= MIN_SCRUB_LENGTH && out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return out;
}

/**
 * A copy of a (redacted) message for a debug log line with every string longer than `max`
 * characters cut to a prefix and its length: a hostile 1 MB field never lands in the log whole.
 */
export function capStrings(value: unknown, max = 256, depth = 0): unknown {
  if (typeof value === 'string') {
    return value.length > max ? `${value.slice(0, max)}… (${value.length} chars)` : value;
  }
  if (value === null || typeof value !== 'object' || depth > 16) return value;
  if (Array.isArray(value)) {
    const items = value.slice(0, 64).map((v) => capStrings(v, max, depth + 1));
    if (value.length > 64) items.push(`… (${value.length} entries)`);
    return items;
  }
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(value)) {
    if (n++ >= 64) {
      out['…'] = `${Object.keys(value).length} keys`;
      break;
    }
    out[k.length > max ? `${k.slice(0, max)}…` : k] = capStrings(v, max, depth + 1);
  }
  return out;
}
