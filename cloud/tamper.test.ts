import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyKey } from '../protocol/index.js';
import { flipEnvelopeByte } from '../protocol/fixtures.js';
import type { Rejection } from './ingest.js';
import { deviceKeys } from './testing/fixtures.js';
import { startHarness, type Harness } from './testing/harness.js';

/**
 * Issue 18 item 3: a copy of a stored event with one byte flipped is not a duplicate. Ingest
 * verifies the signature before it deduplicates: each copy is refused as event.tampered,
 * recorded with the device, reported through onRejected, raised as an alarm the admins list
 * and acknowledge, and the stored punch stays exactly as it was.
 */
let h: Harness;
let owner: string;
const rejected: Rejection[] = [];
beforeAll(async () => {
  h = await startHarness(['acme']);
  owner = h.tenants.get('acme')!.ownerKey;
  await h.addDevice('acme', 'door-1');
  h.service.ingest.onRejected = (r) => rejected.push(r);
});
afterAll(async () => h?.close());

const item = (id: string, envelope: Buffer) => ({ id, tenant: 'acme', device: 'door-1', envelope });
const punchRow = (eventId: string) => h.service.db.prepare('SELECT * FROM punches WHERE tenant = ? AND event_id = ?').get('acme', eventId);
const alarms = async (state = 'open') => (await h.api('GET', `/v1/tenants/acme/alarms?state=${state}`, { token: owner })).json.alarms as Array<Record<string, unknown>>;

