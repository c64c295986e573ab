import Database from 'better-sqlite3';
import { normalizeSerial } from '../protocol/cert-identity.js';
import { migrateGroupNamesToIds } from './access-groups.js';

/**
 * The cloud's SQLite database. WAL for concurrent readers, secure_delete so erased rows do
 * not linger in free pages, a busy timeout so two processes on this host (API and a `sweep`
 * run, two sweepers) wait for each other instead of failing. WAL needs shared memory, so the
 * file must be on a local disk, never on a network file system shared between hosts. The
 * schema is created idempotently at open.
 *
 * Nothing here holds a name: subjects, devices and photos are opaque ids; card numbers are
 * peppered hashes; photo bytes live encrypted in the vault, their wrapped keys in `photos`.
 */
export type Db = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tenants (
  id TEXT PRIMARY KEY,
  photo_retention_days INTEGER NOT NULL DEFAULT 90,
  punch_retention_days INTEGER NOT NULL DEFAULT 2557, -- seven years (settings.ts MAX_RETENTION_DAYS)
  leaver_photo_days INTEGER NOT NULL DEFAULT 0,
  recheck_face_exists INTEGER NOT NULL DEFAULT 1,
  recheck_similarity INTEGER NOT NULL DEFAULT 1,
  min_face_exists REAL NOT NULL DEFAULT 0.9,
  min_similarity REAL NOT NULL DEFAULT 0.9,
  contract_ended_at INTEGER,
  created_at INTEGER NOT NULL,
  time_zone TEXT NOT NULL DEFAULT 'UTC' -- IANA zone for timesheet day boundaries
);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  role TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS gateways (
  tenant TEXT NOT NULL,
  gateway TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  revocations_cursor INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER, -- a revoked gateway is refused by token and by certificate; a new token lifts it
  PRIMARY KEY (tenant, gateway)
);
CREATE TABLE IF NOT EXISTS devices (
  tenant TEXT NOT NULL,
  device TEXT NOT NULL,
  gateway TEXT NOT NULL,
  signing_public TEXT NOT NULL,
  sealing_public TEXT NOT NULL,
  cert_serial TEXT NOT NULL,
  presence TEXT,
  presence_at INTEGER,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, device)
);
CREATE TABLE IF NOT EXISTS revocations (
  tenant TEXT NOT NULL,
  serial TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (tenant, serial)
);
CREATE TABLE IF NOT EXISTS sequences (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS out_sequences (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  tenant TEXT NOT NULL,
  id TEXT NOT NULL,
  device TEXT NOT NULL,
  type TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  digest TEXT, -- SHA-256 of the envelope as stored (cloud/ingest.ts): a later copy is compared byte for byte
  PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_received ON events (tenant, received_at);
CREATE TABLE IF NOT EXISTS punches (
  tenant TEXT NOT NULL,
  event_id TEXT NOT NULL,
  device TEXT NOT NULL,
  subject TEXT,
  credential TEXT NOT NULL,
  action TEXT NOT NULL,
  decision TEXT NOT NULL,
  reasons TEXT NOT NULL,
  scores TEXT NOT NULL,
  model TEXT,
  door TEXT,
  wall_time INTEGER NOT NULL,
  clock_sync TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  photo_id TEXT,
  photo_dropped INTEGER NOT NULL,
  recheck_state TEXT NOT NULL,
  recheck_attempts INTEGER NOT NULL DEFAULT 0,
  recheck_next_at INTEGER,
  recheck_error TEXT,
  recheck_face_exists REAL,
  recheck_similarity REAL,
  recheck_engine TEXT,
  review_state TEXT NOT NULL DEFAULT 'none',
  review_reasons TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (tenant, event_id)
);
CREATE INDEX IF NOT EXISTS punches_subject ON punches (tenant, subject);
CREATE INDEX IF NOT EXISTS punches_photo ON punches (tenant, photo_id) WHERE photo_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS punches_received ON punches (tenant, received_at);
CREATE INDEX IF NOT EXISTS punches_recheck ON punches (recheck_state, recheck_next_at);
CREATE INDEX IF NOT EXISTS punches_wall ON punches (tenant, wall_time) WHERE subject IS NOT NULL;
CREATE TABLE IF NOT EXISTS alarms (
  tenant TEXT NOT NULL, event_id TEXT NOT NULL, device TEXT NOT NULL, alarm TEXT NOT NULL, door TEXT,
  at INTEGER NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (tenant, event_id)
);
-- What an admin must see and acknowledge (cloud/alarms.ts): tampered events, door alarms.
CREATE TABLE IF NOT EXISTS admin_alarms (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  kind TEXT NOT NULL,
  device TEXT,
  object_id TEXT,
  detail TEXT NOT NULL DEFAULT '{}',
  raised_at INTEGER NOT NULL,
  acknowledged_at INTEGER,
  acknowledged_by TEXT
);
CREATE INDEX IF NOT EXISTS admin_alarms_tenant ON admin_alarms (tenant, id);
CREATE TABLE IF NOT EXISTS rejections (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  gateway TEXT NOT NULL,
  device TEXT,
  event_id TEXT,
  code TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS photos (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT,
  kek_id TEXT NOT NULL,
  wrapped_key BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  claimed_by TEXT,
  claim_until INTEGER
);
CREATE INDEX IF NOT EXISTS photos_age ON photos (tenant, kind, created_at);
CREATE INDEX IF NOT EXISTS photos_subject ON photos (tenant, subject);
CREATE TABLE IF NOT EXISTS subjects (
  tenant TEXT NOT NULL,
  subject TEXT NOT NULL,
  card_hashes TEXT NOT NULL,
  pin_hash TEXT,
  access_groups TEXT NOT NULL,
  face_consent INTEGER NOT NULL,
  left_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, subject)
);
-- The access group directory (cloud/access-groups.ts): terminals hold the ids, names stay here.
CREATE TABLE IF NOT EXISTS access_groups (
  tenant TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, id),
  UNIQUE (tenant, name)
);
CREATE TABLE IF NOT EXISTS templates (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  subject TEXT NOT NULL,
  model TEXT NOT NULL,
  dims INTEGER NOT NULL,
  vector BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_subject ON templates (tenant, subject);
CREATE TABLE IF NOT EXISTS consents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  subject TEXT NOT NULL,
  state TEXT NOT NULL,
  actor TEXT NOT NULL,
  policy_version TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_subject ON consents (tenant, subject);
CREATE TABLE IF NOT EXISTS commands (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  command_id TEXT NOT NULL UNIQUE,
  tenant TEXT NOT NULL,
  device TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT,
  envelope BLOB,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  fetched_at INTEGER,
  delivered_at INTEGER,
  result_at INTEGER,
  result_reason TEXT
);
CREATE INDEX IF NOT EXISTS commands_device ON commands (tenant, device, seq);
CREATE INDEX IF NOT EXISTS commands_subject ON commands (tenant, subject);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object_kind TEXT NOT NULL,
  object_id TEXT,
  detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
`;

export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 10000');
  db.pragma('secure_delete = ON');
  // Retention sweeps touch rows spread over a large table: a bigger page cache keeps that off the disk.
  db.pragma('cache_size = -65536');
  db.pragma('foreign_keys = ON');
  db.exec(SCHEMA);
  migrate(db);
  return db;
}

/** Columns added after the first release: CREATE TABLE IF NOT EXISTS leaves older files without them. */
function migrate(db: Db): void {
  const tenantColumns = (db.prepare('PRAGMA table_info(tenants)').all() as Array<{ name: string }>).map((c) => c.name);
  if (!tenantColumns.includes('time_zone')) db.exec("ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC'");
  const eventColumns = (db.prepare('PRAGMA table_info(events)').all() as Array<{ name: string }>).map((c) => c.name);
  if (!eventColumns.includes('digest')) db.exec('ALTER TABLE events ADD COLUMN digest TEXT');
  const gatewayColumns = (db.prepare('PRAGMA table_info(gateways)').all() as Array<{ name: string }>).map((c) => c.name);
  if (!gatewayColumns.includes('revoked_at')) db.exec('ALTER TABLE gateways ADD COLUMN revoked_at INTEGER');
  // Serials are stored as normalizeSerial writes them (lowercase hex, no leading zeros), so a
  // revocation matches with one equality whatever spelling a certificate or a list used. Files
  // written before kept only the lowercase; a spelling that would collide is a duplicate.
  db.function('normalize_serial', { deterministic: true }, (serial) => normalizeSerial(String(serial)));
  db.transaction(() => {
    db.exec('UPDATE devices SET cert_serial = normalize_serial(cert_serial) WHERE cert_serial != normalize_serial(cert_serial)');
    db.exec('UPDATE OR IGNORE revocations SET serial = normalize_serial(serial) WHERE serial != normalize_serial(serial)');
    db.exec('DELETE FROM revocations WHERE serial != normalize_serial(serial)');
  })();
  // Subjects' access groups were stored (and sent to terminals) as the names admins typed:
  // each name gets an opaque id in the directory and the lists are rewritten to ids.
  migrateGroupNamesToIds(db, Date.now());
}

/**
 * After deleting photos (wrapped keys) or templates: copies the WAL into the database and
 * truncates it. secure_delete zeroes the freed pages in the database file, but until a
 * checkpoint the -wal file still holds earlier page images with the deleted rows in them.
 * Best effort: with a reader still on an older snapshot the WAL cannot be reset now, and the
 * next deletion's checkpoint (or SQLite's own) finishes it.
 */
export function checkpointWal(db: Db): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}

/** Creates the tenant row (with default retention) when a configured tenant is first seen. */
export function ensureTenant(db: Db, tenant: string, now: number): void {
  db.prepare('INSERT OR IGNORE INTO tenants (id, created_at) VALUES (?, ?)').run(tenant, now);
}
