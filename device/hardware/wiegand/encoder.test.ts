import { describe, expect, it } from 'vitest';
import { bitsToString, parityOk, wiegand26, wiegand34, wiegandForCard } from './encoder.js';

// Expected frames written out by hand from the H10301 / 34-bit layouts (parity counted manually).
describe('Wiegand encoder', () => {
  it.each([
    [0, 0, '0' + '0'.repeat(24) + '1'],
    [1, 1, '1' + '00000001' + '0000000000000001' + '0'],
    [18, 12345, '0' + '00010010' + '0011000000111001' + '1'],
    [255, 65535, '0' + '1'.repeat(24) + '1'],
  ])('26-bit facility %i card %i', (facility, card, expected) => {
    const bits = wiegand26(facility, card);
    expect(bits).toHaveLength(26);
    expect(bitsToString(bits)).toBe(expected);
    expect(parityOk(bits)).toBe(true);
  });

  it.each([
    [1, '0' + '0'.repeat(31) + '1' + '0'],
    [0xffffffff, '0' + '1'.repeat(32) + '1'],
    [0x12345678, '1' + '00010010001101000101011001111000' + '1'],
  ])('34-bit number %i', (value, expected) => {
    const bits = wiegand34(value);
    expect(bits).toHaveLength(34);
    expect(bitsToString(bits)).toBe(expected);
    expect(parityOk(bits)).toBe(true);
  });

  it('maps an EM4100 tag number the way W26 readers do, or with a configured facility', () => {
    const n = 0x00abcdef; // tag 0100ABCDEF
    expect(bitsToString(wiegandForCard(n, 26))).toBe(bitsToString(wiegand26(0xab, 0xcdef)));
    expect(bitsToString(wiegandForCard(BigInt(n), 26, 7))).toBe(bitsToString(wiegand26(7, 0xcdef)));
    expect(bitsToString(wiegandForCard(0x1_0000_0005n, 34))).toBe(bitsToString(wiegand34(5)));
  });

  it('a flipped bit breaks parity (what the panel checks)', () => {
    const bits = wiegand26(18, 12345);
    bits[5] = bits[5] === 1 ? 0 : 1;
    expect(parityOk(bits)).toBe(false);
  });

  it('rejects out-of-range values with a clear error', () => {
    expect(() => wiegand26(256, 1)).toThrow(/facility code must be 0-255/);
    expect(() => wiegand26(1, 65536)).toThrow(/card number must be 0-65535/);
    expect(() => wiegand34(-1)).toThrow(/0-4294967295/);
  });
});
