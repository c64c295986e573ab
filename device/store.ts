import Database from 'better-sqlite3';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SequenceStore } from '../protocol/index.js';
import type { Logger } from '../common/log.js';
import { openWipingConnection, wipeDeleted, WipeSchedule, type WipeOutcome } from '../common/wipe.js';

/*
 * The terminal's local store: one SQLite file in WAL mode. Holds only opaque subject ids,
 * keyed card hashes, PIN hashes, encrypted templates, replay sequences and the outbox of
 * sealed events. Nothing personal beyond templates and hashes ever lands here.
 */

export interface StoredSubject {
  subject: string;
  cardHashes: string[];
  pinHash: string | null;
  faceConsent: boolean;
  accessGroups: string[];
  suspended: boolean;
}

export interface StoredTemplate {
  model: string;
  vector: Float32Array;
}

export interface OutboxLimits {
  maxEvents: number;
  maxBytes: number;
}

export interface OutboxEntry {
  id: number;
  eventId: string;
  topic: string;
  envelope: Buffer;
  hasPhoto: boolean;
}

export interface NewOutboxEvent {
  eventId: string;
  topic: string;
  envelope: Buffer;
  /** The same event (same id and sequence) sealed without its photo; null when it has none. */
  slim: Buffer | null;
  subject: string | null;
  isPunch: boolean;
}

