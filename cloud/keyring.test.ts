import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileKeyring } from './keyring.js';
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

  it('refuses a damaged keyring file with a clear error', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"v": 2}');
    expect(() => new FileKeyring(file)).toThrow(/vault keyring .* is unreadable: unexpected layout/);
  });
});
