import fc from 'fast-check';

/**
 * Byte-level mutations of genuine messages (bit flips, truncation, extension, overwrites,
 * splices with another genuine message): what a receiver meets from a broken or hostile sender.
 * Shared by the payload fuzz tests (envelope level, through the broker, over HTTP).
 */
export const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.nat() }),
);

export type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

/** Applies a mutation to a copy of `src`; a splice takes its tail from one of `others`. */
export function mutate(src: Buffer, m: Mutation, others: readonly Buffer[]): Buffer {
  const b = Buffer.from(src);
  switch (m.kind) {
    case 'flip': {
      const at = m.at % b.length;
      b.writeUInt8(b.readUInt8(at) ^ (1 << m.bit), at);
      return b;
    }
    case 'truncate':
      return b.subarray(0, m.at % b.length);
    case 'extend':
      return Buffer.concat([b, Buffer.from(m.extra)]);
    case 'overwrite':
      Buffer.from(m.bytes).copy(b, m.at % b.length);
      return b;
    case 'splice': {
      const other = others[m.other % others.length]!;
      const at = m.at % Math.min(b.length, other.length);
      return Buffer.concat([b.subarray(0, at), other.subarray(at)]);
    }
  }
}
