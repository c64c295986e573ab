import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Command, peekHeader, verifyAndOpen } from '../protocol/index.js';
import { Sweeper } from './retention.js';
import { makeJpeg } from './testing/fixtures.js';
import { startHarness, type Harness } from './testing/harness.js';

/** Data-subject rights end to end over HTTP: enroll, export, consent withdrawal, rectify, erase. */
let h: Harness;
let owner: string;
const template = (seed: number) => {
  const v = new Float32Array(128).map((_, i) => Math.sin(seed * 1000 + i));
  return { model: 'faceapi-128', dims: 128, vector: Buffer.from(v.buffer).toString('base64') };
};

beforeAll(async () => {
  h = await startHarness(['acme']);
  owner = h.tenants.get('acme')!.ownerKey;
  await h.addDevice('acme', 'door-1');
  await h.addDevice('acme', 'door-2');
});
afterAll(async () => h?.close());

async function enroll(seed: number) {
  const ref = await makeJpeg({ seed, exif: true });
  const r = await h.api('POST', '/v1/tenants/acme/subjects', {
    token: owner,
    body: { cardHashes: ['a'.repeat(64)], accessGroups: ['staff'], consent: { policyVersion: '2026-01' }, referencePhotos: [ref.toString('base64')], templates: [template(seed)] },
  });
  expect(r.status).toBe(201);
  return r.json as { subject: string; commands: number };
}

