import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { copyKey } from '../protocol/envelope.js';
import { openWipingConnection, wipeDeleted, type WipeOutcome } from '../common/wipe.js';

/**
 * The gateway's durable state in one SQLite file (WAL):
 *  - events: sealed event envelopes waiting to be forwarded, in arrival order;
 *  - outbound: command and receipt envelopes for devices, kept until the device PUBACKs them
 *    or they expire (so an offline terminal gets them after a gateway restart);
 *  - delivered: command deliveries not yet reported to the cloud;
 *  - presence: online/offline changes not yet reported to the cloud;
 *  - dead_letters: events the cloud refused on their own as malformed (a 400 for a batch of
 *    one), parked with the cloud's reason so they stop blocking the queue and stay for review;
 *  - kv: the command cursor and the revocation list.
 * The gateway cannot read the envelopes it stores: it keeps bytes and routing headers only.
 */
export type OutboundChannel = 'cmd' | 'ack';

export interface QueuedEvent {
  seq: number;
  id: string;
  device: string;
  envelope: Buffer;
  receivedAt: number;
}

export interface OutboundMessage {
  seq: number;
  id: string;
  device: string;
  channel: OutboundChannel;
  envelope: Buffer;
  expiresAt: number | null;
}

export interface PresenceChange {
  seq: number;
  device: string;
  state: 'online' | 'offline';
  at: number;
}

export interface StoreOptions {
  dataDir: string;
  /** "full" fsyncs each commit; "normal" relies on the WAL (crash-safe, not power-loss-safe). */
  durability?: 'full' | 'normal';
  /** A quota on the database file (SQLite max_page_count): writes past it fail as on a full disk. */
  maxBytes?: number;
}

const INSERT_CHUNK = 64;

export interface EventRow {
  id: string;
  device: string;
  envelope: Buffer;
}

/**
 * Opens a connection to the store file with the gateway's settings. Every connection to the
 * file (the store's and the event writer's on its worker thread) goes through here, because
 * synchronous, busy_timeout, secure_delete and the quota (max_page_count) are per connection
 * in SQLite. secure_delete (common/wipe.ts): a delivered event, an expired or delivered command
 * is zeroed where it lay when its row is deleted, whichever connection deletes it.
 */
