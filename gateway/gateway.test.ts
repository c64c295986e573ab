import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { Ack, topics, verifyAndOpen } from '../protocol/index.js';
import { createCertificateAuthority, issueCertificate } from '../provisioning/pki.js';
import type { GatewayConfig } from './config.js';
import { startGateway, type Gateway } from './gateway.js';
import { closed, commandEnvelope, connectClient, createSite, DeviceSim, QUICK_FORWARDER, type Site, until } from './testing/fixture.js';

/*
 * The gateway over real TLS on loopback, with a stand-in cloud speaking the gateway↔cloud
 * contract over HTTPS so failures can be scripted (the real cloud: tests/cross-tier.test.ts). One gateway for the file; one test restarts it on the same data.
 */
const log = createLogger({ name: 'gateway-test', level: process.env.GW_TEST_LOG ?? 'silent' });
let site: Site;
let config: GatewayConfig;
let gw: Gateway;
const clients: MqttClient[] = [];

/** SUBACK code for one filter: the granted QoS, or 128 when refused. */
async function suback(client: MqttClient, filter: string): Promise<number> {
  try {
    const [granted] = await client.subscribeAsync(filter, { qos: 1 });
    return granted!.qos;
  } catch {
    return 128;
  }
}

async function device(id: string) {
  const creds = await site.pki.issue('device', id);
  const client = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
  clients.push(client);
  return { creds, client, sim: new DeviceSim(site.tenant, id, site.cloudKey) };
}

beforeAll(async () => {
  site = await createSite('acme');
  ({ config } = site.writeConfig({
    mqtt: { host: '127.0.0.1', port: 0, ca: 'pki/ca.crt', cert: 'pki/gateway.crt', key: 'pki/gateway.key', wsPort: 0 },
    limits: { maxPacketBytes: 600 * 1024, publishRate: 100, publishBurst: 200, maxInflight: 200 },
    forwarder: QUICK_FORWARDER,
    presence: { offlineGraceMs: 200 },
  }));
  gw = await startGateway(config, { log });
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await gw?.close();
  await site?.cleanup();
});