function openCommand(envelope: Buffer, device: string) {
  const t = h.tenants.get('acme')!;
  const d = t.devices.get(device)!;
  return verifyAndOpen(envelope, {
    expect: { kind: 'command', tenant: 'acme', device },
    signers: (id) => (id === t.keys.adminSigning.keyId ? { keyId: id, key: t.keys.adminSigning.publicKey } : undefined),
    recipientKeys: [d.sealing],
    maxAgeMs: 30 * 86_400_000,
    maxFutureMs: 300_000,
    now: h.clock.now(),
    schema: Command,
  }).body;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** The database files (main, -wal, -shm) and the vault's ciphertext files, as bytes to search. */
const dbFiles = () => filesUnder(join(h.dir, 'data')).filter((f) => /cloud\.db/.test(f));
const storageBytes = () => ({ db: Buffer.concat(dbFiles().map((f) => readFileSync(f))), vault: Buffer.concat(filesUnder(h.service.vault.dir).map((f) => readFileSync(f))) });

/** Byte strings that identify a subject's photos on disk: wrapped keys, plaintext and ciphertext slices. */
function photoNeedles(ids: string[]): Buffer[] {
  const rows = ids.map((id) => h.service.db.prepare('SELECT wrapped_key FROM photos WHERE id = ?').pluck().get(id) as Buffer);
  const plain = ids.map((id) => h.service.vault.get('acme', id));
  const cipher = ids.map((id) => readFileSync(h.service.vault.pathOf(id)));
  return [...rows, ...plain.map((b) => b.subarray(400, 464)), ...cipher.map((b) => b.subarray(100, 164))];
}

function expectNowhere(needles: Buffer[]): void {
  const { db, vault } = storageBytes();
  needles.forEach((n, i) => {
    expect(vault.includes(n), `needle ${i} in the vault`).toBe(false);
    expect(db.includes(n), `needle ${i} in the database or its WAL`).toBe(false);
  });
}

describe('data-subject rights', () => {
  it('enrolls with consent and queues the record sealed to every terminal', async () => {
    const { subject, commands } = await enroll(11);
    expect(commands).toBe(2);
    const rows = h.service.db.prepare("SELECT device, envelope FROM commands WHERE subject = ? AND type = 'enroll-subject'").all(subject) as Array<{ device: string; envelope: Buffer }>;
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(peekHeader(r.envelope).recipient).not.toBeNull();
      const cmd = openCommand(r.envelope, r.device);
      expect(cmd.type).toBe('enroll-subject');
      if (cmd.type === 'enroll-subject') {
        expect(cmd.record.templates).toHaveLength(1);
        expect(cmd.record.referencePhotos).toHaveLength(1);
        expect(Buffer.from(cmd.record.referencePhotos[0]!, 'base64').includes(Buffer.from('Jane Example'))).toBe(false);
      }
    }
    const rec = await h.api('GET', `/v1/tenants/acme/subjects/${subject}`, { token: owner });
    expect(rec.json).toMatchObject({ faceConsent: true, templates: 1, consents: [{ state: 'granted', policyVersion: '2026-01' }] });
  });

  it('refuses reference photos without consent, and undecodable photos, losing nothing', async () => {
    const noConsent = await h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body: { referencePhotos: [(await makeJpeg()).toString('base64')] } });
    expect(noConsent.status).toBe(400);
    const junk = await h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body: { consent: { policyVersion: 'v1' }, referencePhotos: ['/9j/AAAAAAAA'] } });
    expect(junk.status).toBe(400);
    expect(junk.json.error).toMatch(/reference photo/);
    const reviewer = (await h.api('POST', '/v1/tenants/acme/api-keys', { token: owner, body: { role: 'reviewer' } })).json.key;
    expect((await h.api('POST', '/v1/tenants/acme/subjects', { token: reviewer, body: {} })).status).toBe(403);
  });

  it('exports an archive that opens and holds the employee’s punches and photos', async () => {
    const { subject } = await enroll(12);
    const photo = await makeJpeg({ seed: 99 });
    const p = h.punch('acme', 'door-1', { subject, photo: photo.toString('base64') });
    expect((await h.ingest('acme', [{ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope }])).json.results[0].status).toBe('stored');

    const r = await h.api('GET', `/v1/tenants/acme/subjects/${subject}/export`, { token: owner });
    expect(r.status).toBe(200);
    const out = join(h.dir, 'export-check');
    mkdirSync(out);
    writeFileSync(join(out, 'a.tar.gz'), r.bytes);
    await tar.x({ file: join(out, 'a.tar.gz'), cwd: out });
    const doc = JSON.parse(readFileSync(join(out, `subject-${subject}`, 'subject.json'), 'utf8'));
    expect(doc.subject).toBe(subject);
    expect(doc.punches.map((x: { eventId: string }) => x.eventId)).toEqual([p.event.eventId]);
    expect(doc.consents[0]).toMatchObject({ state: 'granted' });
    expect(doc.photos.map((x: { kind: string }) => x.kind).sort()).toEqual(['punch', 'reference']);
    for (const ph of doc.photos) {
      const meta = await sharp(readFileSync(join(out, `subject-${subject}`, ph.file))).metadata();
      expect(meta.format).toBe('jpeg');
    }
  });

  it('withdrawing consent removes templates and reference photos here and queues template removal to every terminal', async () => {
    const { subject } = await enroll(13);
    const refIds = (await h.api('GET', `/v1/tenants/acme/subjects/${subject}`, { token: owner })).json.referencePhotos as string[];
    const needles = [...photoNeedles(refIds), Buffer.from(template(13).vector, 'base64').subarray(0, 64)];
    expect(storageBytes().db.includes(needles[0]!)).toBe(true);
    const r = await h.api('POST', `/v1/tenants/acme/subjects/${subject}/consent`, { token: owner, body: { state: 'withdrawn', policyVersion: '2026-01' } });
    expect(r.json.commands).toBe(2);
    const rows = h.service.db.prepare("SELECT device, envelope, state FROM commands WHERE subject = ? ORDER BY seq").all(subject) as Array<{ device: string; envelope: Buffer | null; state: string; type: string }>;
    // The undelivered enrollment is cancelled (its sealed templates dropped), the update goes out.
    expect(rows.filter((x) => x.state === 'cancelled' && x.envelope === null)).toHaveLength(2);
    const updates = rows.filter((x) => x.envelope !== null).map((x) => openCommand(x.envelope!, x.device));
    expect(updates).toHaveLength(2);
    for (const u of updates) expect(u).toMatchObject({ type: 'update-subject', record: { faceConsent: false, templates: [], referencePhotos: [] } });
    expect(h.service.db.prepare('SELECT COUNT(*) FROM templates WHERE subject = ?').pluck().get(subject)).toBe(0);
    for (const id of refIds) expect(existsSync(h.service.vault.pathOf(id))).toBe(false);
    const consents = (await h.api('GET', `/v1/tenants/acme/subjects/${subject}`, { token: owner })).json.consents;
    expect(consents.map((c: { state: string }) => c.state)).toEqual(['granted', 'withdrawn']);
    // No wrapped key, photo byte or template left in the database, its WAL or the vault.
    expectNowhere(needles);
  });

  it('rectifies the reference photo: the old one is shredded, terminals get the new record', async () => {
    const { subject } = await enroll(14);
    const before = (await h.api('GET', `/v1/tenants/acme/subjects/${subject}`, { token: owner })).json.referencePhotos as string[];
    const r = await h.api('PUT', `/v1/tenants/acme/subjects/${subject}/reference`, { token: owner, body: { referencePhotos: [(await makeJpeg({ seed: 140 })).toString('base64')], templates: [template(140)] } });
    expect(r.json.commands).toBe(2);
    const after = (await h.api('GET', `/v1/tenants/acme/subjects/${subject}`, { token: owner })).json.referencePhotos as string[];
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before[0]);
    expect(existsSync(h.service.vault.pathOf(before[0]!))).toBe(false);
    expect(h.service.db.prepare('SELECT COUNT(*) FROM photos WHERE id = ?').pluck().get(before[0])).toBe(0);
  });

  it('erasure leaves no photo bytes, no wrapped key and no template in the database or the vault', async () => {
    const { subject } = await enroll(15);
    const photo = await makeJpeg({ seed: 150, width: 200, height: 150 });
    const p = h.punch('acme', 'door-2', { subject, photo: photo.toString('base64') });
    await h.ingest('acme', [{ id: p.event.eventId, tenant: 'acme', device: 'door-2', envelope: p.envelope }]);
    const photoRows = h.service.db.prepare('SELECT id, wrapped_key AS wrapped FROM photos WHERE subject = ?').all(subject) as Array<{ id: string; wrapped: Buffer }>;
    expect(photoRows).toHaveLength(2);
    const plain = photoRows.map((r) => h.service.vault.get('acme', r.id));
    const cipherFiles = photoRows.map((r) => readFileSync(h.service.vault.pathOf(r.id)));
    const vector = Buffer.from(template(15).vector, 'base64');
    const needles = [...photoRows.map((r) => r.wrapped), vector.subarray(0, 64), ...plain.map((b) => b.subarray(400, 464)), ...cipherFiles.map((b) => b.subarray(100, 164))];
    // Sanity: before erasure the template and wrapped keys are findable in the database files.
    const dbBefore = Buffer.concat(dbFiles().map((f) => readFileSync(f)));
    expect(dbBefore.includes(vector.subarray(0, 64))).toBe(true);
    expect(dbBefore.includes(photoRows[0]!.wrapped)).toBe(true);

    const r = await h.api('DELETE', `/v1/tenants/acme/subjects/${subject}`, { token: owner });
    expect(r.json).toMatchObject({ photos: 2, templates: 1, commands: 2 });

    for (const row of photoRows) expect(existsSync(h.service.vault.pathOf(row.id))).toBe(false);
    const vaultBytes = Buffer.concat(filesUnder(h.service.vault.dir).map((f) => readFileSync(f)));
    const dbAfter = Buffer.concat(dbFiles().map((f) => readFileSync(f)));
    for (const n of needles) {
      expect(vaultBytes.includes(n)).toBe(false);
      expect(dbAfter.includes(n)).toBe(false);
    }
    expect(h.service.db.prepare('SELECT COUNT(*) FROM photos WHERE subject = ?').pluck().get(subject)).toBe(0);
    expect(h.service.db.prepare('SELECT COUNT(*) FROM templates WHERE subject = ?').pluck().get(subject)).toBe(0);
    const erase = h.service.db.prepare("SELECT device, envelope FROM commands WHERE subject = ? AND type = 'erase-subject'").all(subject) as Array<{ device: string; envelope: Buffer }>;
    expect(erase.map((e) => e.device).sort()).toEqual(['door-1', 'door-2']);
    expect(openCommand(erase[0]!.envelope, erase[0]!.device)).toMatchObject({ type: 'erase-subject', subject });
    const audit = (await h.api('GET', '/v1/tenants/acme/audit?limit=5000', { token: owner })).json.entries as Array<{ action: string; objectId: string; detail: unknown }>;
    expect(audit.filter((a) => a.action === 'photo.deleted' && photoRows.some((p) => p.id === a.objectId))).toHaveLength(2);
    expect(JSON.stringify(audit)).not.toContain('Jane');
    expect((await h.api('GET', `/v1/tenants/acme/subjects/${subject}`, { token: owner })).status).toBe(404);
  });

  it('a retention sweep leaves no wrapped key or photo byte of what it deleted in the database, its WAL or the vault', async () => {
    const p = h.punch('acme', 'door-1', { photo: (await makeJpeg({ seed: 160, width: 200, height: 150 })).toString('base64') });
    expect((await h.ingest('acme', [{ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope }])).json.results[0].status).toBe('stored');
    const photoId = h.service.db.prepare('SELECT photo_id FROM punches WHERE event_id = ?').pluck().get(p.event.eventId) as string;
    const needles = photoNeedles([photoId]);
    expect(storageBytes().db.includes(needles[0]!)).toBe(true);
    h.clock.advance(91 * 86_400_000);
    expect((await new Sweeper(h.service).sweepTenant('acme')).photos).toBeGreaterThanOrEqual(1);
    expect(existsSync(h.service.vault.pathOf(photoId))).toBe(false);
    expectNowhere(needles);
  });
});
