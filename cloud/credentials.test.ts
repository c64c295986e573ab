import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, scryptSync } from 'node:crypto';
import { cardHash, hashPin, legacyCardHash } from '../protocol/index.js';
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
});
