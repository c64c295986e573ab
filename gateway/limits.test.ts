import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { topics } from '../protocol/index.js';
import type { GatewayConfig } from './config.js';
import { startGateway, type Gateway } from './gateway.js';
import { closed, connectClient, createSite, DeviceSim, QUICK_FORWARDER, type Site, until } from './testing/fixture.js';

/*
 * Per-client limits with the DEFAULT configuration (publishRate 200/s, burst 1,000, inflight
 * 200): a terminal replaying a long outage's outbox is slowed to the rate, never disconnected; a status flood is throttled, not served at
 * full speed and not fatal. And, on a second gateway with a small inflight window, a client
 * with more events awaiting their PUBACK than `maxInflight` is disconnected and counted.
 */
const log = createLogger({ name: 'gateway-test', level: 'silent' });
const FORWARDER = { ...QUICK_FORWARDER, batchSize: 500 };
let site: Site;
let defaults: Gateway;
let tight: Gateway;
const clients: MqttClient[] = [];

async function device(gw: Gateway, id: string) {
  const creds = await site.pki.issue('device', id);
  const client = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
  clients.push(client);
  return { client, sim: new DeviceSim(site.tenant, id, site.cloudKey) };
}

/** A QoS 1 PUBLISH packet, encoded by hand so several can be written to the socket at once. */
function publishPacket(topic: string, payload: Buffer, messageId: number): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([messageId >> 8, messageId & 0xff]), payload]);
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x32, ...length]), body]);
}

beforeAll(async () => {
  site = await createSite('acme');
  // durability "normal" (no fsync per commit) lets a one-at-a-time client go faster than the
  // default 200/s even on a slow disk, which is the situation under test; the limits are the defaults.
  const base = site.writeConfig({ durability: 'normal', forwarder: FORWARDER }, 'defaults.json').config;
  expect(base.limits).toEqual(GatewayConfigDefaults);
  defaults = await startGateway(base, { log });
  const small: GatewayConfig = site.writeConfig({ dataDir: 'data-tight', limits: { maxInflight: 3 }, forwarder: FORWARDER }, 'tight.json').config;
  tight = await startGateway(small, { log });
});

/** The documented defaults (docs/gateway.md); the test is about them, so it pins them. */
const GatewayConfigDefaults = { maxPacketBytes: 528384, publishRate: 200, publishBurst: 1000, maxInflight: 200 };

afterAll(async () => {
  for (const c of clients) c.end(true);
  await defaults?.close();
  await tight?.close();
  await site?.cleanup();
});

describe('limits with the default configuration', () => {
  it('slows a terminal replaying 3,000 events to the rate, delivers all of them in order, and keeps it connected', async () => {
    const { client, sim } = await device(defaults, 'door-replay');
    let disconnected = false;
    client.on('close', () => (disconnected = true));
    const sent = Array.from({ length: 3000 }, () => sim.event());
    // A terminal's outbox replay after a long outage, with a few events in flight (device/link.ts
    // sends one at a time; ten at a time goes well over 200/s on any machine, which is the case
    // under test): each PUBACK is awaited before the window moves on.
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < sent.length) {
          const ev = sent[next++]!;
          await client.publishAsync(topics.events('acme', 'door-replay'), ev.envelope, { qos: 1 });
        }
      }),
    );
    expect(disconnected).toBe(false);
    expect(defaults.metrics.violations.get({ limit: 'rate' })).toBe(0);
    // Past the burst of 1,000 the rest waited for their tokens instead of being refused.
    expect(defaults.metrics.publishesThrottled.get()).toBeGreaterThan(0);
    await until(() => site.cloud.events.filter((e) => e.device === 'door-replay').length === sent.length);
    expect(site.cloud.events.filter((e) => e.device === 'door-replay').map((e) => e.id)).toEqual(sent.map((e) => e.id));
    expect(site.cloud.duplicates).toBe(0);
  }, 120_000);

  it('throttles a status flood instead of serving it at full speed, and the flooder stays usable', async () => {
    const { client } = await device(defaults, 'door-flood');
    const throttledBefore = defaults.metrics.publishesThrottled.get();
    const status = (i: number) => JSON.stringify({ type: 'status', tenant: 'acme', device: 'door-flood', state: 'online', at: i, versions: {}, health: {} });
    for (let i = 0; i < 3000; i++) client.publish(topics.status('acme', 'door-flood'), status(i), { qos: 0 });
    // A QoS 1 publish after the flood is answered once the flood ahead of it has been admitted.
    await client.publishAsync(topics.status('acme', 'door-flood'), status(3000), { qos: 1 });
    expect(defaults.metrics.publishesThrottled.get() - throttledBefore).toBeGreaterThan(0);
    expect(client.connected).toBe(true);
    await until(() => defaults.store.pendingPresence().length === 0);
  }, 120_000);
});

describe('inflight window', () => {
  it('disconnects a client with more than maxInflight events awaiting their PUBACK, and keeps the ones it accepted', async () => {
    const { client, sim } = await device(tight, 'door-burst');
    const gone = closed(client);
    const events = Array.from({ length: 6 }, () => sim.event());
    // Six QoS 1 publishes in one write: they reach the broker together, before any commit.
    const stream = (client as unknown as { stream: NodeJS.WritableStream }).stream;
    stream.write(Buffer.concat(events.map((e, i) => publishPacket(topics.events('acme', 'door-burst'), e.envelope, 1000 + i))));
    await gone;
    expect(tight.metrics.violations.get({ limit: 'inflight' })).toBe(1);
    expect(tight.metrics.publishesRefused.get({ reason: 'inflight' })).toBe(1);
    // The three admitted before the limit are on disk and reach the cloud; the rest never do.
    await until(() => tight.store.eventBacklog().depth === 0 && site.cloud.events.filter((e) => e.device === 'door-burst').length === 3);
    expect(site.cloud.events.filter((e) => e.device === 'door-burst').map((e) => e.id)).toEqual(events.slice(0, 3).map((e) => e.id));
  });
});
