import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { findLeftovers, sqliteFiles } from '../tests/support/raw-scan.js';
import { DeviceStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-store-wipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const limits = { maxEvents: 10_000, maxBytes: 100_000_000 };
const subject = (id: string, faceConsent = true) => ({ subject: id, cardHashes: [randomBytes(32).toString('hex')], pinHash: null, faceConsent, accessGroups: ['staff'], suspended: false });
const template = () => ({ model: 'm1', vector: new Float32Array(randomBytes(512).buffer) });
/** The encrypted template blobs as they lie in the file. */
const sealedTemplates = (store: DeviceStore, id: string) => (store.db.prepare('SELECT sealed FROM templates WHERE subject = ?').all(id) as { sealed: Buffer }[]).map((r) => r.sealed);

describe('DeviceStore: deleted copies leave the disk', () => {
  it('acknowledged events, a removed subject\'s template and card hashes, a withdrawn consent: none of their bytes stay after a wipe; the rest is intact', () => {
    const file = join(dir, 'device.db');
    const store = new DeviceStore(file, randomBytes(32));
    for (const id of ['ana', 'ben', 'carl']) store.upsertSubject(subject(id), [template()]);
    const events = Array.from({ length: 40 }, (_, i) => ({ eventId: `e${i}`, envelope: randomBytes(i % 4 === 0 ? 60_000 : 500), subject: i % 2 ? 'ana' : 'ben' }));
    for (const e of events) store.enqueue({ eventId: e.eventId, topic: 't', envelope: e.envelope, slim: null, subject: e.subject, isPunch: true }, limits);
    const anaTemplate = sealedTemplates(store, 'ana');
    const anaCards = store.getSubject('ana')!.cardHashes.map((h) => Buffer.from(h));
    const carlTemplate = sealedTemplates(store, 'carl');
    const delivered = events.slice(0, 30);

    store.acknowledge(delivered.map((e) => e.eventId));
    store.removeSubject('ana');
    store.upsertSubject({ ...subject('carl', false) }, null); // consent withdrawn: the template goes
    const secrets = [...delivered.map((e) => e.envelope), ...anaTemplate, ...anaCards, ...carlTemplate];
    expect(store.wiper.oldestUnwipedAgeSeconds()).toBeGreaterThanOrEqual(0);
    expect(findLeftovers(secrets, sqliteFiles(file)).length).toBeGreaterThan(0); // deleted, not yet wiped

    expect(store.wipeNow().complete).toBe(true);
    expect(findLeftovers(secrets, sqliteFiles(file))).toEqual([]);
    expect(store.pending(100).map((e) => e.envelope)).toEqual(events.slice(30).map((e) => e.envelope));
    expect(store.templatesOf('ben')).toHaveLength(1);
    store.close();
  });

  it('a flush of the schedule wipes what is pending, and closing wipes what is left', async () => {
    const file = join(dir, 'scheduled.db');
    const store = new DeviceStore(file, randomBytes(32), { wipeWithinMs: 4000 });
    store.upsertSubject(subject('dora'), [template()]);
    const secret = sealedTemplates(store, 'dora');
    store.removeSubject('dora');
    expect(store.wiper.oldestUnwipedAgeSeconds()).toBeGreaterThanOrEqual(0);
    await store.wiper.flush();
    expect(store.wiper.oldestUnwipedAgeSeconds()).toBe(0);
    expect(findLeftovers(secret, sqliteFiles(file))).toEqual([]);

    const reopened = new DeviceStore(file, randomBytes(32));
    reopened.upsertSubject(subject('eve'), [template()]);
    const eve = sealedTemplates(reopened, 'eve');
    reopened.removeSubject('eve');
    reopened.close();
    expect(findLeftovers(eve, sqliteFiles(file))).toEqual([]);
  });
});
