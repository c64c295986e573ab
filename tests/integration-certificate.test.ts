import { X509Certificate } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.js';
import { GatewayConfig, resolvePaths } from '../gateway/config.js';
import { startGateway, type Gateway } from '../gateway/gateway.js';
import { certificateIdentity } from '../protocol/cert-identity.js';
import { newMessageId, newSubjectId, topics } from '../protocol/index.js';
import { mosquittoSubArgs } from '../provisioning/integration.js';
import { provision } from '../provisioning/test-support.js';

/*
 * A door-access integration as a panel integrator would run it: `clockface provision
 * integration add` issues the bundle, the real gateway (started from its own provisioned
 * bundle) enforces the role over real TLS, and both mqtt.js and Debian's mosquitto_sub — with
 * exactly the command the CLI and the demo print — read door decisions and terminal status
 * and nothing else, without disturbing any terminal.
 */
let root: string;
let dir: string;
let gw: Gateway;
const clients: MqttClient[] = [];
const children: ChildProcess[] = [];

const integrationBundle = () => join(dir, 'integrations', 'door-panel');
const deviceBundle = (id: string) => join(dir, 'devices', id);

async function ok(argv: string[]) {
  const r = await provision(argv);
  if (r.code !== 0) throw new Error(`provision ${argv.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cf-integration-'));
  dir = join(root, 'acme');
  await ok(['tenant', 'init', '--out', dir, '--tenant', 'acme']);
  await ok(['gateway', 'add', '--out', dir, '--gateway', 'site-1', '--host', 'localhost', '--alt-name', '127.0.0.1']);
  for (const id of ['door-1', 'door-2']) await ok(['device', 'add', '--out', dir, '--device', id, '--gateway', 'site-1', '--profile', 'simulator', '--mode', 'access']);
  await ok(['integration', 'add', '--out', dir, '--integration', 'door-panel', '--gateway', 'site-1']);
  // The gateway from its bundle, as a unit file would start it (no cloud: events stay queued).
  const bundle = join(dir, 'gateways', 'site-1');
  const raw = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as Record<string, unknown>;
  const config = resolvePaths(GatewayConfig.parse({ ...raw, dataDir: join(root, 'gateway-data'), cloud: null, mqtt: { ...(raw.mqtt as object), host: '127.0.0.1', port: 0 } }), bundle);
  gw = await startGateway(config, { log: createLogger({ name: 'gateway-test', level: 'silent' }), ops: false });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const c of clients) c.end(true);
  await gw?.close();
  rmSync(root, { recursive: true, force: true });
});

/** An mqtt.js client from a bundle folder (ca.crt + <role>.crt/.key), as the bundle's owner would connect. */
async function connectFrom(bundle: string, role: 'device' | 'integration', clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync({
    protocol: 'mqtts',
    host: 'localhost',
    port: gw.mqttPort,
    ca: readFileSync(join(bundle, 'ca.crt')),
    cert: readFileSync(join(bundle, `${role}.crt`)),
    key: readFileSync(join(bundle, `${role}.key`)),
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    clientId,
  });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

async function suback(client: MqttClient, filter: string): Promise<number> {
  try {
    const [granted] = await client.subscribeAsync(filter, { qos: 1 });
    return granted!.qos;
  } catch {
    return 128;
  }
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.disconnected ? resolve() : client.once('close', () => resolve())));
}

async function until(what: string, cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
  void what;
}

const status = (device: string) => JSON.stringify({ type: 'status', tenant: 'acme', device, state: 'online', at: Date.now(), versions: { app: '1' }, health: {} });
const decision = (device: string, result: 'granted' | 'denied') =>
  JSON.stringify({ type: 'door', tenant: 'acme', device, door: 'lobby', subject: result === 'granted' ? newSubjectId() : null, result, reasons: [], eventId: newMessageId(), at: Date.now() });

describe('provision integration add', () => {
  it('writes a bundle with the CA, an integration certificate and a private key, and records it for rotation and revocation', async () => {
    const b = integrationBundle();
    const cert = new X509Certificate(readFileSync(join(b, 'integration.crt')));
    expect(certificateIdentity(cert)).toMatchObject({ tenant: 'acme', role: 'integration', id: 'door-panel' });
    expect(statSync(join(b, 'integration.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(b, 'ca.crt'), 'utf8')).toBe(readFileSync(join(dir, 'tenant', 'ca.crt'), 'utf8'));
    const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ tenant: 'acme', integration: 'door-panel', mqtt: { url: 'mqtts://localhost:8883' }, topics: { door: 'cf/v1/acme/+/door', status: 'cf/v1/acme/+/status' } });
    const check = await ok(['check', '--bundle', b]);
    expect(check.json).toMatchObject({ role: 'integration', id: 'door-panel', tenant: 'acme' });

    // A name is a system's, never a person's: the id rule keeps out spaces, dots and '@'.
    for (const name of ['Ana Garcia', 'ana.garcia@example.com', '../x']) {
      const r = await provision(['integration', 'add', '--out', dir, '--integration', name]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/integration name/);
    }
    // Issued twice without --force: refused, the first one is kept.
    expect((await provision(['integration', 'add', '--out', dir, '--integration', 'door-panel'])).code).toBe(1);

    // Revocable like any unit (the gateway here has no cloud to learn it from; the CRL and inventory list it).
    await ok(['integration', 'add', '--out', dir, '--integration', 'old-panel']);
    const serialOf = () => certificateIdentity(new X509Certificate(readFileSync(join(dir, 'integrations', 'old-panel', 'integration.crt'))))!.serial;
    const first = serialOf();
    const rotated = await ok(['rotate', '--out', dir, '--integration', 'old-panel', '--overlap-hours', '1']);
    expect(rotated.json).toMatchObject({ role: 'integration', id: 'old-panel', retiring: [first] });
    const second = serialOf();
    expect(second).not.toBe(first);
    const revoked = await ok(['revoke', '--out', dir, '--integration', 'old-panel']);
    expect([...(revoked.json.newlyRevoked as string[])].sort()).toEqual([first, second].sort());
    expect(revoked.json.refused).toEqual(expect.arrayContaining([first, second]));
  });
});

describe('an integration certificate at the gateway', () => {
  it('mqtt.js: reads door decisions and status of its tenant; refused events, ack, cmd, wildcards and another tenant', async () => {
    const panel = await connectFrom(integrationBundle(), 'integration', 'panel-1');
    const granted: Record<string, number> = {};
    for (const f of ['cf/v1/acme/+/door', 'cf/v1/acme/+/status', 'cf/v1/acme/door-1/door', 'cf/v1/acme/+/events', 'cf/v1/acme/+/ack', 'cf/v1/acme/+/cmd', 'cf/v1/acme/door-1/cmd', 'cf/v1/globex/+/door', 'cf/v1/globex/+/status', 'cf/v1/acme/#', 'clockface/acme/door-1/#', '#']) {
      granted[f] = await suback(panel, f);
    }
    expect(granted).toEqual({
      'cf/v1/acme/+/door': 1,
      'cf/v1/acme/+/status': 1,
      'cf/v1/acme/door-1/door': 1,
      'cf/v1/acme/+/events': 128,
      'cf/v1/acme/+/ack': 128,
      'cf/v1/acme/+/cmd': 128,
      'cf/v1/acme/door-1/cmd': 128,
      'cf/v1/globex/+/door': 128,
      'cf/v1/globex/+/status': 128,
      'cf/v1/acme/#': 128,
      'clockface/acme/door-1/#': 128,
      '#': 128,
    });
    const seen: Array<{ topic: string; body: Record<string, unknown> }> = [];
    panel.on('message', (topic, payload) => seen.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
    const door1 = await connectFrom(deviceBundle('door-1'), 'device', 'door-1');
    await door1.publishAsync(topics.status('acme', 'door-1'), status('door-1'), { qos: 1, retain: true });
    await door1.publishAsync(topics.door('acme', 'door-1'), decision('door-1', 'granted'), { qos: 1 });
    await until('status and decision', () => seen.some((m) => m.topic === topics.door('acme', 'door-1')) && seen.some((m) => m.topic === topics.status('acme', 'door-1')));
    expect(seen.find((m) => m.topic === topics.door('acme', 'door-1'))!.body).toMatchObject({ type: 'door', device: 'door-1', result: 'granted' });
    expect(seen.find((m) => m.topic === topics.status('acme', 'door-1'))!.body).toMatchObject({ type: 'status', device: 'door-1', state: 'online' });
  });

  it('mqtt.js: may not publish anything, on any channel; each attempt ends its connection and reaches no one', async () => {
    const door2 = await connectFrom(deviceBundle('door-2'), 'device', 'door-2');
    const toDevice: string[] = [];
    door2.on('message', (topic) => toDevice.push(topic));
    await door2.subscribeAsync(topics.cmd('acme', 'door-2'), { qos: 1 });
    const refusedBefore = gw.metrics.publishesRefused.get({ reason: 'topic-not-allowed' });
    const channels = ['events', 'status', 'door', 'ack', 'cmd'] as const;
    for (const channel of channels) {
      const panel = await connectFrom(integrationBundle(), 'integration', `panel-pub-${channel}`);
      const gone = closed(panel);
      panel.publish(topics[channel]('acme', 'door-2'), channel === 'door' ? decision('door-2', 'granted') : '{}', { qos: 1 });
      await gone;
    }
    expect(gw.metrics.publishesRefused.get({ reason: 'topic-not-allowed' })).toBe(refusedBefore + channels.length);
    expect(toDevice).toEqual([]);
    expect(door2.connected).toBe(true);
  });

  it('a device certificate still cannot read another device\'s door decisions, nor its own', async () => {
    const door1 = await connectFrom(deviceBundle('door-1'), 'device', 'door-1-sub');
    expect(await suback(door1, topics.door('acme', 'door-2'))).toBe(128);
    expect(await suback(door1, topics.door('acme', 'door-1'))).toBe(128);
    expect(await suback(door1, 'cf/v1/acme/+/door')).toBe(128);
  });

  it('mosquitto_sub with the printed command receives door decisions and status, and no terminal is kicked off', async () => {
    const door2 = await connectFrom(deviceBundle('door-2'), 'device', 'door-2-mosq');
    await door2.publishAsync(topics.status('acme', 'door-2'), status('door-2'), { qos: 1, retain: true });
    const args = mosquittoSubArgs({ tenant: 'acme', bundle: integrationBundle(), host: 'localhost', port: gw.mqttPort, withStatus: true });
    const sub = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(sub);
    let out = '';
    let err = '';
    sub.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    sub.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => sub.once('exit', (code) => r(code)));
    // The retained status arrives as soon as the subscription is in place.
    await Promise.race([until('retained status', () => out.includes(`${topics.status('acme', 'door-2')} `)), exited.then((code) => Promise.reject(new Error(`mosquitto_sub exited ${code}: ${err}`)))]);
    const d = decision('door-2', 'denied');
    await door2.publishAsync(topics.door('acme', 'door-2'), d, { qos: 1 });
    await until('the decision line', () => out.includes(`${topics.door('acme', 'door-2')} ${d}`));
    expect(err).toBe('');
    // Its own session, not a terminal's: both terminals kept their connections.
    expect(door2.connected).toBe(true);
    expect(gw.broker.connectedDevices()).toEqual(expect.arrayContaining(['door-2']));
    sub.kill('SIGTERM');
    await exited;
  });

  it('mosquitto_sub with the integration certificate is denied events and another tenant\'s topics', async () => {
    const base = mosquittoSubArgs({ tenant: 'acme', bundle: integrationBundle(), host: 'localhost', port: gw.mqttPort });
    const withoutTopics = base.slice(0, base.indexOf('-t'));
    for (const topic of ['cf/v1/acme/+/events', 'cf/v1/globex/+/door', 'clockface/acme/door-1/#']) {
      const r = await new Promise<{ out: string; err: string }>((resolve) =>
        execFile('mosquitto_sub', [...withoutTopics, '-t', topic, '-C', '1', '-W', '5'], { timeout: 20_000 }, (_error, stdout, stderr) => resolve({ out: stdout, err: stderr })),
      );
      // mosquitto_sub reports the SUBACK refusal and gives up (with status 0, as it does for any denial).
      expect(r.err).toMatch(/denied/i);
      expect(r.out).toBe('');
    }
  });
});
