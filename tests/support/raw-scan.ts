import { existsSync, readFileSync } from 'node:fs';

/**
 * Looks for leftovers of deleted data in raw files, as someone holding the disk would: is any
 * 32-byte run of a secret present anywhere in a file (database, -wal, -shm)? The files are
 * indexed by the 4 bytes at every 16th offset; any 32-byte run in a file covers one such
 * aligned key, so each offset of each secret is looked up and a hit is extended both ways to
 * measure the run it belongs to (a chance match of 4 bytes extends to nothing).
 */
export const WINDOW = 32;

/** The high-entropy part of a sealed envelope (body and signature): what only that envelope holds. */
export function envelopeSecret(envelope: Buffer): Buffer {
  return envelope.subarray(4 + 2 + envelope.readUInt16BE(4) + 4);
}

/** The -wal and -shm beside a database file, and the file itself, whichever exist. */
export function sqliteFiles(db: string): string[] {
  return [db, `${db}-wal`, `${db}-shm`].filter((f) => existsSync(f));
}

export interface Leftover {
  secret: number;
  file: string;
  offset: number;
  bytes: number;
}

export function findLeftovers(secrets: readonly Buffer[], files: readonly string[]): Leftover[] {
  const found: Leftover[] = [];
  for (const file of files) {
    const data = readFileSync(file);
    const index = new Map<number, number[]>();
    for (let o = 0; o + 4 <= data.length; o += 16) {
      const key = data.readUInt32LE(o);
      if (key === 0) continue; // zeroed space is what a wipe leaves; secrets are not zeros
      const at = index.get(key);
      if (!at) index.set(key, [o]);
      else if (at.length < 16) at.push(o);
    }
    secrets.forEach((secret, n) => {
      for (let p = 0; p + 4 <= secret.length; p++) {
        const at = index.get(secret.readUInt32LE(p));
        if (!at) continue;
        for (const a of at) {
          let back = 0;
          while (p - back > 0 && a - back > 0 && secret[p - back - 1] === data[a - back - 1]) back++;
          let fwd = 0;
          while (p + fwd < secret.length && a + fwd < data.length && secret[p + fwd] === data[a + fwd]) fwd++;
          if (back + fwd >= WINDOW) {
            found.push({ secret: n, file, offset: a - back, bytes: back + fwd });
            return;
          }
        }
      }
    });
  }
  return found;
}
