import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DeviceStore, type StoredSubject } from './store.js';
import { SubjectIndex } from './subject-index.js';
import { createCommandHandler, PolicyHolder } from './commands.js';
import { Policy } from './policy.js';
import { StandInFaceEngine } from './test-support/stand-in-face.js';
import { createLogger } from '../common/log.js';
import { opaqueSubject } from '../protocol/fixtures.js';

/* The in-memory face index follows the real SQLite store through every kind of change. */
const dir = mkdtempSync(join(tmpdir(), 'cf-index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const face = new StandInFaceEngine();
const log = createLogger({ name: 'index-test', level: 'silent' });
const thresholds = { identify: 0.8, margin: 0.1 };

function unit(seed: number): Float32Array {
  const v = new Float32Array(128).map((_, i) => Math.sin(seed * 7.3 + i * 1.7));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
const person = (subject: string, faceConsent = true): StoredSubject => ({ subject, cardHashes: [], pinHash: null, faceConsent, accessGroups: [], suspended: false });

describe('SubjectIndex', () => {
  it('is built at start and follows enroll, consent withdrawal, removal, erase and re-enroll campaigns', async () => {
    const file = join(dir, 'a.db');
    const key = randomBytes(32);
    let store = new DeviceStore(file, key);
    store.upsertSubject(person(opaqueSubject('s-1')), [{ model: face.model, vector: unit(1) }]);
    store.upsertSubject(person(opaqueSubject('s-old')), [{ model: 'old-model-v0', vector: unit(2) }]);
    store.close();

    // A restart: the index is rebuilt from the encrypted templates on disk.
    store = new DeviceStore(file, key);
    const index = new SubjectIndex(store, face.model, log);
    expect(index.subjectCount).toBe(1);
    expect(index.identify(unit(1), thresholds)).toMatchObject({ outcome: 'match', best: { subject: opaqueSubject('s-1') } });
    // The old model's template is never compared, and the subject is marked for re-enrolment.
    expect(index.verify(opaqueSubject('s-old'), unit(2))).toBeNull();
    expect(index.needsReenrolment(opaqueSubject('s-old'))).toBe(true);

    const apply = createCommandHandler({ store, face, policy: new PolicyHolder(store, Policy.parse({})), unlock: () => undefined, log });
    const base = { tenant: 'acme', device: 'd1', issuedAt: 0, expiresAt: 1 };
    const id = (n: number) => `00000000-0000-4000-8000-00000000000${n}`;
    store.upsertSubject(person(opaqueSubject('s-2')), [{ model: face.model, vector: unit(3) }]);
    expect(index.identify(unit(3), thresholds)).toMatchObject({ outcome: 'match', best: { subject: opaqueSubject('s-2') } });

    // Consent withdrawn by update-subject: the template leaves the store and the index.
    await apply({ ...base, commandId: id(1), type: 'update-subject', record: { subject: opaqueSubject('s-2'), cardHashes: [], pinHash: null, faceConsent: false, accessGroups: [], templates: [], referencePhotos: [] } });
    expect(index.verify(opaqueSubject('s-2'), unit(3))).toBeNull();
    expect(index.identify(unit(3), thresholds).outcome).not.toBe('match');

    await apply({ ...base, commandId: id(2), type: 'reenroll-campaign', model: face.model, subjects: null });
    expect(index.needsReenrolment(opaqueSubject('s-old'))).toBe(false);

    await apply({ ...base, commandId: id(3), type: 'erase-subject', subject: opaqueSubject('s-1') });
    expect(index.identify(unit(1), thresholds).outcome).toBe('empty');
    index.close();
    store.close();
  });

  it('refuses two people too close to tell apart (margin rule with the runner-up)', () => {
    const store = new DeviceStore(join(dir, 'b.db'), randomBytes(32));
    const index = new SubjectIndex(store, face.model, log);
    const a = unit(5);
    const b = a.map((x, i) => x + (i === 0 ? 0.001 : 0));
    store.upsertSubject(person(opaqueSubject('s-a')), [{ model: face.model, vector: a }]);
    store.upsertSubject(person(opaqueSubject('s-b')), [{ model: face.model, vector: b }]);
    expect(index.identify(a, thresholds).outcome).toBe('ambiguous');
    index.close();
    store.close();
  });
});
