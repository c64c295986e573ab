import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyPairFromPem, type KeyPair } from '../protocol/index.js';

/**
 * A tenant's keys as `clockface provision tenant init` writes them: the admin Ed25519 key
 * (signs commands and receipts), the cloud's X25519 sealing key (opens events) and the card
 * pepper. Read once at start; a missing or malformed file is a clear start-up error.
 */
export interface TenantKeys {
  tenant: string;
  adminSigning: KeyPair;
  cloudSealing: KeyPair;
  cardPepper: Buffer;
}

export function loadTenantKeys(tenant: string, keysDir: string): TenantKeys {
  const read = (name: string) => {
    try {
      return readFileSync(join(keysDir, name));
    } catch (err) {
      throw new Error(`tenant ${tenant}: cannot read ${join(keysDir, name)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const cardPepper = Buffer.from(read('card-pepper.key').toString('utf8').trim(), 'base64');
  if (cardPepper.length < 16) throw new Error(`tenant ${tenant}: card-pepper.key must hold at least 16 base64 bytes`);
  return {
    tenant,
    adminSigning: keyPairFromPem('ed25519', read('admin-signing.key')),
    cloudSealing: keyPairFromPem('x25519', read('cloud-sealing.key')),
    cardPepper,
  };
}
