import { ProtocolError } from './errors.js';

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, finite numbers only, no
 * undefined. The same value always gives the same bytes, so a signature over them is stable
 * across tiers and Node versions. Binary data travels as base64 strings.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, 0);
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

const MAX_DEPTH = 32;

function encode(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw new ProtocolError('encoding.not-canonical', `nesting deeper than ${MAX_DEPTH}`);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new ProtocolError('encoding.not-canonical', 'non-finite number');
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => encode(v, depth + 1)).join(',')}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new ProtocolError('encoding.not-canonical', 'only plain objects, arrays and primitives can be encoded');
      }
      const entries = Object.keys(value as object)
        .sort()
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${encode((value as Record<string, unknown>)[k], depth + 1)}`);
      return `{${entries.join(',')}}`;
    }
    default:
      throw new ProtocolError('encoding.not-canonical', `cannot encode a ${typeof value}`);
  }
}

/** Parses JSON bytes; malformed input becomes message.malformed-json without echoing the bytes. */
export function parseJson(bytes: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new ProtocolError('message.malformed-json', 'payload is not valid JSON');
  }
}
