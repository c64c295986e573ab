import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileKeyring, KeyDestroyedError } from './keyring.js';
import { tempDir } from './testing/fixtures.js';

/** The file keyring shared by several processes: one KEK per tenant, destruction seen by all. */
const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('FileKeyring', () => {
  it('shares one KEK per tenant between two users of the file, and a destroyed KEK stops working for both', () => {
    const file = join(dir, 'keyring.json');
    const a = new FileKeyring(file);
    const b = new FileKeyring(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const aad = Buffer.from('acme/p1');
    const dataKey = Buffer.alloc(32, 9);
    const fromA = a.wrap('acme', dataKey, aad);
    const fromB = b.wrap('acme', dataKey, aad);
    expect(fromB.kekId).toBe(fromA.kekId);
    expect(b.unwrap('acme', fromA.kekId, fromA.wrapped, aad).equals(dataKey)).toBe(true);
    expect(() => a.unwrap('acme', fromA.kekId, fromA.wrapped, Buffer.from('acme/other'))).toThrow();
    b.destroyTenant('acme');
    expect(() => a.unwrap('acme', fromA.kekId, fromA.wrapped, aad)).toThrow(/no key-encryption key/);
    expect(existsSync(`${file}.lock`)).toBe(false);
    expect(readFileSync(file, 'utf8')).not.toContain('acme');
  });

  it('never creates a new KEK for a tenant whose KEK was destroyed, in this process or another', () => {
    const file = join(dir, 'ended.json');
    const a = new FileKeyring(file);
    const aad = Buffer.from('initech/p1');
    a.wrap('initech', Buffer.alloc(32, 1), aad);
    a.wrap('globex', Buffer.alloc(32, 1), aad);
    a.destroyTenant('initech');
    expect(() => a.wrap('initech', Buffer.alloc(32, 2), aad)).toThrow(KeyDestroyedError);
    // Another process opening the file later sees the tombstone too.
    const b = new FileKeyring(file);
    expect(() => b.wrap('initech', Buffer.alloc(32, 2), aad)).toThrow(/destroyed \(contract ended\)/);
    expect(b.wrap('globex', Buffer.alloc(32, 2), aad).kekId).toMatch(/^[0-9a-f]{16}$/);
    expect(b.wrap('newco', Buffer.alloc(32, 2), aad).kekId).toMatch(/^[0-9a-f]{16}$/);
    expect(a.destroyTenant('initech')).toBe(false); // repeatable, and says it was already done
    expect(readFileSync(file, 'utf8')).not.toContain('initech');
  });

  it('refuses a damaged keyring file with a clear error', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"v": 2}');
    expect(() => new FileKeyring(file)).toThrow(/vault keyring .* is unreadable: unexpected layout/);
  });
});