describe('a stored event replayed with one byte flipped', () => {
  it.each(['body', 'signature', 'header'] as const)('in the %s: refused, recorded, reported, alarmed; the punch is unchanged', async (part) => {
    const { event, envelope } = h.punch('acme', 'door-1');
    expect((await h.ingest('acme', [item(event.eventId, envelope)])).json.results[0].status).toBe('stored');
    const before = punchRow(event.eventId);
    const alarmsBefore = (await alarms()).length;
    rejected.length = 0;

    const tampered = flipEnvelopeByte(envelope, part);
    expect(tampered.equals(envelope)).toBe(false);
    const r = await h.ingest('acme', [item(event.eventId, tampered)]);

    expect(r.json.results).toEqual([{ id: event.eventId, status: 'rejected', reason: expect.stringContaining('event.tampered') }]);
    expect(r.json.receipts).toEqual([]); // nothing the device holds is released by a copy it did not sign
    expect(punchRow(event.eventId)).toEqual(before);
    const rec = h.service.db.prepare('SELECT device, event_id AS eventId, code FROM rejections WHERE event_id = ? ORDER BY id DESC').get(event.eventId);
    expect(rec).toEqual({ device: 'door-1', eventId: event.eventId, code: 'event.tampered' });
    expect(rejected).toEqual([expect.objectContaining({ device: 'door-1', eventId: event.eventId, code: 'event.tampered' })]);
    const open = await alarms();
    expect(open).toHaveLength(alarmsBefore + 1);
    expect(open.at(-1)).toMatchObject({ kind: 'event.tampered', device: 'door-1', objectId: event.eventId, acknowledgedAt: null });
  });

  it('the device’s own copy under the same id (a retry, or its photo-less re-seal) is still a duplicate', async () => {
    const seqBefore = h.tenants.get('acme')!.devices.get('door-1')!.seq;
    const { event, envelope } = h.punch('acme', 'door-1');
    expect((await h.ingest('acme', [item(event.eventId, envelope)])).json.results[0].status).toBe('stored');
    const reseal = h.seal('acme', 'door-1', { ...event, photoDropped: true, reasons: ['photo-dropped'] }, { seq: seqBefore + 1 });
    expect(reseal.equals(envelope)).toBe(false);
    const r = await h.ingest('acme', [item(event.eventId, envelope), item(event.eventId, reseal)]);
    expect(r.json.results.map((x: { status: string }) => x.status)).toEqual(['duplicate', 'duplicate']);
    expect(r.json.receipts).toHaveLength(1);
  });

  it('judges a gateway’s second copy (sent under its copy key) and answers under that key', async () => {
    const { event, envelope } = h.punch('acme', 'door-1');
    const tampered = flipEnvelopeByte(envelope, 'body');
    const key = copyKey(event.eventId, tampered);
    // Both in one batch, as when the copy reached the gateway while the original was queued.
    const r = await h.ingest('acme', [item(event.eventId, envelope), item(key, tampered)]);
    expect(r.json.results).toEqual([
      { id: event.eventId, status: 'stored' },
      { id: key, status: 'rejected', reason: expect.stringContaining('event.tampered') },
    ]);
    // A key that does not match the copy's bytes names nothing.
    const wrong = await h.ingest('acme', [item(copyKey(event.eventId, envelope), tampered)]);
    expect(wrong.json.results[0].reason).toContain('envelope.context-mismatch');
  });

  it('the stored bytes themselves are a duplicate without a signature check, even after the device’s key was replaced', async () => {
    await h.addDevice('acme', 'door-2');
    const { event, envelope } = h.punch('acme', 'door-2');
    expect((await h.ingest('acme', [{ ...item(event.eventId, envelope), device: 'door-2' }])).json.results[0].status).toBe('stored');
    const fresh = deviceKeys();
    const replaced = await h.api('PUT', '/v1/tenants/acme/devices/door-2', {
      token: owner,
      body: { gateway: 'gw-1', signingPublicKey: fresh.signing.publicRaw.toString('base64'), sealingPublicKey: fresh.sealing.publicRaw.toString('base64'), certSerial: '0a1b2d' },
    });
    expect(replaced.json.keysChanged).toBe(true);
    const alarmsBefore = (await alarms()).length;
    // The receipt was lost; the terminal's outbox sends the same bytes again, signed with the old key.
    const retry = await h.ingest('acme', [{ ...item(event.eventId, envelope), device: 'door-2' }]);
    expect(retry.json.results[0].status).toBe('duplicate');
    expect(retry.json.receipts).toHaveLength(1);
    // Other bytes under that id are still judged by the signature: no key vouches for them.
    const tampered = await h.ingest('acme', [{ ...item(event.eventId, flipEnvelopeByte(envelope, 'body')), device: 'door-2' }]);
    expect(tampered.json.results[0].reason).toContain('event.tampered');
    expect((await alarms()).length).toBe(alarmsBefore + 1);
  });

  it('a forged event under a new id raises event.forged', async () => {
    const { event, envelope } = h.punch('acme', 'door-1');
    const r = await h.ingest('acme', [item(event.eventId, flipEnvelopeByte(envelope, 'signature'))]);
    expect(r.json.results[0].reason).toContain('envelope.signature-invalid');
    expect((await alarms()).at(-1)).toMatchObject({ kind: 'event.forged', device: 'door-1', objectId: event.eventId });
    expect(punchRow(event.eventId)).toBeUndefined();
  });

  it('an admin acknowledges an alarm once; both steps are audited', async () => {
    const [first] = await alarms();
    const id = first!.id as number;
    const ack = await h.api('POST', `/v1/tenants/acme/alarms/${id}/acknowledge`, { token: owner });
    expect(ack.status).toBe(200);
    expect((await h.api('POST', `/v1/tenants/acme/alarms/${id}/acknowledge`, { token: owner })).status).toBe(409);
    expect((await h.api('POST', '/v1/tenants/acme/alarms/999999/acknowledge', { token: owner })).status).toBe(404);
    expect((await alarms()).some((a) => a.id === id)).toBe(false);
    expect((await alarms('acknowledged')).find((a) => a.id === id)).toMatchObject({ acknowledgedBy: expect.stringMatching(/^k-/) });
    const audit = (await h.api('GET', '/v1/tenants/acme/audit?limit=5000', { token: owner })).json.entries as Array<Record<string, unknown>>;
    const about = audit.filter((e) => e.objectKind === 'alarm' && e.objectId === String(id)).map((e) => e.action);
    expect(about).toEqual(['alarm.raised', 'alarm.acknowledged']);
  });
});
