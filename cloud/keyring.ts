import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';

/**
 * Key-encryption keys (KEKs), one per tenant, that wrap each photo's data key. The default
 * keyring is a JSON file (0600) beside the database; an AWS KMS adapter would implement the
 * same interface with GenerateDataKey/Decrypt. Destroying a tenant's KEK (contract end) makes
 * every data key it wrapped, and so every photo, unreadable, and is final: the keyring keeps a
 * tombstone and never creates a new KEK for that tenant, so nothing can be stored for an
 * ended tenant by accident.
 */
export interface Keyring {
  /** Wraps a data key for a tenant; returns the KEK id used and the wrapped bytes. */
  wrap(tenant: string, dataKey: Buffer, aad: Buffer): { kekId: string; wrapped: Buffer };
  unwrap(tenant: string, kekId: string, wrapped: Buffer, aad: Buffer): Buffer;
  /** Destroys the tenant's KEK for good (later wraps for it throw); false when that was already done. */
  destroyTenant(tenant: string): boolean;
}

interface KeyringFile {
  v: 1;
  tenants: Record<string, { active: string; keys: Record<string, string> }>;
  /** SHA-256 of each tenant id whose KEK was destroyed (contract end); absent in older files. */
  destroyed?: string[];
}

export class KeyDestroyedError extends Error {
  override readonly name = 'KeyDestroyedError';
}

/** The tombstone names the tenant by hash: the keyring file need not say who its customers were. */
const tombstone = (tenant: string) => createHash('sha256').update(`clockface-kek-tombstone:${tenant}`).digest('hex');

export class FileKeyring implements Keyring {
  private data: KeyringFile;
  constructor(private readonly file: string) {
    this.data = { v: 1, tenants: {} };
    this.withLock(() => {
      if (existsSync(file)) this.reload();
      else this.save();
    });
  }

  /** The file's identity when last read; a change means another process wrote it. */
  private seen = '';

  private stamp(): string {
    const st = statSync(this.file, { throwIfNoEntry: false });
    return st ? `${st.ino}:${st.mtimeMs}:${st.size}` : '';
  }

  private reload(): void {
    this.seen = this.stamp();
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as KeyringFile;
      if (data.v !== 1 || typeof data.tenants !== 'object' || data.tenants === null) throw new Error('unexpected layout');
      this.data = data;
    } catch (err) {
      throw new Error(`vault keyring ${this.file} is unreadable: ${(err as Error).message}`);
    }
  }

  /**
   * Several processes on the host may use one keyring: changes happen under
   * an exclusive lock file and after re-reading, so no process overwrites a key another created.
   */
  private withLock<T>(fn: () => T): T {
    const lock = `${this.file}.lock`;
    const deadline = Date.now() + 10_000;
    let fd: number | undefined;
    while (fd === undefined) {
      try {
        fd = openSync(lock, 'wx', 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) {
          throw new Error(`vault keyring lock ${lock} could not be taken: ${(err as Error).message}`);
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
    try {
      return fn();
    } finally {
      closeSync(fd);
      unlinkSync(lock);
    }
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
    this.seen = this.stamp();
  }

  private kek(tenant: string, kekId?: string): { id: string; key: Buffer } {
    // A key destroyed by another process (contract end) must stop working here too.
    if (this.stamp() !== this.seen) this.reload();
    let entry = this.data.tenants[tenant];
    if (!entry || (kekId && !entry.keys[kekId])) {
      // Another process may have created or rotated it since we read the file.
      this.reload();
      entry = this.data.tenants[tenant];
    }
    if (!entry) {
      if (kekId) throw new Error(`no key-encryption key for tenant ${tenant}`);
      entry = this.withLock(() => {
        this.reload();
        let e = this.data.tenants[tenant];
        if (!e && this.data.destroyed?.includes(tombstone(tenant))) {
          throw new KeyDestroyedError(`the key-encryption key of tenant ${tenant} was destroyed (contract ended); no new key is created`);
        }
        if (!e) {
          const id = randomBytes(8).toString('hex');
          e = { active: id, keys: { [id]: randomBytes(32).toString('base64') } };
          this.data.tenants[tenant] = e;
          this.save();
        }
        return e;
      });
    }
    const id = kekId ?? entry.active;
    const key = entry.keys[id];
    if (!key) throw new Error(`key-encryption key ${id} of tenant ${tenant} is gone`);
    return { id, key: Buffer.from(key, 'base64') };
  }

  wrap(tenant: string, dataKey: Buffer, aad: Buffer): { kekId: string; wrapped: Buffer } {
    const { id, key } = this.kek(tenant);
    return { kekId: id, wrapped: aesGcmEncrypt(key, dataKey, aad) };
  }

  unwrap(tenant: string, kekId: string, wrapped: Buffer, aad: Buffer): Buffer {
    return aesGcmDecrypt(this.kek(tenant, kekId).key, wrapped, aad);
  }

  destroyTenant(tenant: string): boolean {
    return this.withLock(() => {
      this.reload();
      const mark = tombstone(tenant);
      if (!this.data.tenants[tenant] && this.data.destroyed?.includes(mark)) return false;
      delete this.data.tenants[tenant];
      this.data.destroyed = [...new Set([...(this.data.destroyed ?? []), mark])];
      this.save();
      return true;
    });
  }
}

/** AES-256-GCM: nonce (12) | ciphertext | tag (16). */
export function aesGcmEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([iv, ct, c.getAuthTag()]);
}

export function aesGcmDecrypt(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < 28) throw new Error('ciphertext too short');
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
}