export function openStoreConnection(path: string, opts: Pick<StoreOptions, 'durability' | 'maxBytes'>): Database.Database {
  const db = openWipingConnection(() => new Database(path));
  db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
  // Two connections write to the file (this one and the event writer's): a writer waits for
  // the other instead of failing with SQLITE_BUSY.
  db.pragma('busy_timeout = 5000');
  if (opts.maxBytes !== undefined) {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(opts.maxBytes / pageSize))}`);
  }
  return db;
}

/**
 * A second copy of a queued event with other bytes under the same id. The gateway cannot
 * verify a device's signature, so it cannot tell a tampered copy from the device's own
 * photo-less re-seal: it queues the copy under its copy key (protocol copyKey) for the cloud
 * to judge, and reports it so the broker logs and counts it.
 */
export interface EventCopy {
  id: string;
  device: string;
  key: string;
}

/**
 * The group-commit insert: events in one IMMEDIATE transaction (the write lock taken up
 * front, so the busy timeout applies rather than a SQLITE_BUSY on upgrade), as multi-row
 * inserts of INSERT_CHUNK rows (one statement step per chunk instead of per event).
 *
 * An id already queued is ignored when its bytes are the same (a retry); with other bytes it
 * is queued again under its copy key and returned. Only a chunk that inserted fewer rows than
 * it carried is read back, so the common path costs nothing more.
 */
export function eventInserter(db: Database.Database): (events: readonly EventRow[], now: number) => EventCopy[] {
  const one = db.prepare('INSERT OR IGNORE INTO events (id, device, envelope, received_at) VALUES (?, ?, ?, ?)');
  const chunk = db.prepare(`INSERT OR IGNORE INTO events (id, device, envelope, received_at) VALUES ${Array(INSERT_CHUNK).fill('(?, ?, ?, ?)').join(', ')}`);
  const queued = db.prepare('SELECT envelope FROM events WHERE id = ?').pluck();
  const findCopies = (events: readonly EventRow[], from: number, to: number, now: number, copies: EventCopy[]) => {
    for (let j = from; j < to; j++) {
      const e = events[j]!;
      const held = queued.get(e.id) as Buffer | undefined;
      if (!held || held.equals(e.envelope)) continue;
      const key = copyKey(e.id, e.envelope);
      if (one.run(key, e.device, e.envelope, now).changes > 0) copies.push({ id: e.id, device: e.device, key });
    }
  };
  const insert = db.transaction((events: readonly EventRow[], now: number) => {
    const copies: EventCopy[] = [];
    let i = 0;
    for (; i + INSERT_CHUNK <= events.length; i += INSERT_CHUNK) {
      const args: unknown[] = [];
      for (let j = i; j < i + INSERT_CHUNK; j++) args.push(events[j]!.id, events[j]!.device, events[j]!.envelope, now);
      if (chunk.run(args).changes < INSERT_CHUNK) findCopies(events, i, i + INSERT_CHUNK, now, copies);
    }
    for (; i < events.length; i++) {
      if (one.run(events[i]!.id, events[i]!.device, events[i]!.envelope, now).changes === 0) findCopies(events, i, i + 1, now, copies);
    }
    return copies;
  });
  return (events, now) => insert.immediate(events, now);
}

/**
 * The queue's oldest events after seq `after` (0: from the head), in arrival order, read one
 * row at a time: a reader that stops early (gateway/forwarder.ts withinRequestLimit) never
 * reads the rest.
 */
export function eventQueue(db: Database.Database): (limit: number, after?: number) => IterableIterator<QueuedEvent> {
  const next = db.prepare('SELECT seq, id, device, envelope, received_at AS receivedAt FROM events WHERE seq > ? ORDER BY seq LIMIT ?');
  return (limit, after = 0) => next.iterate(after, limit) as IterableIterator<QueuedEvent>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  device TEXT NOT NULL,
  envelope BLOB NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbound (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  device TEXT NOT NULL,
  channel TEXT NOT NULL CHECK (channel IN ('cmd', 'ack')),
  envelope BLOB NOT NULL,
  expires_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbound_device ON outbound (device, seq);
CREATE TABLE IF NOT EXISTS delivered (command_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS presence (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  device TEXT NOT NULL,
  state TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
  id TEXT PRIMARY KEY,
  device TEXT NOT NULL,
  envelope BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  reason TEXT NOT NULL,
  parked_at INTEGER NOT NULL
);
`;

export interface DeadLetter {
  id: string;
  device: string;
  reason: string;
  parkedAt: number;
}

export interface OutboundRow {
  id: string;
  device: string;
  channel: OutboundChannel;
  envelope: Buffer;
  expiresAt: number | null;
}

/**
 * Devices PUBACKed outbound messages: forget them, and for commands remember to tell the cloud,
 * in one transaction (a crash cannot lose the report); each id's channel, or null if unknown.
 */
export function deliveryMarker(db: Database.Database): (ids: readonly string[], at: number) => (OutboundChannel | null)[] {
  const byId = db.prepare('SELECT channel FROM outbound WHERE id = ?');
  const remove = db.prepare('DELETE FROM outbound WHERE id = ?');
  const report = db.prepare('INSERT OR IGNORE INTO delivered (command_id, at) VALUES (?, ?)');
  const mark = db.transaction((ids: readonly string[], at: number) =>
    ids.map((id) => {
      const row = byId.get(id) as { channel: OutboundChannel } | undefined;
      if (!row) return null;
      remove.run(id);
      if (row.channel === 'cmd') report.run(id, at);
      return row.channel;
    }),
  );
  return (ids, at) => mark.immediate(ids, at);
}

/** Which forwarded events the cloud answered for: a whole seq range, or single ids. */
export type Answered = { range: [number, number] } | { ids: string[] };

/**
 * After a forwarded batch: drop the events the cloud answered for and keep the receipts it
 * sent back, in one IMMEDIATE transaction (one fsync per batch, and no crash window between
 * the two). Returns the indices of the outbound rows that were new.
 */
export function forwardSettler(db: Database.Database): (answered: Answered, outbound: readonly OutboundRow[], now: number) => number[] {
  const deleteRange = db.prepare('DELETE FROM events WHERE seq BETWEEN ? AND ?');
  const deleteOne = db.prepare('DELETE FROM events WHERE id = ?');
  const insertOutbound = db.prepare('INSERT OR IGNORE INTO outbound (id, device, channel, envelope, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const settle = db.transaction((answered: Answered, outbound: readonly OutboundRow[], now: number) => {
    if ('range' in answered) deleteRange.run(answered.range[0], answered.range[1]);
    else for (const id of answered.ids) deleteOne.run(id);
    const added: number[] = [];
    outbound.forEach((m, i) => {
      if (insertOutbound.run(m.id, m.device, m.channel, m.envelope, m.expiresAt, now).changes > 0) added.push(i);
    });
    return added;
  });
  return (answered, outbound, now) => settle.immediate(answered, outbound, now);
}

