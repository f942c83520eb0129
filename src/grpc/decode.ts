import type { ServiceDefinition } from '@grpc/grpc-js';

/**
 * Request decoding that never fails the call as INTERNAL. grpc-js answers a request its
 * deserializer throws on with INTERNAL ("Error deserializing request"); a garbage frame is the
 * caller's fault, so the guarded deserializer returns a `MalformedRequest` instead and the wrapper
 * answers INVALID_ARGUMENT. It also rejects strings that are not valid UTF-8 (proto3 requires it;
 * protobufjs would silently turn the bad bytes into U+FFFD and hand the handler a different id).
 */
export class MalformedRequest {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** The UTF-8 encoding of U+FFFD: a decoded U+FFFD not present in the bytes came from bad UTF-8. */
const REPLACEMENT_UTF8 = Buffer.from([0xef, 0xbf, 0xbd]);

export function guardDeserializers(def: ServiceDefinition): ServiceDefinition {
  const out: Record<string, unknown> = {};
  for (const [method, md] of Object.entries(def)) {
    const deserialize = md.requestDeserialize;
    out[method] = {
      ...md,
      requestDeserialize: (buf: Buffer): unknown => {
        let value: unknown;
        try {
          value = deserialize(buf);
        } catch {
          return new MalformedRequest('the request is not a valid protobuf message of its type');
        }
        if (hasReplacementChar(value, 0) && !buf.includes(REPLACEMENT_UTF8)) {
          return new MalformedRequest('a string field of the request is not valid UTF-8');
        }
        return value;
      },
    };
  }
  return out as ServiceDefinition;
}

function hasReplacementChar(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return value.includes('\uFFFD');
  if (value === null || typeof value !== 'object' || depth > 32) return false;
  if (Array.isArray(value)) return value.some((v) => hasReplacementChar(v, depth + 1));
  for (const [k, v] of Object.entries(value)) {
    if (k.includes('\uFFFD') || hasReplacementChar(v, depth + 1)) return true;
  }
  return false;
}
