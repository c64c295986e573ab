import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../protocol/index.js';
import { ingestBody } from './cloud-client.js';
import { ForwardReader } from './forward-reader.js';
import { INGEST_REQUEST_BYTES } from './forwarder.js';
import type { Gateway } from './gateway.js';
import { GatewayStore } from './store.js';
import { connectClient, createSite, DeviceSim, dieAfterNext, type Site, startWatchedGateway, until } from './testing/fixture.js';

/*
 * The forwarder's batches are read and encoded on a thread of their own (a real worker with its
 * own connection to a real SQLite file). What it hands back must be exactly what encoding the
 * queue on the broker's thread would have sent, and a reader thread that dies must cost a
 * retry, not an event.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempStore(): GatewayStore {
  const dir = mkdtempSync(join(tmpdir(), 'cf-fwd-reader-'));
  dirs.push(dir);
  return new GatewayStore({ dataDir: dir, durability: 'normal' });
}

describe('forward reader thread', () => {
  it('reads the queue in order and encodes the same request the broker thread would have', async () => {
    const store = tempStore();
    const events = Array.from({ length: 30 }, (_, i) => ({ id: `e${i}`, device: `door-${i % 4}`, envelope: Buffer.alloc(100 + i, i) }));
    store.appendEvents(events);
    const reader = new ForwardReader(store, 'acme');
    const batch = await reader.next(20);
    expect(batch.events.map((e) => e.id)).toEqual(events.slice(0, 20).map((e) => e.id));
    expect(batch.events.map((e) => e.seq)).toEqual([...Array(20).keys()].map((i) => i + 1));
    expect(Buffer.isBuffer(batch.request.body)).toBe(true);
    expect(batch.request.body.equals(ingestBody(events.slice(0, 20).map((e) => ({ ...e, tenant: 'acme' }))))).toBe(true);
    expect(batch.more).toBe(true);
    expect((await reader.next(10, 20)).more).toBe(false);
    expect((await reader.next(10, 25)).events.map((e) => e.id)).toEqual(['e25', 'e26', 'e27', 'e28', 'e29']);
    // A later read sees what was committed since, on the other connection.
    store.appendEvents([{ id: 'late', device: 'door-1', envelope: Buffer.from('x') }]);
    expect((await reader.next(100)).events.map((e) => e.id).slice(-2)).toEqual(['e29', 'late']);
    await reader.close();
    store.close();
  });

  it('keeps a queue of punch photos within one request', async () => {
    const store = tempStore();
    store.appendEvents(Array.from({ length: 300 }, (_, i) => ({ id: `p${i}`, device: 'door-1', envelope: Buffer.alloc(80_000, 1) })));
    const reader = new ForwardReader(store, 'acme');
    const batch = await reader.next(500);
    expect(batch.events.length).toBeGreaterThan(150);
    expect(batch.events.length).toBeLessThan(300);
    expect(batch.request.body.length).toBeLessThanOrEqual(INGEST_REQUEST_BYTES);
    expect(batch.more).toBe(true);
    await reader.close();
    store.close();
  });

  it('refuses the read in flight when the thread dies and serves the next one from a new thread', async () => {
    const store = tempStore();
    store.appendEvents([{ id: 'a', device: 'door-1', envelope: Buffer.from('one') }]);
    const reader = new ForwardReader(store, 'acme');
    const dead = reader.thread;
    dieAfterNext(dead, 'batch');
    await expect(reader.next(10)).rejects.toThrow(/forward reader thread died/);
    await until(() => reader.thread !== dead);
    expect((await reader.next(10)).events.map((e) => e.id)).toEqual(['a']);
    await reader.close();
    store.close();
  });
});

describe('forward reader thread dies under a running gateway', () => {
  let site: Site;
  let gw: Gateway;
  let lines: string[];
  let fatal: Error[];
  let client: MqttClient | undefined;

  beforeAll(async () => {
    site = await createSite('acme');
    ({ gw, lines, fatal } = await startWatchedGateway(site, 'reader-restart'));
  });
  afterAll(async () => {
    client?.end(true);
    await gw?.close();
    await site?.cleanup();
  });

  it('forwards every event once after the reader is replaced', async () => {
    const creds = await site.pki.issue('device', 'door-1');
    const sim = new DeviceSim('acme', 'door-1', site.cloudKey);
    client = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    dieAfterNext(gw.forwardReader!.thread, 'batch');
    const sent = Array.from({ length: 20 }, () => sim.event());
    for (const e of sent) await client.publishAsync(topics.events('acme', 'door-1'), e.envelope, { qos: 1 });
    await until(() => sent.every((e) => site.cloud.events.some((c) => c.id === e.id)));
    await until(() => gw.store.eventBacklog().depth === 0);
    expect(lines.some((l) => l.includes('forward reader thread died'))).toBe(true);
    expect(site.cloud.events.map((e) => e.id)).toEqual(sent.map((e) => e.id));
    expect(site.cloud.duplicates).toBe(0);
    expect(fatal).toEqual([]);
  }, 60_000);

  it('drains a backlog in order through failed batches and a parked one, though each next batch was read ahead', async () => {
    const creds = await site.pki.issue('device', 'door-2');
    const sim = new DeviceSim('acme', 'door-2', site.cloudKey);
    const door2 = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    site.cloud.mode = 'error';
    const sent = Array.from({ length: 180 }, () => sim.event());
    const poison = sent[97]!;
    site.cloud.refuseEventIds.add(poison.id);
    for (const e of sent) await door2.publishAsync(topics.events('acme', 'door-2'), e.envelope, { qos: 1 });
    // Every attempt during the outage fails with the next batch already read; then the cloud is back.
    const failures = () => lines.filter((l) => (JSON.parse(l) as { msg: string }).msg === 'forwarding failed; will retry').length;
    await until(() => failures() >= 2);
    site.cloud.mode = 'up';
    await until(() => gw.store.eventBacklog().depth === 0);
    door2.end(true);
    const arrived = site.cloud.events.filter((e) => e.device === 'door-2').map((e) => e.id);
    expect(arrived).toEqual(sent.filter((e) => e !== poison).map((e) => e.id));
    expect(gw.store.deadLetters(5).latest.map((d) => d.id)).toContain(poison.id);
    expect(site.cloud.duplicates).toBe(0);
  }, 60_000);
});
