import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes, scryptSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { cardHash, hashPin, isLegacyCardHash, legacyCardHash, newMessageId } from '../protocol/index.js';
import { createCommandHandler, PolicyHolder } from './commands.js';
import { CredentialCheck } from './credential-check.js';
import { Policy } from './policy.js';
import { DeviceStore, type StoredSubject } from './store.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

/*
 * The terminal's badge lookup and PIN check on a real SQLite store: v2 hashes are found, and
 * what release 1 left on the disk (bare HMAC card hashes, unpeppered PIN hashes) still works and
 * is replaced by its v2 form — card hashes without anyone badging, PIN hashes on a right PIN.
 */
const dir = mkdtempSync(join(tmpdir(), 'cf-credential-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pepper = randomBytes(32);

function setup(name: string) {
  const store = new DeviceStore(join(dir, `${name}.db`), randomBytes(32));
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) });
  return { store, lines, check: new CredentialCheck({ store, pepper, log }), log };
}
const person = (subject: string, cardHashes: string[], pinHash: string | null = null): StoredSubject => ({
  subject,
  cardHashes,
  pinHash,
  faceConsent: false,
  accessGroups: [opaqueGroup('staff')],
  suspended: false,
});
/** A PIN hash exactly as release 1 wrote it: scrypt of the bare PIN, parameters in the string. */
const release1Pin = (pin: string, N = 16384, r = 8) => {
  const salt = randomBytes(16);
  return `scrypt$${N}$${r}$1$${salt.toString('base64')}$${scryptSync(pin, salt, 32, { N, r, p: 1, maxmem: 64 << 20 }).toString('base64')}`;
};
const storedCards = (store: DeviceStore) => (store.db.prepare('SELECT hash FROM card_hashes ORDER BY hash').all() as { hash: string }[]).map((r) => r.hash);

describe('CredentialCheck', () => {
  it('finds a badge by its v2 hash, and no other badge', async () => {
    const { store, check } = setup('v2');
    store.upsertSubject(person(opaqueSubject('s-ana'), [cardHash(pepper, '1001')]), null);
    expect((await check.subjectByCard('0001001'))?.subject).toBe(opaqueSubject('s-ana'));
    expect(await check.subjectByCard('1002')).toBeUndefined();
    store.close();
  });

  it('finds a badge release 1 enrolled and replaces its hash by the v2 one on that read', async () => {
    const { store, check, lines } = setup('legacy-read');
    store.upsertSubject(person(opaqueSubject('s-bo'), [legacyCardHash(pepper, '2002'), legacyCardHash(pepper, '2003')]), null);
    expect((await check.subjectByCard('2002'))?.subject).toBe(opaqueSubject('s-bo'));
    expect(storedCards(store)).toEqual([cardHash(pepper, '2002'), legacyCardHash(pepper, '2003')].sort());
    expect((await check.subjectByCard('2002'))?.subject).toBe(opaqueSubject('s-bo')); // now by v2
    expect(lines.join('')).toContain('card hash upgraded from release 1 on read');
    store.close();
  });

  it('upgrades every release 1 card hash on the disk without a badge being read; v2 ones are left alone', async () => {
    const { store, check } = setup('legacy-sweep');
    store.upsertSubject(person(opaqueSubject('s-cy'), [legacyCardHash(pepper, '3001'), legacyCardHash(pepper, '3002')]), null);
    store.upsertSubject(person(opaqueSubject('s-di'), [cardHash(pepper, '3003')]), null);
    // Both forms of one badge (a record pushed twice): the older one goes, the newer stays.
    store.upsertSubject(person(opaqueSubject('s-ed'), [legacyCardHash(pepper, '3004'), cardHash(pepper, '3004')]), null);
    expect(await check.upgradeStoredCardHashes()).toBe(3);
    const cards = storedCards(store);
    expect(cards.filter(isLegacyCardHash)).toEqual([]);
    expect(cards).toEqual(['3001', '3002', '3003', '3004'].map((n) => cardHash(pepper, n)).sort());
    for (const [card, subject] of [['3001', opaqueSubject('s-cy')], ['3002', opaqueSubject('s-cy')], ['3003', opaqueSubject('s-di')], ['3004', opaqueSubject('s-ed')]]) {
      expect((await check.subjectByCard(card!))?.subject).toBe(subject);
    }
    expect(await check.upgradeStoredCardHashes()).toBe(0);
    store.close();
  });

  it('checks a v2 PIN; a right PIN against a release 1 hash passes once more and re-hashes it, a wrong one changes nothing', async () => {
    const { store, check, lines } = setup('pins');
    store.upsertSubject(person(opaqueSubject('s-v2'), [], hashPin(pepper, '1357')), null);
    const v2 = store.getSubject(opaqueSubject('s-v2'))!;
    expect(await check.pinMatches(v2, '1357')).toBe(true);
    expect(await check.pinMatches(v2, '1358')).toBe(false);

    const old = release1Pin('2468');
    store.upsertSubject(person(opaqueSubject('s-old'), [], old), null);
    expect(await check.pinMatches(store.getSubject(opaqueSubject('s-old'))!, '2469')).toBe(false);
    expect(store.getSubject(opaqueSubject('s-old'))!.pinHash).toBe(old);
    expect(await check.pinMatches(store.getSubject(opaqueSubject('s-old'))!, '2468')).toBe(true);
    const upgraded = store.getSubject(opaqueSubject('s-old'))!.pinHash!;
    expect(upgraded).toMatch(/^p2\$/);
    expect(await check.pinMatches(store.getSubject(opaqueSubject('s-old'))!, '2468')).toBe(true);
    expect(lines.join('')).toContain('PIN hash upgraded from release 1');
    expect(lines.join('')).not.toContain('2468');
    store.close();
  });

  it('never tests a PIN at the cost a stored hash asks for: a cheap hand-made hash is refused and logged', async () => {
    const { store, check, lines } = setup('cheap-pin');
    store.upsertSubject(person(opaqueSubject('s-cheap'), [], release1Pin('4711', 1024, 1)), null);
    expect(await check.pinMatches(store.getSubject(opaqueSubject('s-cheap'))!, '4711')).toBe(false);
    expect(lines.join('')).toContain('stored PIN hash is not in a form this release checks');
    store.close();
  });

  it('an enroll command with release 1 card hashes stores their v2 form', async () => {
    const { store, log } = setup('command');
    const apply = createCommandHandler({ store, face: null, policy: new PolicyHolder(store, Policy.parse({})), unlock: () => undefined, log });
    const now = Date.now();
    await apply({
      type: 'enroll-subject',
      commandId: newMessageId(),
      tenant: 'acme',
      device: 'd1',
      issuedAt: now,
      expiresAt: now + 60_000,
      record: { subject: opaqueSubject('s-fy'), cardHashes: [legacyCardHash(pepper, '5005')], pinHash: null, faceConsent: false, accessGroups: [], templates: [], referencePhotos: [] },
    });
    expect(storedCards(store)).toEqual([cardHash(pepper, '5005')]);
    store.close();
  });

  it('release-1 scheme (the bench baseline) looks badges up by the bare HMAC only', async () => {
    const { store, check } = setup('baseline');
    store.upsertSubject(person(opaqueSubject('s-gu'), [legacyCardHash(pepper, '6006')]), null);
    check.scheme = 'release-1';
    expect((await check.subjectByCard('6006'))?.subject).toBe(opaqueSubject('s-gu'));
    expect(storedCards(store)).toEqual([legacyCardHash(pepper, '6006')]);
    store.close();
  });
});
