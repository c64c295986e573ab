import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newMessageId } from '../protocol/index.js';
import { startHarness, type Harness } from './testing/harness.js';

/**
 * Delivery state survives erasure: cancelling a subject's personal commands drops every
 * envelope (sealed templates and photos) but turns only the undelivered ones into
 * `cancelled`; what a terminal already received or applied stays visible as such.
 */
let h: Harness;
let owner: string;
beforeAll(async () => {
  h = await startHarness(['acme']);
  owner = h.tenants.get('acme')!.ownerKey;
  const gw2 = await h.api('POST', '/v1/tenants/acme/gateways', { token: owner, body: { gateway: 'gw-2' } });
  expect(gw2.status).toBe(201);
  for (const d of ['door-1', 'door-2', 'door-3']) await h.addDevice('acme', d);
  // Behind a gateway that never polls: its command stays queued.
  await h.addDevice('acme', 'door-4', { gateway: 'gw-2' });
});
afterAll(async () => h?.close());

type Row = { device: string; type: string; state: string; envelope: Buffer | null; commandId: string };
const rows = (subject: string) =>
  h.service.db.prepare('SELECT device, type, state, envelope, command_id AS commandId FROM commands WHERE subject = ? ORDER BY seq').all(subject) as Row[];

describe('outbox cancellation on erasure', () => {
  it('keeps delivered and applied states, cancels only queued and fetched, and drops every personal envelope', async () => {
    const t = h.tenants.get('acme')!;
    const { subject } = (await h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body: { cardHashes: ['b'.repeat(64)] } })).json;
    const enrolls = rows(subject);
    expect(enrolls.map((r) => r.device)).toEqual(['door-1', 'door-2', 'door-3', 'door-4']);
    const byDevice = new Map(enrolls.map((r) => [r.device, r.commandId] as const));

    // gw-1 fetches its three; door-1's is delivered; door-2 reports it applied; door-3's stays fetched.
    const fetched = await h.api('GET', '/v1/gateway/commands?cursor=0', { token: t.gatewayToken });
    expect(fetched.json.commands).toHaveLength(3);
    const delivered = await h.api('POST', '/v1/gateway/commands/delivered', {
      token: t.gatewayToken,
      body: { delivered: ['door-1', 'door-2'].map((d) => ({ commandId: byDevice.get(d)!, at: h.clock.now() })) },
    });
    expect(delivered.json.updated).toBe(2);
    const eventId = newMessageId();
    const result = h.seal('acme', 'door-2', { type: 'command-result', eventId, tenant: 'acme', device: 'door-2', commandId: byDevice.get('door-2')!, outcome: 'applied', reason: null, at: h.clock.now() });
    expect((await h.ingest('acme', [{ id: eventId, tenant: 'acme', device: 'door-2', envelope: result }])).json.results[0].status).toBe('stored');

    const erased = await h.api('DELETE', `/v1/tenants/acme/subjects/${subject}`, { token: owner });
    expect(erased.status).toBe(200);

    const after = rows(subject);
    const enrollState = Object.fromEntries(after.filter((r) => r.type === 'enroll-subject').map((r) => [r.device, r.state]));
    expect(enrollState).toEqual({ 'door-1': 'delivered', 'door-2': 'applied', 'door-3': 'cancelled', 'door-4': 'cancelled' });
    for (const r of after.filter((x) => x.type === 'enroll-subject')) expect(r.envelope, r.device).toBeNull();
    // The erase commands themselves go out to every terminal.
    const erases = after.filter((r) => r.type === 'erase-subject');
    expect(erases).toHaveLength(4);
    for (const r of erases) expect(r.state === 'queued' && r.envelope !== null).toBe(true);

    // Admins see the real delivery state.
    const listed = (await h.api('GET', `/v1/tenants/acme/commands?subject=${subject}`, { token: owner })).json.commands as Array<{ device: string; type: string; state: string }>;
    expect(listed.filter((c) => c.type === 'enroll-subject').map((c) => c.state)).toEqual(['delivered', 'applied', 'cancelled', 'cancelled']);
    // Cancelled commands are no longer served to the gateway.
    const again = await h.api('GET', '/v1/gateway/commands?cursor=0', { token: t.gatewayToken });
    expect((again.json.commands as Array<{ commandId: string }>).some((c) => c.commandId === byDevice.get('door-3'))).toBe(false);
  });
});
