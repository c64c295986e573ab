import { describe, expect, it } from 'vitest';
import { generateKeyPair, newMessageId, peekHeader, sealAndSign } from '../protocol/index.js';
import { seededRandom } from '../tests/fuzz/seeds.js';
import { readEnvelopeHeader, readEventHeader } from './event-header.js';
import { DeviceSim, commandEnvelope } from './testing/fixture.js';

/*
 * The broker's fast header reader must accept exactly what protocol's peekHeader accepts and
 * return the same fields: checked on real envelopes and on envelopes broken in targeted and
 * in seeded random ways.
 */
const device = new DeviceSim('acme', 'door-1', generateKeyPair('x25519'));

function outcome(read: (b: Buffer) => unknown, bytes: Buffer): unknown {
  try {
    return { ok: read(bytes) };
  } catch (err) {
    return { error: (err as { code?: string }).code ?? 'thrown' };
  }
}

function expectSame(bytes: Buffer): boolean {
  const fast = outcome(readEventHeader, bytes) as { ok?: unknown; error?: string };
  const full = outcome(peekHeader, bytes) as { ok?: unknown; error?: string };
  expect(fast.ok ?? null).toEqual(full.ok ?? null);
  expect(fast.error === undefined).toBe(full.error === undefined);
  return fast.ok !== undefined;
}

/** Rebuilds an envelope around another header text (lengths fixed up, body and signature kept). */
function withHeader(envelope: Buffer, header: string): Buffer {
  const oldLength = envelope.readUInt16BE(4);
  const head = Buffer.from(header, 'utf8');
  const out = Buffer.concat([envelope.subarray(0, 4), Buffer.alloc(2), head, envelope.subarray(6 + oldLength)]);
  out.writeUInt16BE(head.length, 4);
  return out;
}

describe('readEventHeader', () => {
  it('reads the same header as peekHeader from real envelopes', () => {
    for (let i = 0; i < 20; i++) expect(expectSame(device.event().envelope)).toBe(true);
  });

  it('refuses what peekHeader refuses: truncation, bad magic, non-canonical or wrong headers', () => {
    const { envelope } = device.event();
    const header = envelope.subarray(6, 6 + envelope.readUInt16BE(4)).toString('utf8');
    const parsed = JSON.parse(header) as Record<string, unknown>;
    const cases: Buffer[] = [
      envelope.subarray(0, envelope.length - 1),
      envelope.subarray(0, 20),
      Buffer.concat([Buffer.from('XFE\u0001'), envelope.subarray(4)]),
      withHeader(envelope, header.replace(',', ', ')),
      withHeader(envelope, header.replace('{', '{"device":"door-2",')),
      withHeader(envelope, JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse()))),
      withHeader(envelope, JSON.stringify({ ...parsed, extra: 1 })),
      withHeader(envelope, JSON.stringify({ ...parsed, seq: 0 })),
      withHeader(envelope, JSON.stringify({ ...parsed, seq: 1.5 })),
      withHeader(envelope, JSON.stringify({ ...parsed, id: 'not-a-uuid' })),
      withHeader(envelope, JSON.stringify({ ...parsed, tenant: 'ACME' })),
      withHeader(envelope, JSON.stringify({ ...parsed, recipient: { a: 1 } })),
      withHeader(envelope, JSON.stringify({ ...parsed, v: 2 })),
      withHeader(envelope, JSON.stringify({ ...parsed, kind: 'command' })),
      withHeader(envelope, header.replace('"door-1"', '"door\\u002d1"')),
      withHeader(envelope, '[]'),
      withHeader(envelope, 'null'),
      // Numbers and strings a canonical encoder would not write, or out of range.
      withHeader(envelope, header.replace(/"seq":(\d+)/, '"seq":0$1')),
      withHeader(envelope, header.replace(/"seq":(\d+)/, '"seq":$1.0')),
      withHeader(envelope, header.replace(/"seq":(\d+)/, '"seq":1e1')),
      withHeader(envelope, header.replace(/"sentAt":(\d+)/, '"sentAt":-$1')),
      withHeader(envelope, header.replace(/"sentAt":(\d+)/, '"sentAt":12345678901234567')),
      withHeader(envelope, header.replace(/"seq":(\d+)/, '"seq":9007199254740993')),
      withHeader(envelope, header.replace(/"signer":"([0-9a-f]+)"/, (_, k: string) => `"signer":"${k.toUpperCase()}"`)),
      withHeader(envelope, header.replace('"v":1', '"v":1.0')),
      withHeader(envelope, header.replace('"kind":"event"', '"kind":"ev\\u0065nt"')),
      withHeader(envelope, `${header} `),
    ];
    for (const bytes of cases) expect(expectSame(bytes)).toBe(false);
    // A command with an expiry is a valid header (the broker refuses it for its kind, not its form).
    expect(expectSame(withHeader(envelope, JSON.stringify({ ...parsed, kind: 'command', expiresAt: 5 })))).toBe(true);
    expect(expectSame(withHeader(envelope, JSON.stringify({ ...parsed, seq: Number.MAX_SAFE_INTEGER, sentAt: 0 })))).toBe(true);
  });

  it('agrees with peekHeader on seeded random corruptions of the header', () => {
    const random = seededRandom(6);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(device.event().envelope);
      const headerEnd = 6 + bytes.readUInt16BE(4);
      const flips = 1 + Math.floor(random() * 2);
      for (let f = 0; f < flips; f++) bytes[Math.floor(random() * headerEnd)] = 0x20 + Math.floor(random() * 95);
      if (expectSame(bytes)) accepted++;
    }
    // Some corruptions keep a valid header (a hex digit in the id for another): both accept those.
    expect(accepted).toBeGreaterThan(0);
  });
});

describe('readEnvelopeHeader', () => {
  const admin = generateKeyPair('ed25519');
  const same = (bytes: Buffer) => {
    const fast = outcome(readEnvelopeHeader, bytes) as { ok?: unknown; error?: string };
    const full = outcome(peekHeader, bytes) as { ok?: unknown; error?: string };
    expect(fast).toEqual(full);
    return fast.ok !== undefined;
  };
  /** The envelope with its body replaced by `bytes` zero bytes (length fields fixed up). */
  const withBodyOf = (envelope: Buffer, bytes: number) => {
    const bodyAt = 6 + envelope.readUInt16BE(4);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes);
    return Buffer.concat([envelope.subarray(0, bodyAt), length, Buffer.alloc(bytes), envelope.subarray(envelope.length - 64)]);
  };

  it('reads receipts and commands as peekHeader does, with the size limit of their kind', () => {
    const receipt = sealAndSign({ kind: 'receipt', id: newMessageId(), tenant: 'acme', device: 'door-1', seq: 1, body: { type: 'ack', eventIds: [] }, signer: admin });
    const command = commandEnvelope(admin, 'acme', 'door-1').envelope;
    expect(same(receipt)).toBe(true);
    expect(same(command)).toBe(true);
    expect(same(device.event().envelope)).toBe(true);
    // Over the receipt limit (64 KiB) but well under the command one: both refuse the receipt.
    expect(same(withBodyOf(receipt, 70 * 1024))).toBe(false);
    // A command over the event limit (512 KiB) is still a valid command.
    expect(same(withBodyOf(command, 600 * 1024))).toBe(true);
    expect(same(withBodyOf(command, 5 * 1024 * 1024))).toBe(false);
  });
});
