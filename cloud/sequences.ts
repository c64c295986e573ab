import type { SequenceStore } from '../protocol/index.js';
import type { Db } from './db.js';

/**
 * protocol's SequenceStore on SQLite: the last accepted sequence per device stream, so a
 * replay is refused across restarts. Ingest records sequences through a StagedSequences
 * so they are written in the same transaction as the event they belong to.
 */
export class SqliteSequenceStore implements SequenceStore {
  private readonly get;
  private readonly put;
  constructor(db: Db) {
    this.get = db.prepare('SELECT seq FROM sequences WHERE stream = ?').pluck();
    this.put = db.prepare('INSERT INTO sequences (stream, seq) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET seq = MAX(seq, excluded.seq)');
  }
  lastSequence(stream: string): number | undefined {
    return this.get.get(stream) as number | undefined;
  }
  recordSequence(stream: string, seq: number): void {
    this.put.run(stream, seq);
  }
}

/** Reads through to the store; holds the write back until commit() (inside the storing transaction). */
export class StagedSequences implements SequenceStore {
  private readonly staged = new Map<string, number>();
  constructor(private readonly store: SequenceStore) {}
  lastSequence(stream: string): number | undefined {
    return this.staged.get(stream) ?? this.store.lastSequence(stream);
  }
  recordSequence(stream: string, seq: number): void {
    this.staged.set(stream, seq);
  }
  /** The staged (stream, seq) pair, if the open succeeded. */
  take(): [string, number] | undefined {
    const first = this.staged.entries().next();
    this.staged.clear();
    return first.done ? undefined : first.value;
  }
}

/** Outbound sequences (receipts and commands the cloud signs), strictly increasing per stream. */
export function nextOutSequence(db: Db, stream: string): number {
  return db
    .prepare('INSERT INTO out_sequences (stream, seq) VALUES (?, 1) ON CONFLICT(stream) DO UPDATE SET seq = seq + 1 RETURNING seq')
    .pluck()
    .get(stream) as number;
}
