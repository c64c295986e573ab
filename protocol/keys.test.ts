import { createPublicKey, diffieHellman, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, newPrivateKey, privateKeyFromSeed, rawPublicKey } from './keys.js';

/*
 * Keys are made by importing 32 random bytes, not by key generation (see newPrivateKey for the
 * deadlock that avoids). These vectors prove the public key is derived from the private bytes
 * alone, exactly as the RFCs define it.
 */
const hex = (s: string) => Buffer.from(s, 'hex');

describe('keys from 32 private bytes', () => {
  it('derive the RFC 8032 Ed25519 public key and sign as RFC 8032 test 1 does', () => {
    const key = privateKeyFromSeed('ed25519', hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
    expect(rawPublicKey(key).toString('hex')).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(sign(null, Buffer.alloc(0), key).toString('hex')).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('derive the RFC 7748 X25519 public keys and agree on the RFC 7748 shared secret', () => {
    const alice = privateKeyFromSeed('x25519', hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    const bob = privateKeyFromSeed('x25519', hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
    expect(rawPublicKey(alice).toString('hex')).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(rawPublicKey(bob).toString('hex')).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = diffieHellman({ privateKey: alice, publicKey: createPublicKey(bob) });
    expect(shared.toString('hex')).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  });

  it('refuses private bytes of the wrong length', () => {
    expect(() => privateKeyFromSeed('ed25519', Buffer.alloc(31))).toThrow(/32 bytes/);
  });

  it('makes a different key every time, usable for its algorithm', () => {
    const a = generateKeyPair('ed25519');
    const b = generateKeyPair('ed25519');
    expect(a.keyId).not.toBe(b.keyId);
    expect(verify(null, Buffer.from('x'), a.publicKey, sign(null, Buffer.from('x'), a.privateKey))).toBe(true);
    expect(newPrivateKey('x25519').asymmetricKeyType).toBe('x25519');
  });
});
