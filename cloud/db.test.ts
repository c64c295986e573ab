import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from './db.js';
import { getSettings } from './settings.js';
import { tempDir } from './testing/fixtures.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('database migration', () => {
  it('adds the tenant time zone (default UTC) to a database written before it existed, keeping its rows', () => {
    const file = join(dir, 'old.db');
    const old = new Database(file);
    old.exec(`CREATE TABLE tenants (id TEXT PRIMARY KEY, photo_retention_days INTEGER NOT NULL DEFAULT 90, punch_retention_days INTEGER NOT NULL DEFAULT 2557,
      leaver_photo_days INTEGER NOT NULL DEFAULT 0, recheck_face_exists INTEGER NOT NULL DEFAULT 1, recheck_similarity INTEGER NOT NULL DEFAULT 1,
      min_face_exists REAL NOT NULL DEFAULT 0.9, min_similarity REAL NOT NULL DEFAULT 0.9, contract_ended_at INTEGER, created_at INTEGER NOT NULL)`);
    old.prepare("INSERT INTO tenants (id, photo_retention_days, created_at) VALUES ('acme', 30, 1)").run();
    old.close();
    const db = openDatabase(file);
    try {
      expect(getSettings(db, 'acme')).toMatchObject({ photoRetentionDays: 30, timeZone: 'UTC' });
    } finally {
      db.close();
    }
    // Opening again is a no-op.
    openDatabase(file).close();
  });

  it('stores certificate serials normalized: older lowercase-only spellings are rewritten, duplicates merged', () => {
    const file = join(dir, 'serials.db');
    const first = openDatabase(file);
    first.prepare("INSERT INTO devices (tenant, device, gateway, signing_public, sealing_public, cert_serial, created_at) VALUES ('acme', 'door-1', 'gw', 's', 'e', '00ab12', 1)").run();
    const revoke = first.prepare("INSERT INTO revocations (tenant, serial, version) VALUES ('acme', ?, ?)");
    revoke.run('00ab12', 1);
    revoke.run('ab12', 2); // the same serial in another spelling
    revoke.run('0cd', 2);
    revoke.run('00', 3);
    first.close();
    const db = openDatabase(file);
    try {
      expect(db.prepare("SELECT cert_serial FROM devices WHERE device = 'door-1'").pluck().get()).toBe('ab12');
      expect(db.prepare('SELECT serial FROM revocations ORDER BY serial').pluck().all()).toEqual(['0', 'ab12', 'cd']);
    } finally {
      db.close();
    }
  });
});
