import { Writable } from 'node:stream';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { copyKey, topics } from '../protocol/index.js';
import { flipEnvelopeByte } from '../protocol/fixtures.js';
import { startGateway, type Gateway } from './gateway.js';
import { connectClient, createSite, DeviceSim, QUICK_FORWARDER, type Site, until } from './testing/fixture.js';

/*
 * Issue 18 item 3 at the gateway: a copy of a queued event with other bytes under the same id
 * was PUBACKed and dropped by INSERT OR IGNORE without a trace. The gateway (real TLS broker,
 * event writer thread, forwarder; a stand-in cloud that is down while the original is queued)
 * now queues the copy under its copy key, logs it with the device, counts it, and forwards it
 * for the cloud to judge (the cloud side: cloud/tamper.test.ts).
 */
const lines: Array<Record<string, unknown>> = [];
const log = createLogger({
  name: 'gateway-test',
  level: 'warn',
  destination: new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }),
});
let site: Site;
let gw: Gateway;
let client: MqttClient;

beforeAll(async () => {
  site = await createSite('acme');
  const { config } = site.writeConfig({ mqtt: { host: '127.0.0.1', port: 0, ca: 'pki/ca.crt', cert: 'pki/gateway.crt', key: 'pki/gateway.key' }, forwarder: QUICK_FORWARDER });
  gw = await startGateway(config, { log });
  client = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds: await site.pki.issue('device', 'door-1') });
});

afterAll(async () => {
  client?.end(true);
  await gw?.close();
  await site?.cleanup();
});

describe('a second copy of a queued event with other bytes', () => {
  it('is queued under its copy key, logged with the device, counted, and forwarded to the cloud', async () => {
    site.cloud.mode = 'error'; // the original stays queued
    const sim = new DeviceSim('acme', 'door-1', site.cloudKey);
    const ev = sim.event();
    const tampered = flipEnvelopeByte(ev.envelope, 'body');
    await client.publishAsync(topics.events('acme', 'door-1'), ev.envelope, { qos: 1 });
    await client.publishAsync(topics.events('acme', 'door-1'), tampered, { qos: 1 });
    await client.publishAsync(topics.events('acme', 'door-1'), ev.envelope, { qos: 1 }); // a plain retry: nothing new

    const key = copyKey(ev.id, tampered);
    expect(gw.store.nextEvents(10).map((e) => e.id)).toEqual([ev.id, key]);
    await until(() => lines.some((l) => l.queuedAs === key));
    expect(lines.find((l) => l.queuedAs === key)).toMatchObject({ device: 'door-1', eventId: ev.id });
    expect(gw.metrics.registry.render()).toContain('cf_gateway_event_copies_total{device="door-1"} 1');

    site.cloud.mode = 'up';
    await until(() => site.cloud.storedIds().includes(key));
    const forwarded = site.cloud.events.find((e) => e.id === key)!;
    expect(forwarded.envelope.equals(tampered)).toBe(true);
    expect(site.cloud.events.find((e) => e.id === ev.id)!.envelope.equals(ev.envelope)).toBe(true);
    await until(() => gw.store.eventBacklog().depth === 0);
  });
});