export class GatewayStore {
  readonly db: Database.Database;
  readonly path: string;
  private readonly stmts;
  private readonly insertEvents: (events: readonly EventRow[], now: number) => EventCopy[];
  private readonly queue: (limit: number, after?: number) => IterableIterator<QueuedEvent>;
  private markDelivery: ((ids: readonly string[], at: number) => (OutboundChannel | null)[]) | null = null;
  /**
   * Called after this connection deleted a sealed envelope (an expired or delivered command or
   * receipt, an event parked): the gateway schedules the wipe of its copies (common/wipe.ts).
   */
  onEnvelopeDeleted: () => void = () => {};

  constructor(opts: StoreOptions) {
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    this.path = join(opts.dataDir, 'gateway.sqlite');
    this.db = openStoreConnection(this.path, opts);
    this.db.exec(SCHEMA);
    this.insertEvents = eventInserter(this.db);
    this.queue = eventQueue(this.db);
    const db = this.db;
    this.stmts = {
      deleteEvent: db.prepare('DELETE FROM events WHERE id = ?'),
      // Neither reads past a row's envelope: COUNT(*) counts the id index, and the oldest is
      // the queue's head (one row). MIN(received_at) had to walk every row's envelope to reach
      // the column after it: 64 ms for 2,000 queued punch photos, per /metrics scrape.
      eventDepth: db.prepare('SELECT COUNT(*) AS depth FROM events'),
      queueHead: db.prepare('SELECT received_at AS oldest FROM events ORDER BY seq LIMIT 1'),
      insertOutbound: db.prepare(
        'INSERT OR IGNORE INTO outbound (id, device, channel, envelope, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      outboundFor: db.prepare(
        'SELECT seq, id, device, channel, envelope, expires_at AS expiresAt FROM outbound WHERE device = ? AND channel = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq',
      ),
      expireOutbound: db.prepare('DELETE FROM outbound WHERE expires_at IS NOT NULL AND expires_at <= ?'),
      anyExpired: db.prepare('SELECT 1 FROM outbound WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1'),
      outboundDepth: db.prepare('SELECT COUNT(*) AS n FROM outbound'),
      nextDelivered: db.prepare('SELECT command_id AS commandId, at FROM delivered ORDER BY at LIMIT ?'),
      deleteDelivered: db.prepare('DELETE FROM delivered WHERE command_id = ?'),
      insertPresence: db.prepare('INSERT INTO presence (device, state, at) VALUES (?, ?, ?)'),
      nextPresence: db.prepare('SELECT seq, device, state, at FROM presence ORDER BY seq LIMIT ?'),
      deletePresenceUpTo: db.prepare('DELETE FROM presence WHERE seq <= ?'),
      parkEvent: db.prepare(
        'INSERT OR REPLACE INTO dead_letters (id, device, envelope, received_at, reason, parked_at) SELECT id, device, envelope, received_at, ?, ? FROM events WHERE id = ?',
      ),
      deadLetterCount: db.prepare('SELECT COUNT(*) AS n FROM dead_letters'),
      latestDeadLetters: db.prepare('SELECT id, device, reason, parked_at AS parkedAt FROM dead_letters ORDER BY parked_at DESC, id LIMIT ?'),
      getKv: db.prepare('SELECT value FROM kv WHERE key = ?'),
      setKv: db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /**
   * Appends events in one transaction (one fsync for the whole group) on this connection.
   * A repeated id with the same bytes is ignored; with other bytes it is queued as a copy and
   * returned (eventInserter). The running gateway appends through gateway/event-writer.ts
   * instead (the same insert, on a worker thread), so the fsync does not stall the broker.
   */
  appendEvents(events: readonly EventRow[], now = Date.now()): EventCopy[] {
    return this.insertEvents(events, now);
  }

  nextEvents(limit: number): QueuedEvent[] {
    return [...this.queue(limit)];
  }

  /** Moves a queued event to dead_letters with the cloud's reason (one transaction). */
  parkEvent(id: string, reason: string, now = Date.now()): void {
    this.db.transaction(() => {
      this.stmts.parkEvent.run(reason, now, id);
      this.stmts.deleteEvent.run(id);
    }).immediate();
    this.onEnvelopeDeleted();
  }

  deadLetters(limit = 10): { count: number; latest: DeadLetter[] } {
    return { count: (this.stmts.deadLetterCount.get() as { n: number }).n, latest: this.stmts.latestDeadLetters.all(limit) as DeadLetter[] };
  }

  eventBacklog(now = Date.now()): { depth: number; oldestAgeSeconds: number } {
    const { depth } = this.stmts.eventDepth.get() as { depth: number };
    const head = this.stmts.queueHead.get() as { oldest: number } | undefined;
    return { depth, oldestAgeSeconds: head ? Math.max(0, (now - head.oldest) / 1000) : 0 };
  }

  /** Keeps an envelope for a device until it is PUBACKed or expires; false if the id is known. */
  addOutbound(m: { id: string; device: string; channel: OutboundChannel; envelope: Buffer; expiresAt: number | null }, now = Date.now()): boolean {
    return this.stmts.insertOutbound.run(m.id, m.device, m.channel, m.envelope, m.expiresAt, now).changes > 0;
  }

  pendingOutbound(device: string, channel: OutboundChannel, now = Date.now()): OutboundMessage[] {
    return this.stmts.outboundFor.all(device, channel, now) as OutboundMessage[];
  }

  /**
   * The device PUBACKed an outbound message: forget it, and when it was a command remember
   * to tell the cloud (in the same transaction, so a crash cannot lose the report).
   */
  markDelivered(id: string, at = Date.now()): OutboundChannel | null {
    return this.markDeliveredMany([id], at)[0]!;
  }

  /** markDelivered for several messages in one transaction (what the event writer runs). */
  markDeliveredMany(ids: readonly string[], at = Date.now()): (OutboundChannel | null)[] {
    const channels = (this.markDelivery ??= deliveryMarker(this.db))(ids, at);
    if (channels.some((c) => c !== null)) this.onEnvelopeDeleted();
    return channels;
  }

  expireOutbound(now = Date.now()): number {
    // Runs every second on the broker's thread: a DELETE takes the write lock even when it
    // matches nothing, and would wait out the event writer's commit or wipe (VACUUM) there.
    // A read never waits in WAL mode, so look first.
    if (!this.stmts.anyExpired.get(now)) return 0;
    const expired = this.stmts.expireOutbound.run(now).changes;
    if (expired > 0) this.onEnvelopeDeleted();
    return expired;
  }

  /** Wipes deleted copies on this connection (common/wipe.ts); the running gateway wipes on the event writer's thread. */
  wipeDeleted(): WipeOutcome {
    return wipeDeleted(this.db);
  }

  outboundDepth(): number {
    return (this.stmts.outboundDepth.get() as { n: number }).n;
  }

  pendingDeliveryReports(limit = 500): { commandId: string; at: number }[] {
    return this.stmts.nextDelivered.all(limit) as { commandId: string; at: number }[];
  }

  clearDeliveryReports(ids: readonly string[]): void {
    this.db.transaction(() => {
      for (const id of ids) this.stmts.deleteDelivered.run(id);
    }).immediate();
  }

  addPresence(device: string, state: 'online' | 'offline', at: number): void {
    this.stmts.insertPresence.run(device, state, at);
  }

  pendingPresence(limit = 500): PresenceChange[] {
    return this.stmts.nextPresence.all(limit) as PresenceChange[];
  }

  clearPresenceUpTo(seq: number): void {
    this.stmts.deletePresenceUpTo.run(seq);
  }

  /** Stores new commands and the cursor that fetched them atomically. */
  addCommands(
    commands: readonly { commandId: string; device: string; envelope: Buffer; expiresAt: number | null }[],
    cursor: string | null,
    now = Date.now(),
  ): number {
    return this.db.transaction(() => {
      let added = 0;
      for (const c of commands) {
        if (this.addOutbound({ id: c.commandId, device: c.device, channel: 'cmd', envelope: c.envelope, expiresAt: c.expiresAt }, now)) added++;
      }
      if (cursor !== null) this.setValue('commandCursor', cursor);
      return added;
    }).immediate();
  }

  getValue(key: string): string | null {
    const row = this.stmts.getKv.get(key) as { value: string } | undefined;
    return row ? row.value : null;
  }

  setValue(key: string, value: string): void {
    this.stmts.setKv.run(key, value);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