describe('gateway over TLS', () => {
  it('queues a device event, forwards it, and relays the cloud receipt to the device ack topic', async () => {
    const { client, sim } = await device('door-1');
    const receipts: Buffer[] = [];
    client.on('message', (topic, payload) => topic === topics.ack('acme', 'door-1') && receipts.push(payload));
    await client.subscribeAsync(topics.ack('acme', 'door-1'), { qos: 1 });
    const ev = sim.event();
    await client.publishAsync(topics.events('acme', 'door-1'), ev.envelope, { qos: 1 });
    await until(() => site.cloud.events.some((e) => e.id === ev.id));
    expect(site.cloud.events.find((e) => e.id === ev.id)!.envelope.equals(ev.envelope)).toBe(true);
    await until(() => receipts.length > 0);
    const opened = verifyAndOpen(receipts[0]!, {
      expect: { kind: 'receipt', tenant: 'acme', device: 'door-1' },
      signers: (keyId) => (keyId === site.adminKey.keyId ? { keyId, key: site.adminKey.publicKey } : undefined),
      maxAgeMs: 60_000,
      maxFutureMs: 60_000,
      schema: Ack,
    });
    expect(opened.body.eventIds).toContain(ev.id);
    await until(() => gw.store.outboundDepth() === 0);
  });

  it('queues events without routing them through the broker; status is routed as before', async () => {
    const { client, sim } = await device('door-route');
    const routed: string[] = [];
    const onPublish = (packet: { topic: string }) => routed.push(packet.topic);
    gw.broker.aedes.on('publish', onPublish);
    try {
      const events = [sim.event(), sim.event(), sim.event()];
      for (const ev of events) await client.publishAsync(topics.events('acme', 'door-route'), ev.envelope, { qos: 1 });
      const status = { type: 'status', tenant: 'acme', device: 'door-route', state: 'online', at: Date.now(), versions: {}, health: {} };
      await client.publishAsync(topics.status('acme', 'door-route'), JSON.stringify(status), { qos: 1 });
      // The client goes on publishing after each PUBACK: aedes read its next packets although
      // the events' own routing was skipped.
      await until(() => events.every((ev) => site.cloud.events.some((e) => e.id === ev.id)));
      expect(routed).toContain(topics.status('acme', 'door-route'));
      expect(routed).not.toContain(topics.events('acme', 'door-route'));
    } finally {
      gw.broker.aedes.off('publish', onPublish);
    }
  });

  it('PUBACKs a client\'s publishes in the order they arrived, a status sent between events included (MQTT 3.1.1, 4.6)', async () => {
    const { client, sim } = await device('door-order');
    const sent: number[] = [];
    const acked: number[] = [];
    const onSend = (p: { cmd: string; messageId?: number }) => p.cmd === 'publish' && sent.push(p.messageId!);
    const onReceive = (p: { cmd: string; messageId?: number }) => p.cmd === 'puback' && acked.push(p.messageId!);
    client.on('packetsend', onSend);
    client.on('packetreceive', onReceive);
    try {
      const status = JSON.stringify({ type: 'status', tenant: 'acme', device: 'door-order', state: 'online', at: Date.now(), versions: {}, health: {} });
      // One tick, so one write and one read at the broker: the status's PUBACK could go out at
      // once, the events' only after their commit.
      const all = [
        client.publishAsync(topics.events('acme', 'door-order'), sim.event().envelope, { qos: 1 }),
        client.publishAsync(topics.events('acme', 'door-order'), sim.event().envelope, { qos: 1 }),
        client.publishAsync(topics.status('acme', 'door-order'), status, { qos: 1 }),
        client.publishAsync(topics.events('acme', 'door-order'), sim.event().envelope, { qos: 1 }),
      ];
      await Promise.all(all);
      expect(sent).toHaveLength(4);
      expect(acked).toEqual(sent);
    } finally {
      client.off('packetsend', onSend);
      client.off('packetreceive', onReceive);
    }
  });

  it('serves MQTT over WebSocket with the same certificate rules', async () => {
    const creds = await site.pki.issue('operator', 'kiosk');
    const ws = await mqtt.connectAsync({ protocol: 'wss', host: '127.0.0.1', port: gw.wsPort!, path: '/', ca: readFileSync(site.pki.caFile), cert: creds.certPem, key: creds.keyPem, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(ws);
    expect(await suback(ws, topics.tenantWildcard('acme', 'status'))).toBe(1);
    expect(await suback(ws, topics.tenantWildcard('acme', 'events'))).toBe(128);
    // Without a client certificate the WebSocket upgrade never happens.
    await expect(mqtt.connectAsync({ protocol: 'wss', host: '127.0.0.1', port: gw.wsPort!, path: '/', ca: readFileSync(site.pki.caFile), protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 })).rejects.toThrow();
  });

  it('refuses certificates from another CA, expired ones, another tenant, and roles without broker rights', async () => {
    const refused = (creds: { cert: string; key: string }) => connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    const foreignCa = await createCertificateAuthority({ tenant: 'acme' });
    const foreign = await issueCertificate({ ca: foreignCa, tenant: 'acme', role: 'device', id: 'door-1' });
    await expect(refused({ cert: foreign.certPem, key: foreign.keyPem })).rejects.toThrow();

    const past = new Date(Date.now() - 10 * 86_400_000);
    const expired = await site.pki.issue('device', 'door-old', { notBefore: past, notAfter: new Date(past.getTime() + 86_400_000) });
    await expect(refused({ cert: expired.certPem, key: expired.keyPem })).rejects.toThrow();

    const otherTenantCa = await createCertificateAuthority({ tenant: 'globex' });
    const otherTenant = await issueCertificate({ ca: otherTenantCa, tenant: 'globex', role: 'device', id: 'door-1' });
    await expect(refused({ cert: otherTenant.certPem, key: otherTenant.keyPem })).rejects.toThrow();

    // Signed by this tenant's CA but naming another tenant: TLS passes, the identity check does not.
    const misnamed = await issueCertificate({ ca: site.pki.ca, tenant: 'globex', role: 'device', id: 'door-1' });
    await expect(refused({ cert: misnamed.certPem, key: misnamed.keyPem })).rejects.toThrow(/not authorized/i);
    const gatewayRole = await site.pki.issue('gateway', 'other-gw');
    await expect(refused({ cert: gatewayRole.certPem, key: gatewayRole.keyPem })).rejects.toThrow(/not authorized/i);

    expect(gw.metrics.connectsRefused.get({ reason: 'tls' })).toBeGreaterThanOrEqual(3);
    expect(gw.metrics.connectsRefused.get({ reason: 'other-tenant' })).toBe(1);
    expect(gw.metrics.connectsRefused.get({ reason: 'no-broker-rights' })).toBe(1);
  });

  it('drops a connected device whose certificate the cloud revokes, and refuses it afterwards', async () => {
    const { creds, client } = await device('door-rev');
    site.cloud.revokedSerials = [creds.serial];
    const gone = closed(client);
    await gw.sync!.refreshRevocations();
    await gone;
    await expect(connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds })).rejects.toThrow(/not authorized/i);
    expect(gw.metrics.connectsRefused.get({ reason: 'revoked' })).toBe(1);
    site.cloud.revokedSerials = [];
  });

  it('refuses cross-device subscriptions and disconnects cross-device publishes', async () => {
    const { client } = await device('door-2');
    const filters = [topics.cmd('acme', 'door-3'), topics.ack('acme', 'door-3'), 'cf/v1/acme/#', topics.events('acme', 'door-2'), topics.cmd('acme', 'door-2')];
    const granted = [];
    for (const f of filters) granted.push(await suback(client, f));
    expect(granted).toEqual([128, 128, 128, 128, 1]);

    const other = new DeviceSim('acme', 'door-3', site.cloudKey);
    const gone = closed(client);
    client.publish(topics.events('acme', 'door-3'), other.event().envelope, { qos: 1 });
    await gone;

    // Its own topic, but an envelope whose header names another device.
    const { client: again } = await device('door-2b');
    const goneAgain = closed(again);
    again.publish(topics.events('acme', 'door-2b'), other.event().envelope, { qos: 1 });
    await goneAgain;
    expect(gw.metrics.publishesRefused.get({ reason: 'topic-not-allowed' })).toBe(1);
    expect(gw.metrics.publishesRefused.get({ reason: 'context-mismatch' })).toBe(1);
  });

  it('lets an integration read door decisions of its tenant and nothing else', async () => {
    const creds = await site.pki.issue('integration', 'door-system');
    const integration = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    clients.push(integration);
    const filters = [topics.tenantWildcard('acme', 'door'), topics.tenantWildcard('acme', 'events'), '#', 'cf/v1/globex/+/door', topics.cmd('acme', 'door-4')];
    const granted = [];
    for (const f of filters) granted.push(await suback(integration, f));
    expect(granted).toEqual([1, 128, 128, 128, 128]);
    const seen: string[] = [];
    integration.on('message', (topic) => seen.push(topic));
    const { client, sim } = await device('door-4');
    const decision = { type: 'door', tenant: 'acme', device: 'door-4', door: 'lobby', subject: null, result: 'denied', reasons: [], eventId: sim.event().id, at: Date.now() };
    await client.publishAsync(topics.door('acme', 'door-4'), JSON.stringify(decision), { qos: 1 });
    await until(() => seen.includes(topics.door('acme', 'door-4')));
    // The integration may not publish anything.
    const gone = closed(integration);
    integration.publish(topics.door('acme', 'door-4'), JSON.stringify(decision), { qos: 1 });
    await gone;
  });

  it('refuses a door decision that names another device than the certificate\'s', async () => {
    const creds = await site.pki.issue('integration', 'door-watch');
    const integration = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    clients.push(integration);
    const seen: string[] = [];
    integration.on('message', (_topic, payload) => seen.push(payload.toString()));
    await integration.subscribeAsync(topics.tenantWildcard('acme', 'door'), { qos: 1 });
    const { client, sim } = await device('door-8');
    const decision = (forDevice: string) => JSON.stringify({ type: 'door', tenant: 'acme', device: forDevice, door: 'lobby', subject: null, result: 'granted', reasons: [], eventId: sim.event().id, at: Date.now() });
    const refusedBefore = gw.metrics.publishesRefused.get({ reason: 'malformed' });
    const gone = closed(client);
    client.publish(topics.door('acme', 'door-8'), decision('door-9'), { qos: 1 });
    await gone;
    expect(gw.metrics.publishesRefused.get({ reason: 'malformed' })).toBe(refusedBefore + 1);
    // Its own decision, from a new connection, goes through; the forged one never did.
    const { client: again } = await device('door-8');
    await again.publishAsync(topics.door('acme', 'door-8'), decision('door-8'), { qos: 1 });
    await until(() => seen.length === 1);
    expect(JSON.parse(seen[0]!)).toMatchObject({ device: 'door-8' });
  });

  it('cuts oversized packets at the header', async () => {
    const { client } = await device('door-big');
    const gone = closed(client);
    client.publish(topics.events('acme', 'door-big'), Buffer.alloc(700 * 1024, 1), { qos: 1 });
    await gone;
    expect(gw.metrics.violations.get({ limit: 'packet-size' })).toBe(1);
  });

  it('keeps events while the cloud is down and drains them in order without duplicates when it is back', async () => {
    site.cloud.mode = 'error';
    const before = site.cloud.events.length;
    const sent: string[] = [];
    const devices = await Promise.all(['door-5', 'door-6', 'door-7'].map((id) => device(id)));
    for (let i = 0; i < 150; i++) {
      const d = devices[i % 3]!;
      const ev = d.sim.event();
      await d.client.publishAsync(topics.events('acme', d.sim.id), ev.envelope, { qos: 1 });
      sent.push(ev.id);
    }
    // Every PUBACKed event is on disk while the cloud refuses them.
    expect(gw.store.eventBacklog().depth).toBe(150);
    await until(() => gw.forwarder!.state === 'circuit-open');
    const metrics = await (await fetch(`${gw.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/cf_gateway_backlog_depth 150/);
    const health = await fetch(`${gw.opsUrl}/health`);
    expect(((await health.json()) as { backlog: { depth: number } }).backlog.depth).toBe(150);

    site.cloud.mode = 'reset';
    await until(() => gw.metrics.forwardFailures.get({ kind: 'network' }) > 0);
    site.cloud.mode = 'up';
    await until(() => gw.store.eventBacklog().depth === 0);
    expect(site.cloud.events.slice(before).map((e) => e.id)).toEqual(sent);
    expect(site.cloud.duplicates).toBe(0);
  });

  it('keeps commands for an offline device across a gateway restart and delivers them on subscribe', async () => {
    const cmd = commandEnvelope(site.adminKey, 'acme', 'door-9');
    site.cloud.queueCommand('door-9', cmd.envelope, Date.now() + 3_600_000);
    const stale = commandEnvelope(site.adminKey, 'acme', 'door-9', Date.now() - 1000);
    site.cloud.queueCommand('door-9', stale.envelope, Date.now() - 1000);
    await until(() => gw.store.pendingOutbound('door-9', 'cmd', 0).length === 2);

    await gw.close();
    gw = await startGateway(config, { log });
    expect(gw.store.pendingOutbound('door-9', 'cmd').map((m) => m.id)).toEqual([cmd.id]);

    const creds = await site.pki.issue('device', 'door-9');
    const will = { topic: topics.status('acme', 'door-9'), payload: Buffer.from(JSON.stringify({ type: 'status', tenant: 'acme', device: 'door-9', state: 'offline', at: Date.now(), versions: {}, health: {} })), qos: 1 as const, retain: true };
    const client = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds, will });
    const got: Buffer[] = [];
    client.on('message', (_t, payload) => got.push(payload));
    await client.publishAsync(topics.status('acme', 'door-9'), JSON.stringify({ type: 'status', tenant: 'acme', device: 'door-9', state: 'online', at: Date.now(), versions: { app: '1' }, health: {} }), { qos: 1, retain: true });
    await client.subscribeAsync(topics.cmd('acme', 'door-9'), { qos: 1 });
    await until(() => got.length === 1);
    expect(got[0]!.equals(cmd.envelope)).toBe(true);
    await until(() => site.cloud.delivered.some((d) => d.commandId === cmd.id));
    expect(gw.store.pendingOutbound('door-9', 'cmd')).toEqual([]);
    await until(() => site.cloud.presence.some((p) => p.device === 'door-9' && p.state === 'online'));

    // An abrupt loss of the terminal publishes its Last Will: reported offline.
    client.stream.destroy();
    await until(() => site.cloud.presence.some((p) => p.device === 'door-9' && p.state === 'offline'));
  });

  it('delivers to a device whose subscription the broker kept from its previous connection', async () => {
    const creds = await site.pki.issue('device', 'door-10');
    const first = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    await first.subscribeAsync(topics.cmd('acme', 'door-10'), { qos: 1 });
    await first.endAsync();
    await until(() => !gw.broker.connectedDevices().includes('door-10'));
    const cmd = commandEnvelope(site.adminKey, 'acme', 'door-10');
    site.cloud.queueCommand('door-10', cmd.envelope);
    await until(() => gw.store.pendingOutbound('door-10', 'cmd').length === 1);

    // Reconnects and does not subscribe again: the session's subscription still routes the command.
    const got: Buffer[] = [];
    const again = await connectClient({ port: gw.mqttPort, ca: site.pki.caFile, creds });
    clients.push(again);
    again.on('message', (_t, payload) => got.push(payload));
    await until(() => got.length > 0);
    expect(got[0]!.equals(cmd.envelope)).toBe(true);
    await until(() => site.cloud.delivered.some((d) => d.commandId === cmd.id));
  });
});

