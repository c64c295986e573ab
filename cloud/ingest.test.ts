import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ack, Command, newMessageId, publicKeyRef, sealAndSign, verifyAndOpen, MemorySequenceStore } from '../protocol/index.js';
import { makeJpeg } from './testing/fixtures.js';
import { startHarness, type Harness } from './testing/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness(['acme', 'globex']);
  await h.addDevice('acme', 'door-1');
  await h.addDevice('acme', 'door-2');
  await h.addDevice('globex', 'door-1');
});
afterAll(async () => h?.close());

function openReceipt(tenant: string, device: string, envelope: string) {
  const admin = h.tenants.get(tenant)!.keys.adminSigning;
  return verifyAndOpen(Buffer.from(envelope, 'base64'), {
    expect: { kind: 'receipt', tenant, device },
    signers: (id) => (id === admin.keyId ? { keyId: admin.keyId, key: admin.publicKey } : undefined),
    maxAgeMs: 7 * 86_400_000,
    maxFutureMs: 300_000,
    now: h.clock.now(),
    schema: Ack,
  }).body;
}

function allFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFilesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('ingest', () => {
  it('stores a real sealed punch with its photo encrypted and stripped of metadata, and signs a receipt', async () => {
    const jpeg = await makeJpeg({ exif: true, seed: 7 });
    expect(jpeg.includes(Buffer.from('Jane Example'))).toBe(true);
    const { event, envelope } = h.punch('acme', 'door-1', { photo: jpeg.toString('base64') });
    const r = await h.ingest('acme', [{ id: event.eventId, tenant: 'acme', device: 'door-1', envelope }]);
    expect(r.status).toBe(200);
    expect(r.json.results).toEqual([{ id: event.eventId, status: 'stored' }]);
    expect(r.json.receipts).toHaveLength(1);
    const ack = openReceipt('acme', 'door-1', r.json.receipts[0].envelope);
    expect(ack.eventIds).toEqual([event.eventId]);

    const punches = await h.api('GET', '/v1/tenants/acme/punches', { token: h.tenants.get('acme')!.ownerKey });
    const stored = punches.json.punches.find((p: { eventId: string }) => p.eventId === event.eventId);
    expect(stored).toMatchObject({ device: 'door-1', decision: 'granted', recheckState: 'pending' });
    expect(stored.photoId).toMatch(/^[0-9a-f]{32}$/);

    // On disk: one random-named file that is neither the JPEG nor contains its metadata.
    const files = allFilesUnder(h.service.vault.dir);
    const file = files.find((f) => f.endsWith(stored.photoId))!;
    const onDisk = readFileSync(file);
    expect(onDisk.includes(Buffer.from('Jane Example'))).toBe(false);
    expect(onDisk.subarray(0, 2).equals(Buffer.from([0xff, 0xd8]))).toBe(false);

    // Served back decrypted, as a JPEG without EXIF.
    const photo = await h.api('GET', `/v1/tenants/acme/photos/${stored.photoId}`, { token: h.tenants.get('acme')!.ownerKey });
    expect(photo.status).toBe(200);
    const meta = await sharp(photo.bytes).metadata();
    expect(meta.format).toBe('jpeg');
    expect(meta.exif).toBeUndefined();
    expect(photo.bytes.includes(Buffer.from('Jane Example'))).toBe(false);
  });

  it('treats a duplicate as a no-op and acknowledges it again', async () => {
    const { event, envelope } = h.punch('acme', 'door-1');
    const item = { id: event.eventId, tenant: 'acme', device: 'door-1', envelope };
    expect((await h.ingest('acme', [item])).json.results[0].status).toBe('stored');
    const again = await h.ingest('acme', [item, item]);
    expect(again.json.results.map((x: { status: string }) => x.status)).toEqual(['duplicate', 'duplicate']);
    expect(openReceipt('acme', 'door-1', again.json.receipts[0].envelope).eventIds).toEqual([event.eventId]);
    const count = h.service.db.prepare('SELECT COUNT(*) FROM punches WHERE event_id = ?').pluck().get(event.eventId);
    expect(count).toBe(1);
  });

  it('refuses and records a tampered event without storing its payload', async () => {
    const { event, envelope } = h.punch('acme', 'door-2');
    const bad = Buffer.from(envelope);
    bad[bad.length - 80]! ^= 0x01;
    const r = await h.ingest('acme', [{ id: event.eventId, tenant: 'acme', device: 'door-2', envelope: bad }]);
    expect(r.json.results[0]).toMatchObject({ status: 'rejected', reason: expect.stringContaining('envelope.signature-invalid') });
    expect(r.json.receipts).toEqual([]);
    expect(h.service.db.prepare('SELECT COUNT(*) FROM punches WHERE event_id = ?').pluck().get(event.eventId)).toBe(0);
    const rec = h.service.db.prepare('SELECT * FROM rejections WHERE event_id = ?').get(event.eventId) as Record<string, unknown>;
    expect(rec).toMatchObject({ tenant: 'acme', device: 'door-2', code: 'envelope.signature-invalid' });
    expect(Object.keys(rec).sort()).toEqual(['at', 'code', 'device', 'event_id', 'gateway', 'id', 'reason', 'tenant']);
  });

  it('keeps punches from a terminal whose clock is wrong, flagged for review; replays are still refused', async () => {
    const day = 86_400_000;
    const now = h.clock.now();
    // A Pi without a real-time clock that booted in 1970, and one whose clock runs an hour ahead.
    const unsynced = h.punch('acme', 'door-1', { time: { wall: 3_600_000, monotonicMs: 5, clockSync: 'unsynced' } }, { sentAt: 3_600_000 });
    const ahead = h.punch('acme', 'door-1', { time: { wall: now + 3_600_000, monotonicMs: 6, clockSync: 'synced' } }, { sentAt: now + 3_600_000 });
    const late = h.punch('acme', 'door-1', { time: { wall: now - 2 * day, monotonicMs: 7, clockSync: 'synced' } }, { sentAt: now - 2 * day }); // waited out an outage
    const items = [unsynced, ahead, late].map((p) => ({ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope }));
    const r = await h.ingest('acme', items);
    expect(r.json.results.map((x: { status: string }) => x.status)).toEqual(['stored', 'stored', 'stored']);
    const rows = (await h.api('GET', '/v1/tenants/acme/punches?limit=5000', { token: h.tenants.get('acme')!.ownerKey })).json.punches as Array<Record<string, unknown>>;
    const row = (id: string) => rows.find((p) => p.eventId === id)!;
    expect(row(unsynced.event.eventId)).toMatchObject({ reviewState: 'open', reviewReasons: ['clock-unsynced'] });
    expect(row(ahead.event.eventId)).toMatchObject({ reviewState: 'open', reviewReasons: ['clock-unsynced'] });
    expect(row(late.event.eventId)).toMatchObject({ reviewState: 'none' });
    // The same envelope again is a duplicate; an old sequence under a new id is a replay.
    expect((await h.ingest('acme', [items[0]!])).json.results[0].status).toBe('duplicate');
    const replay = h.punch('acme', 'door-1', { time: { wall: 3_600_000, monotonicMs: 5, clockSync: 'unsynced' } }, { seq: 1, sentAt: 3_600_000 });
    expect((await h.ingest('acme', [{ id: replay.event.eventId, tenant: 'acme', device: 'door-1', envelope: replay.envelope }])).json.results[0].status).not.toBe('stored');
  });

  it('refuses a replayed sequence under a new event id', async () => {
    const first = h.punch('acme', 'door-2');
    expect((await h.ingest('acme', [{ id: first.event.eventId, tenant: 'acme', device: 'door-2', envelope: first.envelope }])).json.results[0].status).toBe('stored');
    const seq = h.tenants.get('acme')!.devices.get('door-2')!.seq;
    const replay = h.punch('acme', 'door-2', {}, { seq });
    const r = await h.ingest('acme', [{ id: replay.event.eventId, tenant: 'acme', device: 'door-2', envelope: replay.envelope }]);
    expect(r.json.results[0]).toMatchObject({ status: 'rejected', reason: expect.stringContaining('envelope.replayed') });
  });

  it('refuses cross-tenant events: a gateway cannot speak for another tenant, nor an envelope for another', async () => {
    const acmeEvent = h.punch('acme', 'door-1');
    const globexGw = h.tenants.get('globex')!.gatewayToken;
    const viaOther = await h.ingest('acme', [{ id: acmeEvent.event.eventId, tenant: 'acme', device: 'door-1', envelope: acmeEvent.envelope }], globexGw);
    expect(viaOther.json.results[0]).toMatchObject({ status: 'rejected', reason: expect.stringContaining('tenant.mismatch') });
    const relabelled = await h.ingest('acme', [{ id: acmeEvent.event.eventId, tenant: 'globex', device: 'door-1', envelope: acmeEvent.envelope }], globexGw);
    expect(relabelled.json.results[0].status).toBe('rejected');
    expect(viaOther.json.receipts).toEqual([]);
    // Nothing of it landed anywhere.
    expect(h.service.db.prepare('SELECT COUNT(*) FROM events WHERE id = ?').pluck().get(acmeEvent.event.eventId)).toBe(0);
    // And admin keys do not cross either.
    const peek = await h.api('GET', '/v1/tenants/acme/punches', { token: h.tenants.get('globex')!.ownerKey });
    expect(peek.status).toBe(403);
  });

  it('refuses unknown devices, malformed envelopes, bad bodies and missing credentials with clear errors', async () => {
    const r = await h.ingest('acme', [
      { id: newMessageId(), tenant: 'acme', device: 'door-1', envelope: Buffer.from('not an envelope') },
      { id: 'x', tenant: 'acme', device: 'NOT/VALID', envelope: 'AAAA' },
    ]);
    expect(r.json.results.map((x: { status: string }) => x.status)).toEqual(['rejected', 'rejected']);
    expect(r.json.results[0].reason).toContain('envelope.');
    const noAuth = await h.api('POST', '/v1/gateway/ingest', { body: { events: [] } });
    expect(noAuth.status).toBe(401);
    const badJson = await h.api('POST', '/v1/gateway/ingest', { token: h.tenants.get('acme')!.gatewayToken, body: '{"events": [' });
    expect(badJson.status).toBe(400);
    const badShape = await h.api('POST', '/v1/gateway/ingest', { token: h.tenants.get('acme')!.gatewayToken, body: { events: [{ id: 1 }] } });
    expect(badShape.status).toBe(400);
    expect(badShape.json.error).toMatch(/invalid request/);
  });

  it('serves commands to the gateway by long-poll and tracks delivery and the device result', async () => {
    const acme = h.tenants.get('acme')!;
    const first = await h.api('GET', '/v1/gateway/commands?wait=0', { token: acme.gatewayToken });
    const cursor = first.json.cursor as string;
    const polling = h.api('GET', `/v1/gateway/commands?cursor=${cursor}&wait=5`, { token: acme.gatewayToken });
    const rev = await h.api('POST', '/v1/tenants/acme/revocations', { token: acme.ownerKey, body: { serials: ['DEADBEEF'] } });
    expect(rev.json.version).toBeGreaterThan(0);
    const got = await polling;
    expect(got.json.commands.map((c: { device: string }) => c.device).sort()).toEqual(['door-1', 'door-2']);
    const cmd = got.json.commands.find((c: { device: string }) => c.device === 'door-1');
    const opened = verifyAndOpen(Buffer.from(cmd.envelope, 'base64'), {
      expect: { kind: 'command', tenant: 'acme', device: 'door-1' },
      signers: (id) => (id === acme.keys.adminSigning.keyId ? { keyId: id, key: acme.keys.adminSigning.publicKey } : undefined),
      sequences: new MemorySequenceStore(),
      maxAgeMs: 30 * 86_400_000,
      maxFutureMs: 300_000,
      now: h.clock.now(),
      schema: Command,
    }).body;
    expect(opened).toMatchObject({ type: 'revocation-list', serials: ['deadbeef'] });
    expect((await h.api('GET', '/v1/gateway/revocations', { token: acme.gatewayToken })).json.serials).toEqual(['deadbeef']);
    // The other tenant's gateway sees none of it.
    expect((await h.api('GET', '/v1/gateway/commands?wait=0', { token: h.tenants.get('globex')!.gatewayToken })).json.commands).toEqual([]);

    await h.api('POST', '/v1/gateway/commands/delivered', { token: acme.gatewayToken, body: { delivered: [{ commandId: cmd.commandId, at: h.clock.now() }] } });
    const d = acme.devices.get('door-1')!;
    const resultId = newMessageId();
    const result = sealAndSign({
      kind: 'event',
      id: resultId,
      tenant: 'acme',
      device: 'door-1',
      seq: ++d.seq,
      body: { type: 'command-result', eventId: resultId, tenant: 'acme', device: 'door-1', commandId: cmd.commandId, outcome: 'applied', reason: null, at: h.clock.now() },
      signer: d.signing,
      recipient: publicKeyRef('x25519', acme.keys.cloudSealing.publicRaw),
      sentAt: h.clock.now(),
    });
    expect((await h.ingest('acme', [{ id: resultId, tenant: 'acme', device: 'door-1', envelope: result }])).json.results[0].status).toBe('stored');
    const list = await h.api('GET', '/v1/tenants/acme/commands?device=door-1', { token: acme.ownerKey });
    const state = list.json.commands.find((c: { commandId: string }) => c.commandId === cmd.commandId);
    expect(state).toMatchObject({ state: 'applied', type: 'revocation-list' });
    expect(state.deliveredAt).toBeGreaterThan(0);
  });

  it('publishes an OpenAPI document describing the routes', async () => {
    const r = await h.api('GET', '/openapi.json');
    expect(r.json.openapi).toBe('3.1.0');
    expect(Object.keys(r.json.paths)).toEqual(expect.arrayContaining(['/v1/gateway/ingest', '/v1/gateway/commands', '/v1/tenants/{tenant}/subjects/{subject}/export']));
    expect(r.json.paths['/v1/gateway/ingest'].post.requestBody).toBeTruthy();
  });
});

