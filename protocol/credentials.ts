import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

/**
 * Badge numbers and PINs never travel or rest in clear. A card is known by a keyed hash
 * (HMAC-SHA256 with the tenant's pepper) of its canonical number; a PIN by an scrypt hash.
 *
 * The canonical card number is the decimal value of the card's 32-bit id with no leading
 * zeros (EM4100 readers: the last 8 of the 10 hex digits; "keyboard" readers usually print this
 * same number as 10 decimal digits), so the same badge hashes alike whichever reader reads it.
 */
export function canonicalCardNumber(input: string | number | bigint): string {
  const text = String(input).trim();
  if (!/^[0-9]{1,20}$/.test(text)) throw new Error('card number must be decimal digits');
  return BigInt(text).toString(10);
}

export function cardHash(pepper: Uint8Array, cardNumber: string | number | bigint): string {
  if (pepper.length < 16) throw new Error('card pepper must be at least 16 bytes');
  return createHmac('sha256', pepper).update(`card:${canonicalCardNumber(cardNumber)}`).digest('hex');
}

const SCRYPT = { N: 16384, r: 8, p: 1 } as const;

/** PIN hash in the form scrypt$N$r$p$salt$hash (base64). */
export function hashPin(pin: string): string {
  if (!/^[0-9]{4,12}$/.test(pin)) throw new Error('PIN must be 4 to 12 digits');
  const salt = randomBytes(16);
  const hash = scryptSync(pin, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function verifyPin(pin: string, stored: string): boolean {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64');
  const N = Number(n);
  if (!(N >= 1024 && N <= 1 << 20) || expected.length !== 32) return false;
  const actual = scryptSync(pin, Buffer.from(salt, 'base64'), 32, { N, r: Number(r), p: Number(p) });
  return timingSafeEqual(actual, expected);
}
