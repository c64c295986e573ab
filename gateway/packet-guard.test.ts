import { describe, expect, it } from 'vitest';
import { PacketSizeScanner } from './packet-guard.js';

/** Encodes an MQTT fixed header for a packet with the given remaining length. */
function header(type: number, remaining: number): Buffer {
  const bytes = [type];
  do {
    let b = remaining % 128;
    remaining = Math.floor(remaining / 128);
    if (remaining > 0) b |= 0x80;
    bytes.push(b);
  } while (remaining > 0);
  return Buffer.from(bytes);
}

describe('PacketSizeScanner', () => {
  it('walks packet boundaries across arbitrary chunking and accepts packets within the limit', () => {
    const packets = [Buffer.concat([header(0x30, 300), Buffer.alloc(300)]), Buffer.from([0xc0, 0x00]), Buffer.concat([header(0x32, 1000), Buffer.alloc(1000)])];
    const stream = Buffer.concat(packets);
    for (const size of [1, 2, 7, 300, stream.length]) {
      const scanner = new PacketSizeScanner(2000);
      for (let i = 0; i < stream.length; i += size) expect(scanner.push(stream.subarray(i, i + size))).toBeNull();
    }
  });

  it('reports an oversized packet from its header, before its body arrives', () => {
    const scanner = new PacketSizeScanner(1024);
    expect(scanner.push(Buffer.concat([header(0x30, 10), Buffer.alloc(10)]))).toBeNull();
    expect(scanner.push(header(0x32, 5_000_000))).toBe(1 + 4 + 5_000_000);
  });

  it('reports a malformed remaining length (more than four bytes)', () => {
    const scanner = new PacketSizeScanner(1024);
    expect(scanner.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(Number.POSITIVE_INFINITY);
  });
});
