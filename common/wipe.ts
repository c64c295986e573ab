import type Database from 'better-sqlite3';
import type { Logger } from './log.js';

/**
 * No copy of a deleted row may linger on a site disk (issue 18): a delivered event, a sealed
 * command, a removed subject's template. SQLite leaves deleted bytes in three places, and each
 * needs its own treatment:
 *
 *  1. the database file's freed cells and free pages: `secure_delete = ON` zeroes them when
 *     the row is deleted. It is a per-connection setting, so every connection that may delete
 *     turns it on (openWipingConnection below is what each tier opens its file with);
 *  2. the WAL: the page images written before the delete (the row itself) stay in the -wal file
 *     after their commit, until a checkpoint copies them home and the file is truncated
 *     (`wal_checkpoint(TRUNCATE)`); a plain checkpoint reuses the file and leaves old frames;
 *  3. the unallocated space inside live b-tree pages: when SQLite rebalances a page it copies
 *     the cells that stay to new offsets and does not clear where they were (btree.c
 *     rebuildPage), so a row that was moved once keeps a stale copy that secure_delete never
 *     sees (seen once: a 184-byte run of 1 of 1,167 rows deleted from a queue-shaped table, after
 *     a truncating checkpoint; rare, not reproducible on demand). Only rewriting the
 *     file clears those: VACUUM, which builds the database again from its live rows.
 *
 * So a wipe is VACUUM then checkpoint(TRUNCATE). Both are batched: deletions only mark the
 * store dirty, and WipeSchedule runs one wipe for all of them within the tier's bound
 * (`wipeWithinSeconds`). -shm holds the WAL's index (page numbers), never row data.
 */

/** What one wipe did. */
export interface WipeOutcome {
  /** Every deleted byte left the files: VACUUM ran and the WAL was truncated to zero. */
  complete: boolean;
  /** Why not: "wal-busy" (a reader on an old snapshot held the WAL) or "too-large-to-vacuum". */
  reason?: 'wal-busy' | 'too-large-to-vacuum';
  /** Bytes of live data rewritten by VACUUM (0 when it was skipped). */
  vacuumedBytes: number;
}

/**
 * VACUUM costs about 12-20 ms per MB of live data (2-core machine) and holds the write lock
 * meanwhile; above this the wipe is deferred (the WAL is still truncated) and the promise is
 * reported as not kept, rather than holding the store's writers for seconds. Live data beyond
 * it on a gateway is a backlog after an outage, which drains; a terminal's store (templates,
 * a normal outbox) stays well under it.
 */
export const VACUUM_MAX_LIVE_BYTES = 16 * 1024 * 1024;

/** How long the truncating checkpoint waits for readers to move on before it reports wal-busy. */
const WAL_WAIT_MS = 250;

/** Opens a connection with deletes that zero what they free (see above); WAL mode. */
export function openWipingConnection(open: () => Database.Database): Database.Database {
  const db = open();
  db.pragma('journal_mode = WAL');
  db.pragma('secure_delete = ON');
  return db;
}

/** The bytes of live pages: what a VACUUM has to rewrite. */
export function liveBytes(db: Database.Database): number {
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  const size = db.pragma('page_size', { simple: true }) as number;
  return (pages - free) * size;
}

/**
 * One wipe on this connection: VACUUM (unless the live data is over `maxLiveBytes`), then a
 * checkpoint that truncates the WAL. Must run with no transaction open on the connection.
 */
export function wipeDeleted(db: Database.Database, maxLiveBytes = VACUUM_MAX_LIVE_BYTES): WipeOutcome {
  const live = liveBytes(db);
  const vacuum = live <= maxLiveBytes;
  if (vacuum) db.exec('VACUUM');
  // A reader on an old snapshot holds the WAL: wait for it only briefly (the gateway's writes
  // queue behind this), and try again at the next turn of the schedule rather than here.
  const waited = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma(`busy_timeout = ${Math.min(waited, WAL_WAIT_MS)}`);
  let row: { busy: number } | undefined;
  try {
    [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
  } finally {
    db.pragma(`busy_timeout = ${waited}`);
  }
  if (row && row.busy !== 0) return { complete: false, reason: 'wal-busy', vacuumedBytes: vacuum ? live : 0 };
  if (!vacuum) return { complete: false, reason: 'too-large-to-vacuum', vacuumedBytes: 0 };
  return { complete: true, vacuumedBytes: live };
}

export interface WipeScheduleOptions {
  /** The promise: a deleted copy is gone from the files within this many milliseconds. */
  boundMs: number;
  /** Runs one wipe (on whichever thread owns the connection). */
  wipe: () => WipeOutcome | Promise<WipeOutcome>;
  log?: Logger;
  /** What is wiped, for the log ("gateway store", "terminal store"). */
  name: string;
  now?: () => number;
}

/**
 * Batches deletions into wipes within the bound. deleted() marks the store dirty (after the
 * deleting transaction committed); the first wipe is tried a quarter of the bound later, and
 * one that cannot complete (a reader held the WAL, the live data too large to VACUUM) is tried
 * again every quarter bound, so three retries still fall within the promise. The age of the
 * oldest deletion not yet wiped is what operators watch (metric and health): it stays under
 * the bound while the promise is kept.
 */
export class WipeSchedule {
  /** When the oldest deletion not yet covered by a complete wipe was made; null: none. */
  private dirtySince: number | null = null;
  /** Deletions counted so far, to tell which ones a wipe in flight covers. */
  private deletions = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  /** Wipes that completed, and the last outcome (for health). */
  wipes = 0;
  lastOutcome: WipeOutcome | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: WipeScheduleOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** A copy was deleted (committed): it must be wiped within the bound. */
  deleted(): void {
    if (this.closed) return;
    this.deletions++;
    this.dirtySince ??= this.now();
    this.arm();
  }

  /** Seconds since the oldest deletion not yet wiped (0: nothing waits). */
  oldestUnwipedAgeSeconds(): number {
    return this.dirtySince === null ? 0 : Math.max(0, (this.now() - this.dirtySince) / 1000);
  }

  /** Wipes now whatever is pending (tests, shutdown); resolves when it is done. */
  async flush(): Promise<WipeOutcome | null> {
    await this.running;
    if (this.dirtySince === null) return this.lastOutcome;
    await this.run();
    return this.lastOutcome;
  }

  /** No more wipes are scheduled; one in flight finishes. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private arm(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, Math.max(1, Math.floor(this.opts.boundMs / 4)));
    this.timer.unref();
  }

  private run(): Promise<void> {
    this.running ??= (async () => {
      const covered = this.deletions;
      const startedAt = this.now();
      try {
        const outcome = await this.opts.wipe();
        this.lastOutcome = outcome;
        if (outcome.complete) {
          this.wipes++;
          // Deletions made while the wipe ran may not be covered: they wait for the next one.
          this.dirtySince = this.deletions === covered ? null : startedAt;
        } else {
          this.opts.log?.warn({ store: this.opts.name, reason: outcome.reason, unwipedSeconds: this.oldestUnwipedAgeSeconds() }, 'wipe of deleted copies could not complete; will retry');
        }
      } catch (err) {
        this.lastOutcome = { complete: false, reason: 'wal-busy', vacuumedBytes: 0 };
        this.opts.log?.warn({ store: this.opts.name, err: { message: (err as Error).message } }, 'wipe of deleted copies failed; will retry');
      } finally {
        this.running = null;
        if (this.dirtySince !== null) this.arm();
      }
    })();
    return this.running;
  }
}
