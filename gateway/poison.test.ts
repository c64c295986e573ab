import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { topics } from '../protocol/index.js';
import { startGateway, type Gateway } from './gateway.js';
import { closed, connectClient, createSite, DeviceSim, QUICK_FORWARDER, type Site, until } from './testing/fixture.js';

/*
 * One bad item must not block a queue: an event (or presence change) the cloud refuses on its
 * own with a 400 is isolated by splitting the batch, parked (events) or dropped (reports) with
 * the cloud's reason, and everything around it goes through. And a failing report must not
 * hold back the revocation list.
 */
let site: Site;
let gw: Gateway;
const clients: MqttClient[] = [];

async function device(id: string) {
  const creds = await site.pki.issue('device', id);
  const client = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
  clients.push(client);
  return { creds, client, sim: new DeviceSim(site.tenant, id, site.cloudKey) };
}

const status = (device: string) => JSON.stringify({ type: 'status', tenant: 'acme', device, state: 'online', at: Date.now(), versions: { app: '1' }, health: {} });

beforeAll(async () => {
  site = await createSite('acme');
  const { config } = site.writeConfig({
    forwarder: { ...QUICK_FORWARDER, revocationRefreshMs: 200 },
  });
  gw = await startGateway(config, { log: createLogger({ name: 'gateway-test', level: 'silent' }) });
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await gw?.close();
  await site?.cleanup();
});

describe('poison batches', () => {
  it('parks an event the cloud refuses on its own, with its reason, and forwards the rest in order', async () => {
    const { client, sim } = await device('door-p');
    site.cloud.mode = 'error';
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) {
      const ev = sim.event();
      await client.publishAsync(topics.events('acme', 'door-p'), ev.envelope, { qos: 1 });
      sent.push(ev.id);
    }
    const poison = sent[3]!;
    site.cloud.refuseEventIds.add(poison);
    site.cloud.mode = 'up';
    await until(() => gw.store.eventBacklog().depth === 0);

    const atCloud = site.cloud.events.filter((e) => e.device === 'door-p').map((e) => e.id);
    expect(atCloud).toEqual(sent.filter((id) => id !== poison));
    expect(site.cloud.duplicates).toBe(0);
    const health = (await (await fetch(`${gw.opsUrl}/health`)).json()) as { ok: boolean; deadLetters: { count: number; latest: { id: string; device: string; reason: string }[] } };
    expect(health.ok).toBe(true);
    expect(health.deadLetters.count).toBe(1);
    expect(health.deadLetters.latest[0]).toMatchObject({ id: poison, device: 'door-p' });
    expect(health.deadLetters.latest[0]!.reason).toMatch(/^400: .*malformed/);
    const metrics = await (await fetch(`${gw.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/cf_gateway_events_dead_lettered_total 1\b/);
    expect(metrics).toMatch(/cf_gateway_dead_letters 1\b/);

    // The queue keeps moving afterwards.
    const later = sim.event();
    await client.publishAsync(topics.events('acme', 'door-p'), later.envelope, { qos: 1 });
    await until(() => site.cloud.events.some((e) => e.id === later.id));
    expect(gw.store.deadLetters().count).toBe(1);
  });

  it('drops a presence change the cloud refuses on its own and reports the others', async () => {
    site.cloud.presenceDown = true;
    const good = await device('door-q1');
    const bad = await device('door-q2');
    const also = await device('door-q3');
    for (const d of [good, bad, also]) await d.client.publishAsync(topics.status('acme', d.sim.id), status(d.sim.id), { qos: 1 });
    site.cloud.refusePresenceOf.add('door-q2');
    site.cloud.presenceDown = false;
    await until(() => gw.metrics.reportsDropped.get({ kind: 'presence' }) === 1 && gw.store.pendingPresence().length === 0);
    const reported = new Set(site.cloud.presence.map((p) => p.device));
    expect(reported.has('door-q1')).toBe(true);
    expect(reported.has('door-q3')).toBe(true);
    expect(reported.has('door-q2')).toBe(false);
  });

  it('keeps applying revocations while presence reports fail', async () => {
    site.cloud.presenceDown = true;
    const { client, creds } = await device('door-r');
    const gone = closed(client);
    await client.publishAsync(topics.status('acme', 'door-r'), status('door-r'), { qos: 1 });
    await until(() => gw.store.pendingPresence().some((p) => p.device === 'door-r'));
    site.cloud.revokedSerials = [creds.serial];
    site.cloud.revocationVersion++;
    await gone;
    expect(gw.broker.connectedDevices()).not.toContain('door-r');
    expect(site.cloud.presence.some((p) => p.device === 'door-r')).toBe(false);
    site.cloud.presenceDown = false;
  });
});
