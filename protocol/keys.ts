import { createHash, createPrivateKey, createPublicKey, KeyObject, randomBytes } from 'node:crypto';
import { ProtocolError } from './errors.js';

/**
 * Key handling for the envelope: Ed25519 for signatures, X25519 for sealing. Public keys
 * travel as 32 raw bytes (base64) and are named by a key id: the first 8 bytes of
 * SHA-256(raw public key), hex. Key ids carry no personal data and let a receiver pick the
 * right key during a rotation.
 */
export type KeyAlgorithm = 'ed25519' | 'x25519';

export interface KeyPair {
  algorithm: KeyAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Raw 32-byte public key. */
  publicRaw: Buffer;
  keyId: string;
}

/** JWK curve names. JWK import/export is ~10x faster than DER in Node, which matters per message. */
const JWK_CURVE: Record<KeyAlgorithm, string> = { ed25519: 'Ed25519', x25519: 'X25519' };

const rawCache = new WeakMap<KeyObject, Buffer>();

export function rawPublicKey(key: KeyObject): Buffer {
  let raw = rawCache.get(key);
  if (!raw) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    raw = Buffer.from(pub.export({ format: 'jwk' }).x ?? '', 'base64url');
    rawCache.set(key, raw);
  }
  return raw;
}

export function keyIdOf(publicRaw: Uint8Array): string {
  return createHash('sha256').update(publicRaw).digest('hex').slice(0, 16);
}

export function publicKeyFromRaw(algorithm: KeyAlgorithm, raw: Uint8Array | string): KeyObject {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'base64') : Buffer.from(raw);
  if (bytes.length !== 32) throw new ProtocolError('key.invalid', `${algorithm} public key must be 32 bytes`);
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: JWK_CURVE[algorithm], x: bytes.toString('base64url') }, format: 'jwk' });
  } catch {
    throw new ProtocolError('key.invalid', `not a valid ${algorithm} public key`);
  }
}

function toPair(algorithm: KeyAlgorithm, privateKey: KeyObject): KeyPair {
  if (privateKey.asymmetricKeyType !== algorithm) {
    throw new ProtocolError('key.invalid', `expected a ${algorithm} key, got ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  }
  const publicKey = createPublicKey(privateKey);
  const publicRaw = rawPublicKey(publicKey);
  return { algorithm, privateKey, publicKey, publicRaw, keyId: keyIdOf(publicRaw) };
}

/**
 * A new private key: 32 random bytes (an Ed25519 seed or an X25519 scalar) imported as a JWK.
 *
 * Not generateKeyPairSync: on Node 20 a key straight from key generation can deadlock the
 * process. Exporting it as JWK holds the key's mutex while allocating strings; a garbage
 * collection in that window runs the destructor of the finished generation job, which takes the
 * same mutex. A test sealing 3,000 events hung CI for 90 minutes this way, and 30,000 seals hung
 * one run in five here (`gdb`: ~KeyGenJob waiting in uv_mutex_lock under ExportJWKEdKey). An
 * imported key has no generation job. Node's JWK import takes a private OKP key from `d` alone
 * (`x` must be a string but is not read); the public key is derived from `d` (keys.test.ts
 * checks the RFC 7748 and RFC 8032 vectors).
 */
export function newPrivateKey(algorithm: KeyAlgorithm): KeyObject {
  return privateKeyFromSeed(algorithm, randomBytes(32));
}

/** The private key whose 32 raw bytes are `seed` (RFC 8032 secret key, RFC 7748 scalar). */
export function privateKeyFromSeed(algorithm: KeyAlgorithm, seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new ProtocolError('key.invalid', `${algorithm} private key must be 32 bytes`);
  const d = Buffer.from(seed).toString('base64url');
  return createPrivateKey({ key: { kty: 'OKP', crv: JWK_CURVE[algorithm], d, x: '' }, format: 'jwk' });
}

export function generateKeyPair(algorithm: KeyAlgorithm): KeyPair {
  return toPair(algorithm, newPrivateKey(algorithm));
}

/** PKCS#8 PEM for files written 0600 by provisioning. */
export function privateKeyToPem(pair: KeyPair): string {
  return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function keyPairFromPem(algorithm: KeyAlgorithm, pem: string | Buffer): KeyPair {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new ProtocolError('key.invalid', `could not read ${algorithm} private key (PEM/PKCS#8 expected)`);
  }
  return toPair(algorithm, key);
}

/** A public key as receivers store it: algorithm, id and raw bytes. */
export interface PublicKeyRef {
  keyId: string;
  key: KeyObject;
}

export function publicKeyRef(algorithm: KeyAlgorithm, raw: Uint8Array | string): PublicKeyRef {
  const key = publicKeyFromRaw(algorithm, raw);
  return { keyId: keyIdOf(rawPublicKey(key)), key };
}