describe('ingest of bad photos', () => {
  it('refuses a signed punch whose photo does not decode, records it, and still releases it from the outbox', async () => {
    const good = h.punch('acme', 'door-1', { photo: (await makeJpeg({ seed: 21 })).toString('base64') });
    const bad = h.punch('acme', 'door-1', { photo: '/9j/' + Buffer.alloc(300, 7).toString('base64') });
    const after = h.punch('acme', 'door-1');
    const r = await h.ingest('acme', [good, bad, after].map((p) => ({ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope })));
    expect(r.json.results.map((x: { status: string }) => x.status)).toEqual(['stored', 'rejected', 'stored']);
    expect(r.json.results[1].reason).toMatch(/^photo\.invalid/);
    expect(openReceipt('acme', 'door-1', r.json.receipts[0].envelope).eventIds.sort()).toEqual([good, bad, after].map((p) => p.event.eventId).sort());
  });
});

describe('replays inside one batch', () => {
  it('stores the first of two events sharing a sequence and refuses the second without a receipt', async () => {
    const a = h.punch('acme', 'door-2');
    const seq = h.tenants.get('acme')!.devices.get('door-2')!.seq;
    const b = h.punch('acme', 'door-2', {}, { seq });
    const r = await h.ingest('acme', [a, b].map((p) => ({ id: p.event.eventId, tenant: 'acme', device: 'door-2', envelope: p.envelope })));
    expect(r.json.results.map((x: { status: string }) => x.status)).toEqual(['stored', 'rejected']);
    expect(r.json.results[1].reason).toMatch(/^envelope\.replayed/);
    expect(openReceipt('acme', 'door-2', r.json.receipts[0].envelope).eventIds).toEqual([a.event.eventId]);
    expect(h.service.db.prepare('SELECT code FROM rejections WHERE event_id = ?').pluck().get(b.event.eventId)).toBe('envelope.replayed');
  });
});