const MIGRATIONS: string[] = [
  `CREATE TABLE subjects (
     subject TEXT PRIMARY KEY,
     pin_hash TEXT,
     face_consent INTEGER NOT NULL,
     access_groups TEXT NOT NULL,
     suspended INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE card_hashes (hash TEXT PRIMARY KEY, subject TEXT NOT NULL REFERENCES subjects(subject) ON DELETE CASCADE);
   CREATE TABLE templates (
     subject TEXT NOT NULL REFERENCES subjects(subject) ON DELETE CASCADE,
     model TEXT NOT NULL,
     sealed BLOB NOT NULL
   );
   CREATE INDEX templates_subject ON templates(subject);
   CREATE TABLE sequences (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL);
   CREATE TABLE outbox (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     event_id TEXT NOT NULL UNIQUE,
     topic TEXT NOT NULL,
     envelope BLOB NOT NULL,
     -- the same event sealed without its photo: what is kept when photos must be shed
     slim BLOB,
     subject TEXT,
     has_photo INTEGER NOT NULL,
     is_punch INTEGER NOT NULL
   );
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
];

export interface DeviceStoreOptions {
  /**
   * How long a deleted copy (an event the cloud has a receipt for, a shed photo, a removed
   * subject's template and card hashes) may stay in the store's files, in ms (default 60 s).
   */
  wipeWithinMs?: number;
  log?: Logger;
}

export class DeviceStore implements SequenceStore {
  readonly db: Database.Database;
  /**
   * Wipes deleted copies from the file, its free pages and the WAL within the bound
   * (common/wipe.ts): every delete below marks it, and the wipe runs on this connection.
   */
  readonly wiper: WipeSchedule;
  private readonly dataKey: Buffer;
  private readonly subjectListeners = new Set<(subject: string | null) => void>();

  /**
   * Called after every change to a subject or its templates (enroll, update, consent change,
   * remove, erase; null: many subjects at once, as a re-enroll campaign). The in-memory face
   * index follows the store through this, whatever path wrote it.
   */
  onSubjectChange(listener: (subject: string | null) => void): () => void {
    this.subjectListeners.add(listener);
    return () => this.subjectListeners.delete(listener);
  }

  private changed(subject: string | null): void {
    for (const l of this.subjectListeners) l(subject);
  }

  /** dataKey: 32 bytes that encrypt templates at rest (AES-256-GCM). */
  constructor(file: string, dataKey: Buffer, opts: DeviceStoreOptions = {}) {
    if (dataKey.length !== 32) throw new Error('device data key must be 32 bytes');
    this.dataKey = dataKey;
    // The one place the terminal opens its file: WAL and secure_delete (common/wipe.ts).
    this.db = openWipingConnection(() => new Database(file));
    // FULL: an outbox row must survive power loss before the relay fires.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
    this.wiper = new WipeSchedule({ boundMs: opts.wipeWithinMs ?? 60_000, name: 'terminal store', wipe: () => this.wipeNow(), ...(opts.log ? { log: opts.log } : {}) });
    // What a previous run deleted may still be in the files (a power cut before its wipe).
    this.wiper.deleted();
  }

  /** One wipe of deleted copies, now, on this connection (the schedule calls it; tests too). */
  wipeNow(): WipeOutcome {
    return wipeDeleted(this.db);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(`store schema version ${version} is newer than this software (${MIGRATIONS.length})`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** Wipes what was deleted since the last wipe, then closes the file. */
  close(): void {
    if (!this.db.open) return;
    void this.wiper.close();
    if (this.wiper.oldestUnwipedAgeSeconds() > 0) {
      try {
        this.wipeNow();
      } catch {
        // Closing must not fail: the next start wipes (the constructor marks the store dirty).
      }
    }
    this.db.close();
  }

  // --- subjects ---------------------------------------------------------------------------

  upsertSubject(s: StoredSubject, templates: StoredTemplate[] | null): void {
    let deleted = 0;
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO subjects (subject, pin_hash, face_consent, access_groups, suspended) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(subject) DO UPDATE SET pin_hash=excluded.pin_hash, face_consent=excluded.face_consent,
             access_groups=excluded.access_groups, suspended=excluded.suspended`,
        )
        .run(s.subject, s.pinHash, s.faceConsent ? 1 : 0, JSON.stringify(s.accessGroups), s.suspended ? 1 : 0);
      deleted += this.db.prepare('DELETE FROM card_hashes WHERE subject = ?').run(s.subject).changes;
      const addCard = this.db.prepare('INSERT OR REPLACE INTO card_hashes (hash, subject) VALUES (?, ?)');
      for (const h of s.cardHashes) addCard.run(h, s.subject);
      // Without consent no template may stay on the terminal.
      if (templates !== null || !s.faceConsent) {
        deleted += this.db.prepare('DELETE FROM templates WHERE subject = ?').run(s.subject).changes;
        if (s.faceConsent && templates) {
          const add = this.db.prepare('INSERT INTO templates (subject, model, sealed) VALUES (?, ?, ?)');
          for (const t of templates) add.run(s.subject, t.model, this.encrypt(t.vector));
        }
      }
    })();
    // Replaced templates and card hashes (consent withdrawn, a new reference) go from the disk too.
    if (deleted > 0) this.wiper.deleted();
    this.changed(s.subject);
  }

  removeSubject(subject: string): boolean {
    const removed = this.db.prepare('DELETE FROM subjects WHERE subject = ?').run(subject).changes > 0;
    if (removed) this.wiper.deleted();
    this.changed(subject);
    return removed;
  }

  getSubject(subject: string): StoredSubject | undefined {
    const row = this.db.prepare('SELECT * FROM subjects WHERE subject = ?').get(subject) as SubjectRow | undefined;
    return row ? this.toSubject(row) : undefined;
  }

  subjectByCardHash(hash: string): StoredSubject | undefined {
    const row = this.db
      .prepare('SELECT s.* FROM card_hashes c JOIN subjects s ON s.subject = c.subject WHERE c.hash = ?')
      .get(hash) as SubjectRow | undefined;
    return row ? this.toSubject(row) : undefined;
  }

  // Credential upgrades (device/credential-check.ts): a hash made by an older release is
  // replaced in place by its current form; the subject's record is otherwise untouched.
  /** Every stored card hash (to find those an older release made). */
  cardHashes(): string[] {
    return (this.db.prepare('SELECT hash FROM card_hashes').all() as { hash: string }[]).map((r) => r.hash);
  }

  /** Replaces one card hash by another for the same subject; false when `from` is gone (removed or replaced meanwhile). */
  replaceCardHash(from: string, to: string): boolean {
    return this.db.transaction(() => {
      if (this.db.prepare('UPDATE OR IGNORE card_hashes SET hash = ? WHERE hash = ?').run(to, from).changes > 0) return true;
      // `to` is there already (both forms were pushed): the older one only lingers.
      return this.db.prepare('DELETE FROM card_hashes WHERE hash = ? AND subject = (SELECT subject FROM card_hashes WHERE hash = ?)').run(from, to).changes > 0;
    })();
  }

  /** Replaces a subject's PIN hash, only if it is still `from` (an update pushed meanwhile wins). */
  replacePinHash(subject: string, from: string, to: string): boolean {
    return this.db.prepare('UPDATE subjects SET pin_hash = ? WHERE subject = ? AND pin_hash = ?').run(to, subject, from).changes > 0;
  }

  /** Re-enroll campaign: templates of other models are dropped; returns the subjects affected. */
  dropTemplatesNotOfModel(model: string, subjects: readonly string[] | null): number {
    const rows = this.db.prepare('SELECT DISTINCT subject FROM templates WHERE model != ?').all(model) as { subject: string }[];
    const affected = rows.map((r) => r.subject).filter((s) => subjects === null || subjects.includes(s));
    const del = this.db.prepare('DELETE FROM templates WHERE subject = ? AND model != ?');
    this.db.transaction(() => affected.forEach((s) => del.run(s, model)))();
    if (affected.length > 0) this.wiper.deleted();
    this.changed(null);
    return affected.length;
  }

  subjectCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM subjects').get() as { n: number }).n;
  }

  templatesOf(subject: string): StoredTemplate[] {
    const rows = this.db.prepare('SELECT model, sealed FROM templates WHERE subject = ?').all(subject) as TemplateRow[];
    return rows.map((r) => ({ model: r.model, vector: this.decrypt(r.sealed) }));
  }

  /** Every template of every consenting subject, for 1:N search. */
  allTemplates(): { subject: string; template: StoredTemplate }[] {
    const rows = this.db
      .prepare(
        'SELECT t.subject, t.model, t.sealed FROM templates t JOIN subjects s ON s.subject = t.subject WHERE s.face_consent = 1 AND s.suspended = 0',
      )
      .all() as (TemplateRow & { subject: string })[];
    return rows.map((r) => ({ subject: r.subject, template: { model: r.model, vector: this.decrypt(r.sealed) } }));
  }

  private toSubject(row: SubjectRow): StoredSubject {
    const cards = this.db.prepare('SELECT hash FROM card_hashes WHERE subject = ?').all(row.subject) as { hash: string }[];
    return {
      subject: row.subject,
      cardHashes: cards.map((c) => c.hash),
      pinHash: row.pin_hash,
      faceConsent: row.face_consent === 1,
      accessGroups: JSON.parse(row.access_groups) as string[],
      suspended: row.suspended === 1,
    };
  }

  private encrypt(vector: Float32Array): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.dataKey, iv);
    const plain = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]);
  }

  private decrypt(sealed: Buffer): Float32Array {
    const decipher = createDecipheriv('aes-256-gcm', this.dataKey, sealed.subarray(0, 12));
    decipher.setAuthTag(sealed.subarray(12, 28));
    const plain = Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
    const copy = new Uint8Array(plain); // aligned copy for Float32Array
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  }

  // --- replay sequences (SequenceStore) -----------------------------------------------------

  lastSequence(stream: string): number | undefined {
    const row = this.db.prepare('SELECT seq FROM sequences WHERE stream = ?').get(stream) as { seq: number } | undefined;
    return row?.seq;
  }

  recordSequence(stream: string, seq: number): void {
    this.db
      .prepare('INSERT INTO sequences (stream, seq) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET seq = excluded.seq')
      .run(stream, seq);
  }

  /** Next sequence for this terminal's own outgoing stream; durable so a restart never reuses one. */
  nextOwnSequence(stream: string): number {
    return this.db.transaction(() => {
      const next = (this.lastSequence(stream) ?? 0) + 1;
      this.recordSequence(stream, next);
      return next;
    })();
  }

  // --- settings ------------------------------------------------------------------------------

  getSetting(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setSetting(key: string, value: string): void {
    this.db
      .prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(key, value);
  }

  // --- outbox --------------------------------------------------------------------------------

  /**
   * Appends a sealed event durably, then enforces the bounds: first photos are shed (oldest
   * first: the event is swapped for its photo-less twin, which records photoDropped), then
   * non-punch events; punch records are never dropped. Returns the ids that lost their photo
   * or were dropped.
   */
  enqueue(e: NewOutboxEvent, limits: OutboxLimits): { photosDropped: string[]; eventsDropped: string[] } {
    const shed = this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO outbox (event_id, topic, envelope, slim, subject, has_photo, is_punch) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(e.eventId, e.topic, e.envelope, e.slim, e.subject, e.slim ? 1 : 0, e.isPunch ? 1 : 0);
      const photosDropped: string[] = [];
      const eventsDropped: string[] = [];
      const over = () => {
        const s = this.outboxSize();
        return s.count > limits.maxEvents || s.bytes > limits.maxBytes;
      };
      while (over()) {
        const photo = this.db.prepare('SELECT id, event_id FROM outbox WHERE has_photo = 1 ORDER BY id LIMIT 1').get() as
          | { id: number; event_id: string }
          | undefined;
        if (photo) {
          this.dropPhoto(photo.id);
          photosDropped.push(photo.event_id);
          continue;
        }
        const other = this.db.prepare('SELECT id, event_id FROM outbox WHERE is_punch = 0 ORDER BY id LIMIT 1').get() as
          | { id: number; event_id: string }
          | undefined;
        if (!other) break; // only punches left: they are kept even beyond the bound
        this.db.prepare('DELETE FROM outbox WHERE id = ?').run(other.id);
        eventsDropped.push(other.event_id);
      }
      return { photosDropped, eventsDropped };
    })();
    if (shed.photosDropped.length + shed.eventsDropped.length > 0) this.wiper.deleted();
    return shed;
  }

  /** Oldest first, the order the link publishes in. */
  pending(limit: number, afterId = 0): OutboxEntry[] {
    const rows = this.db
      .prepare('SELECT id, event_id, topic, envelope, has_photo FROM outbox WHERE id > ? ORDER BY id LIMIT ?')
      .all(afterId, limit) as OutboxRow[];
    return rows.map(toEntry);
  }

  /** Deletes acknowledged events; returns how many were actually removed (duplicates count 0). */
  acknowledge(eventIds: readonly string[]): number {
    const del = this.db.prepare('DELETE FROM outbox WHERE event_id = ?');
    const removed = this.db.transaction(() => eventIds.reduce((n, id) => n + del.run(id).changes, 0))();
    // A delivered event (sealed, maybe with a photo) leaves the disk within the bound, not just the table.
    if (removed > 0) this.wiper.deleted();
    return removed;
  }

  private dropPhoto(id: number): void {
    this.db.prepare('UPDATE outbox SET envelope = slim, slim = NULL, has_photo = 0 WHERE id = ? AND has_photo = 1').run(id);
  }

  /** Erase: queued events of this subject lose their photos before they ever leave. */
  dropPhotosOf(subject: string): number {
    const dropped = this.db
      .prepare('UPDATE outbox SET envelope = slim, slim = NULL, has_photo = 0 WHERE subject = ? AND has_photo = 1')
      .run(subject).changes;
    if (dropped > 0) this.wiper.deleted();
    return dropped;
  }

  outboxSize(): { count: number; bytes: number } {
    const row = this.db.prepare('SELECT COUNT(*) AS count, COALESCE(SUM(LENGTH(envelope)), 0) AS bytes FROM outbox').get() as {
      count: number;
      bytes: number;
    };
    return row;
  }
}

interface SubjectRow {
  subject: string;
  pin_hash: string | null;
  face_consent: number;
  access_groups: string;
  suspended: number;
}
interface TemplateRow {
  model: string;
  sealed: Buffer;
}
interface OutboxRow {
  id: number;
  event_id: string;
  topic: string;
  envelope: Buffer;
  has_photo: number;
}

function toEntry(r: OutboxRow): OutboxEntry {
  return { id: r.id, eventId: r.event_id, topic: r.topic, envelope: r.envelope, hasPhoto: r.has_photo === 1 };
}
