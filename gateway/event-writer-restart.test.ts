import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../protocol/index.js';
import { EventWriter } from './event-writer.js';
import type { Gateway } from './gateway.js';
import { GatewayStore } from './store.js';
import { closed, connectClient, createSite, DeviceSim, dieAfterNext, type Site, startWatchedGateway, until } from './testing/fixture.js';

/*
 * The event writer's thread dies with a group in flight (terminated from the test through the
 * writer's handle, right after the group was posted to it). That group must get no PUBACK,
 * the gateway must start a new thread, and the terminal's resend must be acknowledged and
 * reach the cloud exactly once. A thread that keeps dying makes the writer give up loudly.
 */
let site: Site;
let gw: Gateway;
let lines: string[];
let fatal: Error[];
const clients: MqttClient[] = [];

beforeAll(async () => {
  site = await createSite('acme');
  ({ gw, lines, fatal } = await startWatchedGateway(site, 'writer-restart'));
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await gw?.close();
  await site?.cleanup();
});

describe('event writer thread dies', () => {
  it('refuses the group in flight without PUBACK, restarts, and stores the resend once', async () => {
    const creds = await site.pki.issue('device', 'door-1');
    const sim = new DeviceSim('acme', 'door-1', site.cloudKey);
    const first = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    clients.push(first);
    const event = sim.event();
    const dead = gw.eventWriter.thread;
    dieAfterNext(dead, 'append');
    let acked = false;
    first.publish(topics.events('acme', 'door-1'), event.envelope, { qos: 1 }, (err) => {
      if (!err) acked = true;
    });
    // The refused group ends the connection (MQTT 3.1.1 cannot refuse one publish): no PUBACK.
    await closed(first);
    expect(acked).toBe(false);
    await until(() => gw.eventWriter.restarts === 1);
    expect(gw.eventWriter.thread).not.toBe(dead);
    expect(lines.some((l) => l.includes('event writer thread died'))).toBe(true);
    expect(fatal).toEqual([]);

    // The terminal still has the event in its outbox and sends it again on its next connection.
    const second = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    clients.push(second);
    await second.publishAsync(topics.events('acme', 'door-1'), event.envelope, { qos: 1 });
    const later = sim.event();
    await second.publishAsync(topics.events('acme', 'door-1'), later.envelope, { qos: 1 });
    await until(() => site.cloud.events.some((e) => e.id === later.id));
    await until(() => gw.store.eventBacklog().depth === 0);
    expect(site.cloud.events.filter((e) => e.id === event.id)).toHaveLength(1);
    // terminate() may land after the group's commit: then the event was queued though never
    // PUBACKed, and if the forwarder sent it on before the resend arrived, the resend is queued
    // anew and the cloud answers it "duplicate" (idempotent ingest). Stored once either way.
    expect(site.cloud.duplicates).toBeLessThanOrEqual(1);
  }, 60_000);
});

describe('event writer thread keeps dying', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cf-writer-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives up after maxRestarts within a minute: onFatal runs once and every later write is refused', async () => {
    const store = new GatewayStore({ dataDir: dir, durability: 'full' });
    const gaveUp: Error[] = [];
    const writer = new EventWriter(store, { maxRestarts: 1, onFatal: (err) => gaveUp.push(err) });
    const sim = new DeviceSim('acme', 'door-1', site.cloudKey);
    const kill = async () => {
      const thread = writer.thread;
      dieAfterNext(thread, 'append');
      const { id, envelope } = sim.event();
      await expect(writer.append([{ id, device: 'door-1', envelope }])).rejects.toThrow(/event writer thread died/);
    };
    await kill();
    expect(writer.restarts).toBe(1);
    const ok = sim.event();
    await writer.append([{ id: ok.id, device: 'door-1', envelope: ok.envelope }]);
    await kill();
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]!.message).toMatch(/keeps dying/);
    const after = sim.event();
    await expect(writer.append([{ id: after.id, device: 'door-1', envelope: after.envelope }])).rejects.toThrow(/keeps dying/);
    expect(store.nextEvents(10).map((e) => e.id)).toContain(ok.id);
    await writer.close();
    store.close();
  }, 30_000);
});