describe('revoked devices', () => {
  it('refuses and records events from a terminal whose certificate serial is revoked, without a receipt', async () => {
    const owner = h.tenants.get('acme')!.ownerKey;
    await h.addDevice('acme', 'door-7', { certSerial: '00C3D4E5' });
    await h.addDevice('acme', 'door-8', { certSerial: '7f0001' });
    const before = h.punch('acme', 'door-7');
    expect((await h.ingest('acme', [{ id: before.event.eventId, tenant: 'acme', device: 'door-7', envelope: before.envelope }])).json.results[0].status).toBe('stored');

    // The list names the serial without the DER leading zero byte and in another case.
    expect((await h.api('POST', '/v1/tenants/acme/revocations', { token: owner, body: { serials: ['C3d4E5'] } })).status).toBe(200);
    const after = h.punch('acme', 'door-7', { photo: (await makeJpeg({ seed: 70 })).toString('base64') });
    const other = h.punch('acme', 'door-8');
    const r = await h.ingest('acme', [
      { id: after.event.eventId, tenant: 'acme', device: 'door-7', envelope: after.envelope },
      { id: other.event.eventId, tenant: 'acme', device: 'door-8', envelope: other.envelope },
    ]);
    expect(r.json.results).toEqual([
      { id: after.event.eventId, status: 'rejected', reason: expect.stringMatching(/^device\.revoked/) },
      { id: other.event.eventId, status: 'stored' },
    ]);
    expect(r.json.receipts.map((x: { device: string }) => x.device)).toEqual(['door-8']);
    expect(h.service.db.prepare('SELECT COUNT(*) FROM punches WHERE event_id = ?').pluck().get(after.event.eventId)).toBe(0);
    expect(h.service.db.prepare('SELECT code, device FROM rejections WHERE event_id = ?').get(after.event.eventId)).toEqual({ code: 'device.revoked', device: 'door-7' });
  });
});
