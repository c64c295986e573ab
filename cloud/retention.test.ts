import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from './clock.js';
import { Sweeper } from './retention.js';
import { CloudService } from './service.js';
import { MAX_RETENTION_DAYS } from './settings.js';
import { makeJpeg } from './testing/fixtures.js';
import { startHarness, type Harness } from './testing/harness.js';

/** Retention with a fake clock: 90-day default, the 7-year ceiling, leavers, contract end, two sweepers. */
let h: Harness;
let jpeg: Buffer;
beforeAll(async () => {
  h = await startHarness(['acme', 'globex', 'initech']);
  await h.addDevice('acme', 'door-1');
  await h.addDevice('globex', 'door-1');
  await h.addDevice('initech', 'door-1');
  jpeg = await makeJpeg({ seed: 3 });
});
afterAll(async () => h?.close());

async function punchWithPhoto(tenant: string, subject: string | null = null) {
  const p = h.punch(tenant, 'door-1', { subject, photo: jpeg.toString('base64') });
  const r = await h.ingest(tenant, [{ id: p.event.eventId, tenant, device: 'door-1', envelope: p.envelope }]);
  expect(r.json.results[0].status).toBe('stored');
  return h.service.db.prepare('SELECT photo_id FROM punches WHERE event_id = ?').pluck().get(p.event.eventId) as string;
}

const photoExists = (id: string) => existsSync(h.service.vault.pathOf(id)) || h.service.db.prepare('SELECT COUNT(*) FROM photos WHERE id = ?').pluck().get(id) !== 0;

