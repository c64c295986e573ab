import { sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Ack,
  Command,
  DeviceEvent,
  MemorySequenceStore,
  ProtocolError,
  type EnvelopeKind,
  type KeyPair,
  type ProtocolErrorCode,
  generateKeyPair,
  newMessageId,
  peekHeader,
  sealAndSign,
  verifyAndOpen,
} from './index.js';
import { exampleAck, exampleAlarm, exampleCommandResult, exampleCommands, examplePunch } from './fixtures.js';

const tenant = 'acme';
const device = 'door-lobby-1';
const deviceKey = generateKeyPair('ed25519');
const adminKey = generateKeyPair('ed25519');
const cloudSeal = generateKeyPair('x25519');
const deviceSeal = generateKeyPair('x25519');
const ref = (k: KeyPair) => ({ keyId: k.keyId, key: k.publicKey });
const DAY = 86_400_000;

let seq = 0;
function sealEvent(body: unknown = examplePunch(), overrides: Partial<Parameters<typeof sealAndSign>[0]> = {}) {
  return sealAndSign({ kind: 'event', id: newMessageId(), tenant, device, seq: ++seq, body, signer: deviceKey, recipient: ref(cloudSeal), ...overrides });
}

function openEvent(bytes: Uint8Array, extra: Partial<Parameters<typeof verifyAndOpen>[1]> = {}) {
  return verifyAndOpen(bytes, {
    expect: { kind: 'event', tenant, device },
    signers: (id) => (id === deviceKey.keyId ? ref(deviceKey) : undefined),
    recipientKeys: [cloudSeal],
    requireSealed: true,
    maxAgeMs: 35 * DAY,
    maxFutureMs: 300_000,
    schema: DeviceEvent,
    ...extra,
  });
}

function codeOf(fn: () => unknown): ProtocolErrorCode | 'accepted' {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
}

/** Byte offsets of the envelope's parts, read from its own length fields. */
function layout(buf: Buffer) {
  const headerLength = buf.readUInt16BE(4);
  const bodyAt = 6 + headerLength + 4;
  return { headerAt: 6, headerLength, bodyAt, bodyLength: buf.readUInt32BE(6 + headerLength), signatureAt: buf.length - 64 };
}

/** Re-signs tampered bytes with the genuine key: models an insider, so inner checks are reached. */
function resign(buf: Buffer, key: KeyPair): Buffer {
  const { signatureAt } = layout(buf);
  const out = Buffer.from(buf);
  sign(null, out.subarray(0, signatureAt), key.privateKey).copy(out, signatureAt);
  return out;
}

describe('envelope round trips', () => {
  it.each([
    ['punch', examplePunch()],
    ['punch with photo', examplePunch({ photo: Buffer.alloc(40 * 1024, 0xff).fill(0xd8, 1, 2).toString('base64') })],
    ['alarm', exampleAlarm()],
    ['command result', exampleCommandResult()],
  ])('a sealed %s event opens to the same value', (_name, event) => {
    const { body, header } = openEvent(sealEvent(event));
    expect(body).toEqual(event);
    expect(header.kind).toBe('event');
  });

  it.each(exampleCommands().map((c) => [c.type, c] as const))('a %s command round trips, sealed to the device', (_t, cmd) => {
    const bytes = sealAndSign({
      kind: 'command', id: cmd.commandId, tenant, device, seq: ++seq, body: cmd, signer: adminKey,
      recipient: ref(deviceSeal), expiresAt: cmd.expiresAt,
    });
    const opened = verifyAndOpen(bytes, {
      expect: { kind: 'command', tenant, device },
      signers: (id) => (id === adminKey.keyId ? ref(adminKey) : undefined),
      recipientKeys: [deviceSeal],
      maxAgeMs: 30 * DAY,
      maxFutureMs: 300_000,
      schema: Command,
    });
    expect(opened.body).toEqual(cmd);
  });

  it('a signed receipt travels in clear and round trips', () => {
    const ack = exampleAck();
    const bytes = sealAndSign({ kind: 'receipt', id: newMessageId(), tenant, device, seq: 1, body: ack, signer: adminKey });
    const opened = verifyAndOpen(bytes, {
      expect: { kind: 'receipt', tenant, device },
      signers: () => ref(adminKey),
      maxAgeMs: 7 * DAY,
      maxFutureMs: 300_000,
      schema: Ack,
    });
    expect(opened.body).toEqual(ack);
  });

  it('shows routers the header and nothing of the sealed body', () => {
    const event = examplePunch();
    const bytes = sealEvent(event);
    const header = peekHeader(bytes);
    expect(header).toMatchObject({ kind: 'event', tenant, device, recipient: cloudSeal.keyId, signer: deviceKey.keyId });
    expect(bytes.includes(Buffer.from(event.subject!))).toBe(false);
    expect(bytes.includes(Buffer.from('card+face'))).toBe(false);
  });

  it('property: any valid punch survives seal and open unchanged', () => {
    const score = fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null });
    fc.assert(
      fc.property(
        fc.record({
          decision: fc.constantFrom('granted', 'denied', 'flagged'),
          credential: fc.constantFrom('card', 'face', 'card+face', 'card+pin', 'pin'),
          action: fc.constantFrom('access', 'in', 'out', 'auto'),
          reasons: fc.uniqueArray(fc.constantFrom('face-mismatch', 'liveness-failed', 'unknown-card', 'review-required'), { maxLength: 4 }),
          scores: fc.record({ faceExists: score, similarity: score, liveness: score, quality: score }),
          monotonicMs: fc.double({ min: 0, max: 1e9, noNaN: true }),
          photo: fc.option(fc.uint8Array({ minLength: 3, maxLength: 2048 }), { nil: null }),
        }),
        (r) => {
          const photo = r.photo ? Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(r.photo)]).toString('base64') : null;
          const event = examplePunch({
            decision: r.decision as never, credential: r.credential as never, action: r.action as never,
            reasons: r.reasons as never, scores: r.scores, photo,
            time: { wall: Date.now(), monotonicMs: r.monotonicMs, clockSync: 'synced' },
          });
          expect(openEvent(sealEvent(event)).body).toEqual(event);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: arbitrary bytes are refused with a ProtocolError, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, withMagic) => {
        const buf = withMagic ? Buffer.concat([Buffer.from('CFE\x01', 'latin1'), Buffer.from(bytes)]) : Buffer.from(bytes);
        expect(codeOf(() => openEvent(buf))).not.toBe('accepted');
      }),
      { numRuns: 500 },
    );
  });
});

