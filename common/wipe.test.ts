import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { findLeftovers, sqliteFiles } from '../tests/support/raw-scan.js';
import { openWipingConnection, wipeDeleted, WipeSchedule, type WipeOutcome } from './wipe.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-wipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('wipeDeleted on a queue-shaped table', () => {
  it('deleted rows linger in the WAL after their commit; a wipe leaves none and keeps the live rows', () => {
    const file = join(dir, 'queue.db');
    const db = openWipingConnection(() => new Database(file));
    db.exec('CREATE TABLE q (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, body BLOB)');
    const rows = Array.from({ length: 900 }, (_, i) => ({ seq: i + 1, body: randomBytes(i % 10 === 0 ? 20_000 : 300 + ((i * 37) % 900)) }));
    const insert = db.prepare('INSERT INTO q (id, body) VALUES (?, ?)');
    for (let i = 0; i < rows.length; i += 50) db.transaction(() => rows.slice(i, i + 50).forEach((r) => insert.run(randomBytes(16).toString('hex'), r.body)))();
    // Scattered deletes (pages rebalance: cells move), then a head range, as answered ids and batches do.
    const gone = rows.filter((r) => (r.seq - 1) % 3 !== 0 || r.seq < 300);
    const del = db.prepare('DELETE FROM q WHERE seq = ?');
    db.transaction(() => rows.filter((r) => (r.seq - 1) % 3 !== 0).forEach((r) => del.run(r.seq)))();
    db.prepare('DELETE FROM q WHERE seq < 300').run();
    const kept = rows.filter((r) => !gone.includes(r));
    const secrets = gone.map((r) => r.body);

    expect(findLeftovers(secrets, sqliteFiles(file)).length).toBeGreaterThan(0);

    expect(wipeDeleted(db)).toEqual({ complete: true, vacuumedBytes: expect.any(Number) });
    expect(findLeftovers(secrets, sqliteFiles(file))).toEqual([]);
    const live = db.prepare('SELECT body FROM q ORDER BY seq').all() as { body: Buffer }[];
    expect(live.map((r) => r.body)).toEqual(kept.map((r) => r.body));
    db.close();
  });

  it('reports wal-busy while a reader holds an old snapshot, and completes once it is gone', () => {
    const file = join(dir, 'busy.db');
    const db = openWipingConnection(() => new Database(file));
    db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, body BLOB)');
    const secret = randomBytes(2000);
    db.prepare('INSERT INTO q (body) VALUES (?)').run(secret);
    const reader = new Database(file);
    reader.exec('BEGIN');
    reader.prepare('SELECT COUNT(*) FROM q').get();
    db.prepare('DELETE FROM q').run();
    expect(wipeDeleted(db)).toMatchObject({ complete: false, reason: 'wal-busy' });
    reader.exec('COMMIT');
    reader.close();
    expect(wipeDeleted(db).complete).toBe(true);
    expect(findLeftovers([secret], sqliteFiles(file))).toEqual([]);
    db.close();
  });
});

describe('WipeSchedule', () => {
  const outcome = (complete: boolean): WipeOutcome => (complete ? { complete, vacuumedBytes: 0 } : { complete, reason: 'wal-busy', vacuumedBytes: 0 });

  it('ages the oldest deletion not yet wiped, keeps it through a failed wipe, and clears it on a complete one', async () => {
    let now = 1_000_000;
    let succeed = false;
    const s = new WipeSchedule({ boundMs: 60_000, name: 'test', now: () => now, wipe: () => outcome(succeed) });
    expect(s.oldestUnwipedAgeSeconds()).toBe(0);
    s.deleted();
    now += 5000;
    s.deleted();
    expect(s.oldestUnwipedAgeSeconds()).toBe(5);
    await s.flush();
    expect(s.oldestUnwipedAgeSeconds()).toBe(5);
    succeed = true;
    await s.flush();
    expect(s.oldestUnwipedAgeSeconds()).toBe(0);
    expect(s.wipes).toBe(1);
    await s.close();
  });

  it('a deletion made while a wipe runs waits for the next wipe', async () => {
    let now = 0;
    let deleteDuring = true;
    const s = new WipeSchedule({
      boundMs: 60_000,
      name: 'test',
      now: () => now,
      wipe: async () => {
        if (deleteDuring) {
          deleteDuring = false;
          now += 1000;
          s.deleted();
        }
        return outcome(true);
      },
    });
    s.deleted();
    await s.flush();
    now += 2000;
    // Counted from when the wipe started (no later than the deletion): never younger than it is.
    expect(s.oldestUnwipedAgeSeconds()).toBe(3);
    await s.flush();
    expect(s.oldestUnwipedAgeSeconds()).toBe(0);
    await s.close();
  });
});
