import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, scryptSync } from 'node:crypto';
import { cardHash, hashPin, legacyCardHash } from '../protocol/index.js';
import pino from 'pino';
import { CardHashUpgrade } from './card-hash-upgrade.js';
import { startHarness, type Harness } from './testing/harness.js';

/**
 * Card and PIN hashes at the enrolment API: a release 1 client's bare HMAC card hash is stored
 * (and sent to terminals) as its memory-hard v2 form; a PIN hash that is not v2 or release 1's
 * own form — a hand-made cheap one a terminal would have tested at its own low cost — is refused.
 */
let h: Harness;
let owner: string;
const pepper = randomBytes(32);
beforeAll(async () => {
  h = await startHarness(['acme']);
  owner = h.tenants.get('acme')!.ownerKey;
});
afterAll(async () => h?.close());

const enrol = (body: Record<string, unknown>) => h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body });
const storedCards = (subject: string) =>
  JSON.parse((h.service.db.prepare('SELECT card_hashes FROM subjects WHERE subject = ?').get(subject) as { card_hashes: string }).card_hashes) as string[];

describe('card and PIN hashes at enrolment', () => {
  it('stores a release 1 card hash as its v2 form, and a v2 one as given', async () => {
    const r = await enrol({ cardHashes: [legacyCardHash(pepper, '1001'), cardHash(pepper, '1002')], pinHash: hashPin(pepper, '2468') });
    expect(r.status).toBe(201);
    expect(storedCards(r.json.subject as string)).toEqual([cardHash(pepper, '1001'), cardHash(pepper, '1002')]);
  });

  it('takes a release 1 PIN hash made with its usual parameters, refuses any other form', async () => {
    const release1 = (N: number, r: number) => {
      const salt = randomBytes(16);
      return `scrypt$${N}$${r}$1$${salt.toString('base64')}$${scryptSync('2468', salt, 32, { N, r, p: 1 }).toString('base64')}`;
    };
    expect((await enrol({ pinHash: release1(16384, 8) })).status).toBe(201);
    for (const bad of [release1(1024, 1), '2468', 'p2$garbage$garbage']) expect((await enrol({ pinHash: bad })).status, bad).toBe(400);
    expect((await enrol({ cardHashes: ['1001'] })).status).toBe(400);
  });

  it('upgrades the release 1 card hashes already in its database, subject by subject, leaving v2 ones alone', async () => {
    // Two subjects as release 1 stored them, one already v2.
    const legacy = await enrol({});
    const mixed = await enrol({});
    const current = await enrol({ cardHashes: [cardHash(pepper, '3003')] });
    const set = h.service.db.prepare('UPDATE subjects SET card_hashes = ? WHERE subject = ?');
    set.run(JSON.stringify([legacyCardHash(pepper, '3001')]), legacy.json.subject);
    set.run(JSON.stringify([cardHash(pepper, '3002'), legacyCardHash(pepper, '3004')]), mixed.json.subject);
    const lines: string[] = [];
    const upgrade = new CardHashUpgrade(h.service, pino({}, { write: (l: string) => void lines.push(l) }));
    upgrade.start();
    expect(await upgrade.done()).toBe(2);
    expect(storedCards(legacy.json.subject as string)).toEqual([cardHash(pepper, '3001')]);
    expect(storedCards(mixed.json.subject as string)).toEqual([cardHash(pepper, '3002'), cardHash(pepper, '3004')]);
    expect(storedCards(current.json.subject as string)).toEqual([cardHash(pepper, '3003')]);
    expect(lines.join('')).toContain('release 1 card hashes upgraded to v2');
    const again = new CardHashUpgrade(h.service, pino({ level: 'silent' }));
    again.start();
    expect(await again.done()).toBe(0);
  });
});