describe('retention', () => {
  it('refuses retention outside 1 day .. 7 years with a clear error', async () => {
    const owner = h.tenants.get('acme')!.ownerKey;
    const tooLong = await h.api('PUT', '/v1/tenants/acme/settings', { token: owner, body: { photoRetentionDays: MAX_RETENTION_DAYS + 1 } });
    expect(tooLong.status).toBe(400);
    const zero = await h.api('PUT', '/v1/tenants/acme/settings', { token: owner, body: { punchRetentionDays: 0 } });
    expect(zero.status).toBe(400);
    const s = await h.api('GET', '/v1/tenants/acme/settings', { token: owner });
    expect(s.json).toMatchObject({ photoRetentionDays: 90, punchRetentionDays: MAX_RETENTION_DAYS });
  });

  it('deletes punch photos after the 90-day default, keeps the punch record, and audits each deletion', async () => {
    const sweeper = new Sweeper(h.service, { batchSize: 3 });
    const ids = [await punchWithPhoto('acme'), await punchWithPhoto('acme')];
    h.clock.advance(89 * DAY_MS);
    expect((await sweeper.sweepTenant('acme')).photos).toBe(0);
    expect(ids.every(photoExists)).toBe(true);
    h.clock.advance(2 * DAY_MS);
    expect((await sweeper.sweepTenant('acme')).photos).toBe(2);
    expect(ids.some(photoExists)).toBe(false);
    const punches = h.service.db.prepare("SELECT COUNT(*) FROM punches WHERE tenant = 'acme' AND photo_id IS NULL").pluck().get() as number;
    expect(punches).toBeGreaterThanOrEqual(2);
    const audited = h.service.db.prepare("SELECT object_id FROM audit WHERE tenant = 'acme' AND action = 'photo.deleted'").pluck().all();
    expect(audited).toEqual(expect.arrayContaining(ids));
    // The audit log is append-only.
    expect(() => h.service.db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    expect(() => h.service.db.prepare("UPDATE audit SET actor = 'x'").run()).toThrow(/append-only/);
  });

  it('keeps photos and punch records up to 7 years at the maximum setting, and not a day longer', async () => {
    const owner = h.tenants.get('globex')!.ownerKey;
    const set = await h.api('PUT', '/v1/tenants/globex/settings', { token: owner, body: { photoRetentionDays: MAX_RETENTION_DAYS, punchRetentionDays: MAX_RETENTION_DAYS } });
    expect(set.status).toBe(200);
    const id = await punchWithPhoto('globex');
    const sweeper = new Sweeper(h.service);
    h.clock.advance((MAX_RETENTION_DAYS - 1) * DAY_MS);
    expect(await sweeper.sweepTenant('globex')).toMatchObject({ photos: 0, punches: 0 });
    expect(photoExists(id)).toBe(true);
    h.clock.advance(2 * DAY_MS);
    const r = await sweeper.sweepTenant('globex');
    expect(r.photos).toBe(1);
    expect(r.punches).toBeGreaterThanOrEqual(1);
    expect(photoExists(id)).toBe(false);
    expect(h.service.db.prepare("SELECT COUNT(*) FROM punches WHERE tenant = 'globex'").pluck().get()).toBe(0);
  });

  it('deletes a leaver’s photos after the configured delay', async () => {
    const owner = h.tenants.get('initech')!.ownerKey;
    await h.api('PUT', '/v1/tenants/initech/settings', { token: owner, body: { leaverPhotoDays: 10 } });
    const { subject } = (await h.api('POST', '/v1/tenants/initech/subjects', { token: owner, body: { consent: { policyVersion: 'v1' }, referencePhotos: [jpeg.toString('base64')] } })).json;
    const punchPhoto = await punchWithPhoto('initech', subject);
    await h.api('POST', `/v1/tenants/initech/subjects/${subject}/leave`, { token: owner });
    const sweeper = new Sweeper(h.service);
    h.clock.advance(9 * DAY_MS);
    expect((await sweeper.sweepTenant('initech')).photos).toBe(0);
    h.clock.advance(2 * DAY_MS);
    expect((await sweeper.sweepTenant('initech')).photos).toBe(2);
    expect(photoExists(punchPhoto)).toBe(false);
    expect(h.service.db.prepare("SELECT COUNT(*) FROM photos WHERE tenant = 'initech'").pluck().get()).toBe(0);
  });

  it('deletes a leaver’s photos at once when the tenant says so', async () => {
    const owner = h.tenants.get('initech')!.ownerKey;
    await h.api('PUT', '/v1/tenants/initech/settings', { token: owner, body: { leaverPhotoDays: 0 } });
    const { subject } = (await h.api('POST', '/v1/tenants/initech/subjects', { token: owner, body: { consent: { policyVersion: 'v1' }, referencePhotos: [jpeg.toString('base64')] } })).json;
    const punchPhoto = await punchWithPhoto('initech', subject);
    const left = await h.api('POST', `/v1/tenants/initech/subjects/${subject}/leave`, { token: owner });
    expect(left.json.commands).toBe(1);
    expect(photoExists(punchPhoto)).toBe(false);
    expect(h.service.db.prepare("SELECT COUNT(*) FROM photos WHERE tenant = 'initech' AND subject = ?").pluck().get(subject)).toBe(0);
  });

  it('is safe with two sweepers at once and finishes a batch a dead sweeper left behind', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push((await h.service.vault.put('acme', jpeg, 'punch', null, h.clock.now())).id);
    // A sweeper that died after removing two files, with its lease run out.
    h.service.db.prepare("UPDATE photos SET claimed_by = 'dead-host', claim_until = ? WHERE id IN (?, ?)").run(Date.now() - 1, ids[0], ids[1]);
    h.clock.advance(91 * DAY_MS);
    // A second host: its own connection to the same database file.
    const other = new CloudService({ dataDir: join(h.dir, 'data'), tenants: [{ id: 'acme', keysDir: h.tenants.get('acme')!.keys.dir }], clock: h.clock, keyring: h.service.keyring });
    try {
      const [a, b] = await Promise.all([new Sweeper(h.service, { batchSize: 4 }).sweepTenant('acme'), new Sweeper(other, { batchSize: 4 }).sweepTenant('acme')]);
      expect(a.photos + b.photos).toBe(30);
      expect(a.photos).toBeGreaterThan(0);
      expect(b.photos).toBeGreaterThan(0);
    } finally {
      other.close();
    }
    expect(ids.some(photoExists)).toBe(false);
    const audited = h.service.db.prepare("SELECT object_id FROM audit WHERE action = 'photo.deleted'").pluck().all() as string[];
    for (const id of ids) expect(audited.filter((x) => x === id)).toHaveLength(1);
  });

  it('at contract end deletes every photo, reference photo and template, then destroys the tenant vault key', async () => {
    const owner = h.tenants.get('acme')!.ownerKey;
    const { subject } = (await h.api('POST', '/v1/tenants/acme/subjects', {
      token: owner,
      body: { consent: { policyVersion: 'v1' }, referencePhotos: [jpeg.toString('base64')], templates: [{ model: 'm', dims: 2, vector: Buffer.alloc(8, 1).toString('base64') }] },
    })).json;
    const fresh = await punchWithPhoto('acme', subject);
    const badgeOnly = (await h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body: { cardHashes: ['c'.repeat(64)] } })).json.subject as string;
    const enrolls = h.service.db.prepare("SELECT command_id FROM commands WHERE tenant = 'acme' AND type = 'enroll-subject' AND envelope IS NOT NULL").pluck().all() as string[];
    expect(enrolls.length).toBeGreaterThanOrEqual(2);
    expect((await h.api('POST', '/v1/tenants/acme/contract-end', { token: owner })).status).toBe(200);
    h.clock.advance(60_000);
    const r = await new Sweeper(h.service).sweepTenant('acme');
    expect(r.photos).toBe(2);
    expect(r.templates).toBe(1);
    expect(r.subjects).toBe(2);
    expect(r.keysDestroyed).toBe(1);
    // No sealed template or reference photo waits in the outbox; undelivered enrollments are cancelled.
    const personal = h.service.db.prepare("SELECT state, envelope FROM commands WHERE tenant = 'acme' AND type IN ('enroll-subject', 'update-subject')").all() as Array<{ state: string; envelope: Buffer | null }>;
    expect(personal.every((c) => c.envelope === null)).toBe(true);
    expect(personal.filter((c) => c.state === 'cancelled').length).toBeGreaterThanOrEqual(2);
    // Every subject is erased on every terminal, once; the subject records (card hashes) are gone.
    const erases = h.service.db.prepare("SELECT subject, device FROM commands WHERE tenant = 'acme' AND type = 'erase-subject' AND envelope IS NOT NULL ORDER BY subject").all() as Array<{ subject: string; device: string }>;
    expect(erases).toEqual([subject, badgeOnly].sort().map((s) => ({ subject: s, device: 'door-1' })));
    expect(h.service.db.prepare("SELECT COUNT(*) FROM subjects WHERE tenant = 'acme'").pluck().get()).toBe(0);
    h.clock.advance(60_000);
    expect(await new Sweeper(h.service).sweepTenant('acme')).toMatchObject({ subjects: 0, photos: 0 });
    expect(h.service.db.prepare("SELECT COUNT(*) FROM commands WHERE tenant = 'acme' AND type = 'erase-subject'").pluck().get()).toBe(2);
    expect(photoExists(fresh)).toBe(false);
    expect(h.service.db.prepare("SELECT COUNT(*) FROM photos WHERE tenant = 'acme'").pluck().get()).toBe(0);
    expect(h.service.db.prepare("SELECT COUNT(*) FROM templates WHERE tenant = 'acme'").pluck().get()).toBe(0);
    expect(() => h.service.keyring.unwrap('acme', 'any', Buffer.alloc(40), Buffer.alloc(0))).toThrow(/no key-encryption key/);
    // Other tenants untouched.
    expect(h.service.db.prepare("SELECT COUNT(*) FROM audit WHERE tenant = 'acme' AND action = 'vault-key.destroyed'").pluck().get()).toBe(1);
    // The keyring never quietly makes a new key for the ended tenant.
    expect(() => h.service.keyring.wrap('acme', Buffer.alloc(32), Buffer.from('acme/x'))).toThrow(/destroyed/);
  });

  it('after contract end refuses new punches (recorded without payload, photo never stored) and new subjects', async () => {
    const owner = h.tenants.get('acme')!.ownerKey;
    h.clock.advance(DAY_MS);
    const vaultFiles = () => h.service.db.prepare("SELECT COUNT(*) FROM photos WHERE tenant = 'acme'").pluck().get();
    const p = h.punch('acme', 'door-1', { subject: null, photo: jpeg.toString('base64') });
    const r = await h.ingest('acme', [{ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope }]);
    expect(r.json.results[0]).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/^tenant\.contract-ended/) });
    // Verified and final: the terminal gets a receipt so its outbox lets the event (and photo) go.
    expect(r.json.receipts).toHaveLength(1);
    expect(h.service.db.prepare('SELECT COUNT(*) FROM punches WHERE event_id = ?').pluck().get(p.event.eventId)).toBe(0);
    expect(vaultFiles()).toBe(0);
    const rej = h.service.db.prepare('SELECT * FROM rejections WHERE event_id = ?').get(p.event.eventId) as Record<string, unknown>;
    expect(rej).toMatchObject({ tenant: 'acme', device: 'door-1', code: 'tenant.contract-ended' });
    expect(JSON.stringify(rej)).not.toContain(jpeg.subarray(100, 120).toString('base64'));
    expect(Object.keys(rej).sort()).toEqual(['at', 'code', 'device', 'event_id', 'gateway', 'id', 'reason', 'tenant']);
    // Other tenants still ingest.
    const g = h.punch('globex', 'door-1');
    expect((await h.ingest('globex', [{ id: g.event.eventId, tenant: 'globex', device: 'door-1', envelope: g.envelope }])).json.results[0].status).toBe('stored');
    const enroll = await h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body: { consent: { policyVersion: 'v1' }, referencePhotos: [jpeg.toString('base64')] } });
    expect(enroll.status).toBe(409);
    expect(enroll.json.error).toMatch(/contract has ended/);
  });

  it('after contract end keeps sweeping punch records by their own retention (the last test: it moves the clock 7 years)', async () => {
    const count = () => h.service.db.prepare("SELECT COUNT(*) FROM punches WHERE tenant = 'acme'").pluck().get() as number;
    expect(count()).toBeGreaterThan(0);
    h.clock.advance((MAX_RETENTION_DAYS + 1) * DAY_MS);
    const r = await new Sweeper(h.service).sweepTenant('acme');
    expect(r.punches).toBeGreaterThan(0);
    expect(count()).toBe(0);
  });
});
