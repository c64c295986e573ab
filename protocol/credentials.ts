import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Badge numbers and PINs never travel or rest in clear, and a stolen disk must not give them
 * back cheaply. The card space is small (32 bits) and a PIN's tiny (10^4..10^6), so a fast keyed
 * hash only protects them while the pepper stays secret — and a terminal's pepper sits on the
 * same board as its database. So every guess is made to cost a memory-hard scrypt as well:
 *
 *   card  (v2)  "c2." + hex(scrypt(HMAC-SHA256(pepper, "card:<canonical>"), "clockface/card/v2", CARD_SCRYPT))
 *   PIN   (v2)  "p2$" + salt + "$" + scrypt(HMAC-SHA256(pepper, "pin:<pin>"), salt, PIN_SCRYPT)
 *
 * The card hash is deterministic (the terminal looks a badge up by it); the PIN hash has a random
 * salt (it is only ever checked against one subject's record). Both need the pepper to test a
 * guess, and the parameters are fixed here rather than read from the stored string, so a stored
 * hash cannot ask for a cheaper check than this release makes (bounded verify cost both ways).
 *
 * Release 1 stored cards as the bare HMAC (64 hex digits: `legacyCardHash`) and PINs as
 * unpeppered scrypt with the parameters written into the hash. A v2 card hash is the scrypt of
 * the v1 hash, so a v1 hash upgrades without the card number (`upgradeCardHash`); a v1 PIN
 * hash can only be upgraded when the PIN is typed (`checkPin` says so).
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

/**
 * scrypt cost of one card hash: 128·N·r bytes of memory (8 MiB). The largest N whose cost keeps
 * badge → relay within its 150 ms median target (`npm run bench -- device`, cardHashCostSweep;
 * 2^14 measured 151 ms). See docs/facilities-guide.md § A stolen terminal for the figures.
 */
export const CARD_SCRYPT = { N: 1 << 13, r: 8, p: 1 } as const;
/** scrypt cost of one PIN check: 32 MiB. Dearer than a card: the PIN space is far smaller, and a PIN check already waits on a person. */
export const PIN_SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
/** Bytes of memory one hash with these parameters needs (what an attacker must pay per guess, per core). */
export const scryptMemoryBytes = (c: { N: number; r: number }) => 128 * c.N * c.r;

export const CARD_HASH_PREFIX = 'c2.';
const PIN_HASH_PREFIX = 'p2$';
const CARD_SALT = Buffer.from('clockface/card/v2');
const LEGACY_CARD_HASH = /^[0-9a-f]{64}$/;
/** A card hash as it may travel or rest: v2, or a v1 hash made by release 1 (upgraded where it lands). */
export const CARD_HASH_PATTERN = /^(c2\.)?[0-9a-f]{64}$/;
/** A PIN hash as it may travel or rest: v2, or release 1's with the parameters it always wrote (16-byte salt, 32-byte hash). */
export const PIN_HASH_PATTERN = /^(p2|scrypt\$16384\$8\$1)\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/;

const options = (c: { N: number; r: number; p: number }): ScryptOptions => ({ ...c, maxmem: 2 * scryptMemoryBytes(c) });

function checkPepper(pepper: Uint8Array): void {
  if (pepper.length < 16) throw new Error('card pepper must be at least 16 bytes');
}

/** Release 1's card hash (HMAC-SHA256 only): to find and upgrade records made before v2. Never store a new one. */
export function legacyCardHash(pepper: Uint8Array, cardNumber: string | number | bigint): string {
  checkPepper(pepper);
  return createHmac('sha256', pepper).update(`card:${canonicalCardNumber(cardNumber)}`).digest('hex');
}

export function isLegacyCardHash(hash: string): boolean {
  return LEGACY_CARD_HASH.test(hash);
}

/** The v2 card hash (sync: an admin's client enrolling a badge; the terminal uses `cardHashAsync`). */
export function cardHash(pepper: Uint8Array, cardNumber: string | number | bigint): string {
  const v1 = Buffer.from(legacyCardHash(pepper, cardNumber), 'hex');
  return CARD_HASH_PREFIX + scryptSync(v1, CARD_SALT, 32, options(CARD_SCRYPT)).toString('hex');
}

/** The v2 card hash off the event loop (libuv's thread pool), so LEDs, MQTT and the screen keep moving while it runs. */
export async function cardHashAsync(pepper: Uint8Array, cardNumber: string | number | bigint): Promise<string> {
  return upgradeCardHash(legacyCardHash(pepper, cardNumber));
}

/** v1 → v2 without the card number or the pepper; a v2 hash comes back unchanged. */
export async function upgradeCardHash(hash: string): Promise<string> {
  if (!isLegacyCardHash(hash)) return hash;
  return CARD_HASH_PREFIX + (await scryptAsync(Buffer.from(hash, 'hex'), CARD_SALT, CARD_SCRYPT)).toString('hex');
}

function validPin(pin: string): void {
  if (!/^[0-9]{4,12}$/.test(pin)) throw new Error('PIN must be 4 to 12 digits');
}

const pinKey = (pepper: Uint8Array, pin: string) => createHmac('sha256', pepper).update(`pin:${pin}`).digest();

/** PIN hash `p2$<salt>$<hash>` (base64): peppered, memory-hard, random salt. */
export function hashPin(pepper: Uint8Array, pin: string): string {
  checkPepper(pepper);
  validPin(pin);
  const salt = randomBytes(16);
  const hash = scryptSync(pinKey(pepper, pin), salt, 32, options(PIN_SCRYPT));
  return `${PIN_HASH_PREFIX}${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** `hashPin` off the event loop (the terminal re-hashing a release 1 PIN it just checked). */
export async function hashPinAsync(pepper: Uint8Array, pin: string): Promise<string> {
  checkPepper(pepper);
  validPin(pin);
  const salt = randomBytes(16);
  const hash = await scryptAsync(pinKey(pepper, pin), salt, PIN_SCRYPT);
  return `${PIN_HASH_PREFIX}${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * How a typed PIN compares with a stored hash. `match-legacy`: right, but the hash is release 1's
 * (unpeppered) and should be replaced with `hashPin(pepper, pin)` now that the PIN is in hand.
 * `unrecognised`: not a hash this release checks (garbage, or release 1 parameters other than the
 * ones it always wrote — a cheap hash someone made by hand is never tested at its own low cost).
 */
export type PinCheck = 'match' | 'match-legacy' | 'mismatch' | 'unrecognised';

/** Compares a typed PIN with a stored hash off the event loop; the cost is PIN_SCRYPT (or release 1's N=16384) whatever the hash says. */
export async function checkPin(pepper: Uint8Array, pin: string, stored: string): Promise<PinCheck> {
  checkPepper(pepper);
  const parsed = parsePinHash(stored);
  if (!parsed || !/^[0-9]{4,12}$/.test(pin)) return parsed ? 'mismatch' : 'unrecognised';
  const actual = parsed.legacy
    ? await scryptAsync(Buffer.from(pin), parsed.salt, LEGACY_PIN_SCRYPT)
    : await scryptAsync(pinKey(pepper, pin), parsed.salt, PIN_SCRYPT);
  if (!timingSafeEqual(actual, parsed.hash)) return 'mismatch';
  return parsed.legacy ? 'match-legacy' : 'match';
}

/** Sync yes/no (tests and tools); the terminal uses `checkPin`. */
export function verifyPin(pepper: Uint8Array, pin: string, stored: string): boolean {
  checkPepper(pepper);
  const parsed = parsePinHash(stored);
  if (!parsed || !/^[0-9]{4,12}$/.test(pin)) return false;
  const actual = parsed.legacy
    ? scryptSync(Buffer.from(pin), parsed.salt, 32, options(LEGACY_PIN_SCRYPT))
    : scryptSync(pinKey(pepper, pin), parsed.salt, 32, options(PIN_SCRYPT));
  return timingSafeEqual(actual, parsed.hash);
}

/** The only release 1 parameters accepted: the ones its hashPin always wrote. */
const LEGACY_PIN_SCRYPT = { N: 16384, r: 8, p: 1 } as const;

function parsePinHash(stored: string): { legacy: boolean; salt: Buffer; hash: Buffer } | null {
  if (!PIN_HASH_PATTERN.test(stored)) return null;
  const parts = stored.split('$');
  let salt: string | undefined;
  let hash: string | undefined;
  let legacy = false;
  if (parts.length === 3 && parts[0] === 'p2') [, salt, hash] = parts;
  else if (parts.length === 6 && parts[0] === 'scrypt' && parts[1] === '16384' && parts[2] === '8' && parts[3] === '1') {
    [, , , , salt, hash] = parts;
    legacy = true;
  } else return null;
  const saltBytes = Buffer.from(salt!, 'base64');
  const hashBytes = Buffer.from(hash!, 'base64');
  return { legacy, salt: saltBytes, hash: hashBytes };
}

function scryptAsync(password: Buffer, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, 32, options(cost), (err, key) => (err ? reject(err) : resolve(key))));
}