describe('envelope refusals, each with its own check', () => {
  it('a flipped byte in the ciphertext fails the signature (verified before anything is opened)', () => {
    const bytes = sealEvent();
    const { bodyAt } = layout(bytes);
    bytes.writeUInt8(bytes.readUInt8(bodyAt + 40) ^ 1, bodyAt + 40);
    expect(codeOf(() => openEvent(bytes))).toBe('envelope.signature-invalid');
  });

  it('a flipped ciphertext byte re-signed by an insider still fails decryption', () => {
    const bytes = sealEvent();
    const { bodyAt } = layout(bytes);
    bytes.writeUInt8(bytes.readUInt8(bodyAt + 40) ^ 1, bodyAt + 40);
    expect(codeOf(() => openEvent(resign(bytes, deviceKey)))).toBe('envelope.decrypt-failed');
  });

  it('a changed AAD (header bound into the seal) re-signed by an insider fails decryption', () => {
    // Move a sealed body under a header with another sequence number: the signature is made
    // fresh, but AES-GCM authenticates the original header and refuses.
    const original = sealEvent(examplePunch(), { seq: 500 });
    const other = sealEvent(examplePunch(), { seq: 600 });
    const a = layout(original);
    const b = layout(other);
    const spliced = Buffer.concat([
      other.subarray(0, b.bodyAt),
      original.subarray(a.bodyAt, a.signatureAt),
      Buffer.alloc(64),
    ]);
    spliced.writeUInt32BE(a.bodyLength, b.bodyAt - 4);
    expect(codeOf(() => openEvent(resign(spliced, deviceKey)))).toBe('envelope.decrypt-failed');
  });

  it('a flipped byte in the signature fails the signature', () => {
    const bytes = sealEvent();
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 0x80, bytes.length - 10);
    expect(codeOf(() => openEvent(bytes))).toBe('envelope.signature-invalid');
  });

  it('a flipped byte in the header breaks the header', () => {
    const bytes = sealEvent();
    bytes.writeUInt8(bytes.readUInt8(6) ^ 0x01, 6); // "{" becomes "z"
    expect(codeOf(() => openEvent(bytes))).toBe('envelope.header-invalid');
  });

  it('a header value changed in place (still valid JSON) fails the signature', () => {
    const bytes = sealEvent(examplePunch(), { seq: 7 });
    const at = bytes.indexOf(Buffer.from('"seq":7'));
    bytes.write('8', at + 6, 'latin1');
    expect(codeOf(() => openEvent(bytes))).toBe('envelope.signature-invalid');
  });

  it('the wrong recipient key is refused before decryption', () => {
    const other = generateKeyPair('x25519');
    expect(codeOf(() => openEvent(sealEvent(examplePunch(), { recipient: ref(other) })))).toBe('envelope.wrong-recipient');
  });

  it('the wrong signer is refused: unknown key id, or a known id with another key', () => {
    const rogue = generateKeyPair('ed25519');
    expect(codeOf(() => openEvent(sealEvent(examplePunch(), { signer: rogue })))).toBe('envelope.unknown-signer');
    const impersonating = sealEvent(examplePunch(), { signer: { ...rogue, keyId: deviceKey.keyId } });
    expect(codeOf(() => openEvent(impersonating))).toBe('envelope.signature-invalid');
  });

  it('a replayed or reordered sequence is refused, and only accepted messages advance it', () => {
    const sequences = new MemorySequenceStore();
    const m5 = sealEvent(examplePunch(), { seq: 5 });
    const m6 = sealEvent(examplePunch(), { seq: 6 });
    const m4 = sealEvent(examplePunch(), { seq: 4 });
    expect(codeOf(() => openEvent(m5, { sequences }))).toBe('accepted');
    expect(codeOf(() => openEvent(m5, { sequences }))).toBe('envelope.replayed');
    expect(codeOf(() => openEvent(m4, { sequences }))).toBe('envelope.replayed');
    const bad = Buffer.from(m6);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
    expect(codeOf(() => openEvent(bad, { sequences }))).toBe('envelope.signature-invalid');
    expect(codeOf(() => openEvent(m6, { sequences }))).toBe('accepted');
  });

  it('an expired command is refused', () => {
    const cmd = exampleCommands()[5]!;
    const bytes = sealAndSign({ kind: 'command', id: cmd.commandId, tenant, device, seq: 1, body: cmd, signer: adminKey, expiresAt: Date.now() - 1 });
    const code = codeOf(() =>
      verifyAndOpen(bytes, { expect: { kind: 'command', tenant, device }, signers: () => ref(adminKey), maxAgeMs: DAY, maxFutureMs: 300_000 }),
    );
    expect(code).toBe('envelope.expired');
  });

  it('a command without an expiry cannot be made', () => {
    const cmd = exampleCommands()[5]!;
    expect(codeOf(() => sealAndSign({ kind: 'command', id: cmd.commandId, tenant, device, seq: 1, body: cmd, signer: adminKey }))).toBe('message.schema-invalid');
  });

  it('a message sent too long ago or from the future is refused', () => {
    expect(codeOf(() => openEvent(sealEvent(examplePunch(), { sentAt: Date.now() - 40 * DAY })))).toBe('envelope.outside-time-window');
    expect(codeOf(() => openEvent(sealEvent(examplePunch(), { sentAt: Date.now() + 3_600_000 })))).toBe('envelope.outside-time-window');
  });

  it('an oversized message is refused when sealing and when opening', () => {
    const huge = examplePunch({ photo: `/9j/${'A'.repeat(360 * 1024)}` });
    expect(codeOf(() => sealAndSign({ kind: 'event', id: newMessageId(), tenant, device, seq: 1, body: { pad: 'x'.repeat(600 * 1024) }, signer: deviceKey }))).toBe('envelope.too-large');
    expect(codeOf(() => openEvent(Buffer.alloc(5 * 1024 * 1024)))).toBe('envelope.too-large');
    // Within the envelope limit but over the photo limit: the schema refuses it after opening.
    const bytes = sealAndSign({ kind: 'event', id: huge.eventId, tenant, device, seq: ++seq, body: huge, signer: deviceKey, recipient: ref(cloudSeal) });
    expect(codeOf(() => openEvent(bytes))).toBe('message.schema-invalid');
  });

  it('malformed JSON inside a valid envelope is refused as such', () => {
    const bytes = sealAndSign({ kind: 'event', id: newMessageId(), tenant, device, seq: ++seq, body: 'x'.repeat(40), signer: deviceKey });
    const { bodyAt } = layout(bytes);
    Buffer.from('{"type":"punch",'.padEnd(42, ' ')).copy(bytes, bodyAt);
    expect(codeOf(() => openEvent(resign(bytes, deviceKey), { requireSealed: false }))).toBe('message.malformed-json');
  });

  it('a clear body where a seal is required, or another kind, tenant or device, is a context mismatch', () => {
    const clear = sealEvent(examplePunch(), { recipient: undefined });
    expect(codeOf(() => openEvent(clear))).toBe('envelope.context-mismatch');
    expect(codeOf(() => openEvent(sealEvent(examplePunch(), { tenant: 'other' })))).toBe('envelope.context-mismatch');
    expect(codeOf(() => openEvent(sealEvent(examplePunch(), { device: 'door-2' })))).toBe('envelope.context-mismatch');
    expect(codeOf(() => openEvent(sealEvent(examplePunch(), { kind: 'receipt' as EnvelopeKind })))).toBe('envelope.context-mismatch');
  });

  it('a body that fails its schema is refused with the field named and no values', () => {
    const bad = { ...examplePunch(), scores: { faceExists: 1.5, similarity: null, liveness: null, quality: null } };
    try {
      openEvent(sealEvent(bad));
      expect.unreachable();
    } catch (err) {
      expect((err as ProtocolError).code).toBe('message.schema-invalid');
      expect((err as Error).message).toContain('scores.faceExists');
      expect((err as Error).message).not.toContain('1.5');
    }
  });

  it('an id with a wildcard cannot even be sealed', () => {
    expect(codeOf(() => sealEvent(examplePunch(), { device: 'door/#' }))).toBe('message.schema-invalid');
  });

  it('error messages never carry key material or payload bytes', () => {
    const event = examplePunch();
    const bytes = sealEvent(event);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
    try {
      openEvent(bytes);
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).not.toContain(event.subject!);
      expect(msg).not.toContain(deviceKey.publicRaw.toString('base64'));
      expect(msg.length).toBeLessThan(200);
    }
  });
});
