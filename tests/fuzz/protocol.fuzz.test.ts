import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Ack,
  Command,
  DeviceEvent,
  DoorDecision,
  ProtocolError,
  Status,
  generateKeyPair,
  newMessageId,
  parseJson,
  parseMessage,
  sealAndSign,
  verifyAndOpen,
} from '../../protocol/index.js';
import { exampleAck, exampleCommands, exampleDoor, examplePunch, exampleStatus } from '../../protocol/fixtures.js';
import { FUZZ_SEED, runs } from './seeds.js';

/**
 * MQTT payloads as a receiver meets them: valid envelopes mutated (bit flips, truncation,
 * extension, splices) and arbitrary JSON against every schema. Every outcome must be either
 * the original message or a ProtocolError with a code — never another exception.
 */
const deviceKey = generateKeyPair('ed25519');
const cloudKey = generateKeyPair('x25519');
const tenant = 'acme';
const device = 'door-lobby-1';

const genuine = Array.from({ length: 8 }, (_, i) =>
  sealAndSign({
    kind: 'event', id: newMessageId(), tenant, device, seq: i + 1,
    body: examplePunch({ photo: i % 2 ? Buffer.alloc(2048, 0xd8).fill(0xff, 0, 1).toString('base64') : null }),
    signer: deviceKey, recipient: { keyId: cloudKey.keyId, key: cloudKey.publicKey },
  }),
);

function open(bytes: Buffer) {
  return verifyAndOpen(bytes, {
    expect: { kind: 'event', tenant, device },
    signers: (id) => (id === deviceKey.keyId ? { keyId: id, key: deviceKey.publicKey } : undefined),
    recipientKeys: [cloudKey],
    requireSealed: true,
    maxAgeMs: 35 * 86_400_000,
    maxFutureMs: 300_000,
    schema: DeviceEvent,
  });
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(7) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(src: Buffer, m: Mutation): Buffer {
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
      const other = genuine[m.other]!;
      const at = m.at % Math.min(b.length, other.length);
      return Buffer.concat([b.subarray(0, at), other.subarray(at)]);
    }
  }
}

describe('bad-input campaign: MQTT payloads', () => {
  it('mutated envelopes are refused with a protocol error code, never a crash', () => {
    let refused = 0;
    fc.assert(
      fc.property(fc.nat(7), mutation, (which, m) => {
        const src = genuine[which]!;
        const bytes = mutate(src, m);
        try {
          open(bytes);
          // Only a mutation that changed nothing (same bytes written back, a splice at offset 0)
          // may leave a genuine envelope.
          expect(genuine.some((g) => g.equals(bytes))).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
          refused++;
        }
      }),
      { seed: FUZZ_SEED, numRuns: runs(20_000) },
    );
    expect(refused).toBeGreaterThan(runs(20_000) * 0.9);
  });

  it('arbitrary JSON is refused by every schema with a field-level reason', () => {
    const schemas = [DeviceEvent, Command, Status, Ack, DoorDecision];
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.nat(schemas.length - 1), (value, i) => {
        try {
          parseMessage(schemas[i]!, value);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
          expect((err as ProtocolError).code).toBe('message.schema-invalid');
        }
      }),
      { seed: FUZZ_SEED, numRuns: runs(10_000) },
    );
  });

  it('valid messages with one field replaced by junk are refused, never accepted or crashing', () => {
    const samples: [typeof Status | typeof Ack | typeof DoorDecision | typeof DeviceEvent | typeof Command, Record<string, unknown>][] = [
      [DeviceEvent, examplePunch()], [Status, exampleStatus()], [Ack, exampleAck()], [DoorDecision, exampleDoor()],
      ...exampleCommands().map((c) => [Command, c] as [typeof Command, Record<string, unknown>]),
    ];
    const junk = fc.oneof(fc.string({ maxLength: 80 }), fc.double(), fc.constant(null), fc.constant(-1), fc.array(fc.nat(), { maxLength: 3 }), fc.constant({}), fc.constant('cf/v1/+/#'));
    fc.assert(
      fc.property(fc.nat(samples.length - 1), fc.nat(), junk, (i, k, value) => {
        const [schema, sample] = samples[i]!;
        const keys = Object.keys(sample);
        const key = keys[k % keys.length]!;
        const mutated = { ...sample, [key]: value };
        try {
          const parsed = parseMessage(schema, parseJson(JSON.stringify(mutated)));
          // Accepted only if the junk happened to be a valid value for that field.
          expect(parsed).toBeTruthy();
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }),
      { seed: FUZZ_SEED, numRuns: runs(10_000) },
    );
  });
});
