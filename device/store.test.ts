import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DeviceStore } from './store.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('DeviceStore', () => {
  it('keeps templates encrypted at rest and readable with the data key', () => {
    const file = join(dir, 'a.db');
    const key = randomBytes(32);
    const store = new DeviceStore(file, key);
    const vector = new Float32Array([0.125, -0.5, 0.75, 0.3333]);
    store.upsertSubject(
      { subject: opaqueSubject('s-1'), cardHashes: ['a'.repeat(64)], pinHash: null, faceConsent: true, accessGroups: [opaqueGroup('staff')], suspended: false },
      [{ model: 'm1', vector }],
    );
    expect(store.subjectByCardHash('a'.repeat(64))?.subject).toBe(opaqueSubject('s-1'));
    expect(Array.from(store.templatesOf(opaqueSubject('s-1'))[0]!.vector)).toEqual(Array.from(vector));
    store.close();
    const raw = readFileSync(file);
    expect(raw.includes(Buffer.from(vector.buffer))).toBe(false);
    expect(() => new DeviceStore(file, randomBytes(32)).templatesOf(opaqueSubject('s-1'))).toThrow();
  });

  it('drops templates when consent is withdrawn', () => {
    const store = new DeviceStore(join(dir, 'b.db'), randomBytes(32));
    const base = { subject: opaqueSubject('s-2'), cardHashes: [], pinHash: 'x', accessGroups: [], suspended: false };
    store.upsertSubject({ ...base, faceConsent: true }, [{ model: 'm', vector: new Float32Array([1]) }]);
    store.upsertSubject({ ...base, faceConsent: false }, null);
    expect(store.templatesOf(opaqueSubject('s-2'))).toEqual([]);
    store.close();
  });

  it('sheds photos first and never drops punches under pressure', () => {
    const store = new DeviceStore(join(dir, 'c.db'), randomBytes(32));
    const limits = { maxEvents: 3, maxBytes: 250 };
    const ev = (eventId: string, size: number, photo: boolean, isPunch = true) => ({
      eventId,
      topic: 't',
      envelope: Buffer.alloc(size),
      slim: photo ? Buffer.alloc(10) : null,
      subject: 's',
      isPunch,
    });
    store.enqueue(ev('p1', 100, true, true), limits);
    store.enqueue(ev('a1', 10, false, false), limits);
    const r = store.enqueue(ev('p2', 200, true, true), limits);
    expect(r.photosDropped).toEqual(['p1']);
    const r2 = store.enqueue(ev('p3', 10, false, true), limits);
    expect(r2).toEqual({ photosDropped: ['p2'], eventsDropped: ['a1'] });
    store.enqueue(ev('p4', 10, false, true), limits);
    expect(store.pending(10).map((e) => e.eventId)).toEqual(['p1', 'p2', 'p3', 'p4']);
    expect(store.acknowledge(['p1', 'p1', 'zz'])).toBe(1);
    store.close();
  });

  it('persists replay sequences across reopen and refuses a newer schema', () => {
    const file = join(dir, 'd.db');
    const key = randomBytes(32);
    const s1 = new DeviceStore(file, key);
    expect(s1.nextOwnSequence('own')).toBe(1);
    expect(s1.nextOwnSequence('own')).toBe(2);
    s1.db.pragma('user_version = 99');
    s1.close();
    expect(() => new DeviceStore(file, key)).toThrow(/newer/);
  });
});
