/**
 * Wiegand frame encoding (bit arrays, most significant first, as sent on the wire).
 *
 * 26-bit (HID H10301): [even parity over bits 1-12] [8-bit facility] [16-bit card] [odd parity over bits 13-24].
 * 34-bit: [even parity over the first 16 data bits] [32-bit number] [odd parity over the last 16].
 */
export type WiegandBits = Array<0 | 1>;

export function wiegand26(facility: number, card: number): WiegandBits {
  if (!Number.isInteger(facility) || facility < 0 || facility > 0xff) throw new RangeError(`wiegand26: facility code must be 0-255, got ${facility}`);
  if (!Number.isInteger(card) || card < 0 || card > 0xffff) throw new RangeError(`wiegand26: card number must be 0-65535, got ${card}`);
  return withParity([...toBits(facility, 8), ...toBits(card, 16)]);
}

export function wiegand34(value: number): WiegandBits {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`wiegand34: number must be 0-4294967295, got ${value}`);
  return withParity(toBits(value, 32));
}

/**
 * A card number as the configured frame. 26-bit frames carry only 24 bits: the card's low 16
 * bits, with the facility from config or, when none is set, the card's bits 23-16 (what most
 * EM4100 readers with a W26 output send). 34-bit frames carry the low 32 bits.
 */
export function wiegandForCard(cardNumber: bigint | number, format: 26 | 34, facilityCode?: number): WiegandBits {
  const n = BigInt(cardNumber);
  if (n < 0n) throw new RangeError('wiegand: card number must not be negative');
  if (format === 34) return wiegand34(Number(n & 0xffff_ffffn));
  return wiegand26(facilityCode ?? Number((n >> 16n) & 0xffn), Number(n & 0xffffn));
}

/** Checks both parity bits of a frame (what a panel does); used by tests and `hw test`. */
export function parityOk(bits: WiegandBits): boolean {
  const data = bits.slice(1, -1);
  const half = data.length / 2;
  const ones = (b: WiegandBits) => b.filter((x) => x === 1).length;
  return (ones(data.slice(0, half)) + bits[0]!) % 2 === 0 && (ones(data.slice(half)) + bits[bits.length - 1]!) % 2 === 1;
}

export function bitsToString(bits: WiegandBits): string {
  return bits.join('');
}

function toBits(value: number, width: number): WiegandBits {
  const out: WiegandBits = [];
  for (let i = width - 1; i >= 0; i--) out.push(Math.floor(value / 2 ** i) % 2 === 1 ? 1 : 0);
  return out;
}

function withParity(data: WiegandBits): WiegandBits {
  const half = data.length / 2;
  const ones = (b: WiegandBits) => b.filter((x) => x === 1).length;
  const even: 0 | 1 = ones(data.slice(0, half)) % 2 === 1 ? 1 : 0;
  const odd: 0 | 1 = ones(data.slice(half)) % 2 === 0 ? 1 : 0;
  return [even, ...data, odd];
}
