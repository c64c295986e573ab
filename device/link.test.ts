import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import {
  DeviceEvent,
  generateKeyPair,
  newMessageId,
  publicKeyRef,
  privateKeyToPem,
  rawPublicKey,
  sealAndSign,
  topics,
  verifyAndOpen,
  type KeyPair,
} from '../protocol/index.js';
import { examplePunch, opaqueSubject } from '../protocol/fixtures.js';
import { createLogger } from '../common/log.js';
import { DeviceStore } from './store.js';
import { EventRecorder, type DeviceEventBody } from './events.js';
import { DeviceLink, type CommandBody } from './link.js';
import { startTestBroker, type TestBroker } from './test-support/broker.js';
import { bundleChild } from './test-support/bundle.js';

const TENANT = 'acme';
const DEVICE = 'door-lobby-1';
const dir = mkdtempSync(join(tmpdir(), 'cf-link-'));
const log = createLogger({ name: 'device-test', level: 'silent' });

const deviceSigning = generateKeyPair('ed25519');
const deviceSealing = generateKeyPair('x25519');
const cloudSealing = generateKeyPair('x25519');
const admin = generateKeyPair('ed25519');
const ref = (k: KeyPair) => publicKeyRef(k.algorithm, rawPublicKey(k.publicKey));

let broker: TestBroker;
let store: DeviceStore;
let recorder: EventRecorder;
let link: DeviceLink;
let cloud: MqttClient;
const received: DeviceEventBody[] = [];
const applied: CommandBody[] = [];
let receiptSeq = 0;
let cmdSeq = 0;
let autoAck = true;

/** The "cloud" side: opens each event, and (when autoAck) answers with a signed receipt. */
function onEvent(payload: Buffer): void {
  const { body } = verifyAndOpen(payload, {
    expect: { kind: 'event', tenant: TENANT, device: DEVICE },
    signers: (id) => (id === ref(deviceSigning).keyId ? ref(deviceSigning) : undefined),
    recipientKeys: [cloudSealing],
    requireSealed: true,
    maxAgeMs: 35 * 86_400_000,
    maxFutureMs: 300_000,
    schema: DeviceEvent,
  });
  received.push(body);
  if (autoAck) sendReceipt([body.eventId]);
}

function sendReceipt(eventIds: string[]): void {
  const env = sealAndSign({
    kind: 'receipt',
    id: newMessageId(),
    tenant: TENANT,
    device: DEVICE,
    seq: ++receiptSeq,
    body: { type: 'ack', tenant: TENANT, device: DEVICE, eventIds, at: Date.now() },
    signer: admin,
  });
  cloud.publish(topics.ack(TENANT, DEVICE), env, { qos: 1 });
}

function command(body: Record<string, unknown>, opts: { signer?: KeyPair; seq?: number; tenant?: string; sealed?: boolean } = {}): Buffer {
  const now = Date.now();
  const full = { commandId: newMessageId(), tenant: TENANT, device: DEVICE, issuedAt: now, expiresAt: now + 60_000, ...body };
  return sealAndSign({
    kind: 'command',
    id: full.commandId as string,
    tenant: opts.tenant ?? TENANT,
    device: DEVICE,
    seq: opts.seq ?? ++cmdSeq,
    body: full,
    signer: opts.signer ?? admin,
    recipient: opts.sealed === false ? undefined : ref(deviceSealing),
    expiresAt: full.expiresAt as number,
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

function punch() {
  return examplePunch({ tenant: TENANT, device: DEVICE });
}

beforeAll(async () => {
  broker = await startTestBroker(TENANT, DEVICE);
  store = new DeviceStore(join(dir, 'device.db'), randomBytes(32));
  recorder = new EventRecorder({
    tenant: TENANT,
    device: DEVICE,
    store,
    signer: deviceSigning,
    cloud: ref(cloudSealing),
    limits: { maxEvents: 1000, maxBytes: 10_000_000 },
    onQueued: () => link?.wake(),
  });
  cloud = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId: 'cloud-side', reconnectPeriod: 0 });
  await cloud.subscribeAsync(topics.events(TENANT, DEVICE), { qos: 1 });
  cloud.on('message', (_t, payload) => onEvent(payload));
});

afterAll(async () => {
  await link?.stop();
  await cloud?.endAsync();
  await broker?.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DeviceLink over a real mTLS aedes broker', () => {
  it('publishes a backlog recorded offline in order and deletes each only on the cloud receipt', async () => {
    const queued = [punch(), punch(), punch()];
    for (const p of queued) recorder.record(p);
    expect(store.outboxSize().count).toBe(3);
    link = new DeviceLink({
      tenant: TENANT,
      device: DEVICE,
      url: broker.url,
      tls: { ca: broker.ca.certPem, cert: broker.device.certPem, key: broker.device.keyPem },
      store,
      recorder,
      adminSigning: ref(admin),
      deviceSealing,
      log,
      applyCommand: async (cmd) => {
        if (cmd.type === 'config-update' && cmd.config.fail === true) throw new Error('config does not validate');
        applied.push(cmd);
      },
      health: () => ({ outbox: store.outboxSize().count }),
      reconnectMs: 200,
    });
    link.start();
    await until(() => store.outboxSize().count === 0, 'outbox to drain');
    expect(received.map((e) => e.eventId)).toEqual(queued.map((p) => p.eventId));
    expect(link.acknowledged).toBe(3);
  });

  it('keeps a retained online status, and the Last Will says offline when the link drops', async () => {
    const statuses: string[] = [];
    const watcher = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId: 'status-watch', reconnectPeriod: 0 });
    watcher.on('message', (_t, payload) => statuses.push((JSON.parse(payload.toString()) as { state: string }).state));
    await watcher.subscribeAsync(topics.status(TENANT, DEVICE), { qos: 1 });
    await until(() => statuses.includes('online'), 'retained online status');
    // Cut the TCP stream under the client: the broker publishes the Will.
    (link as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    await until(() => statuses.includes('offline'), 'Last Will');
    await until(() => statuses.lastIndexOf('online') > statuses.indexOf('offline'), 'online again after reconnect');
    await watcher.endAsync();
  });

  it('reload: new credentials take over without a Last Will, and events recorded meanwhile all arrive', async () => {
    const { X509Certificate } = await import('node:crypto');
    const { issueCertificate } = await import('../provisioning/pki.js');
    const rotated = await issueCertificate({ ca: broker.ca, tenant: TENANT, role: 'device', id: DEVICE });
    const statuses: string[] = [];
    const watcher = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId: 'reload-watch', reconnectPeriod: 0 });
    watcher.on('message', (_t, payload) => statuses.push((JSON.parse(payload.toString()) as { state: string }).state));
    await watcher.subscribeAsync(topics.status(TENANT, DEVICE), { qos: 1 });
    await until(() => statuses.includes('online'), 'retained online status');
    const serials: string[] = [];
    const onClient = (c: { conn: unknown }) => serials.push((c.conn as import('node:tls').TLSSocket).getPeerCertificate().serialNumber);
    broker.aedes.on('client', onClient);

    const before = punch();
    recorder.record(before);
    const reloading = link.reload({ ca: broker.ca.certPem, cert: rotated.certPem, key: rotated.keyPem });
    const during = punch();
    recorder.record(during);
    await reloading;
    const after = punch();
    recorder.record(after);
    await until(() => [before, during, after].every((p) => received.some((e) => e.eventId === p.eventId)), 'all three events');
    await until(() => store.outboxSize().count === 0, 'their receipts');
    expect(link.connected).toBe(true);
    expect(serials).toContain(new X509Certificate(rotated.certPem).serialNumber);
    expect(statuses).not.toContain('offline');
    broker.aedes.off('client', onClient);
    await watcher.endAsync();
  });

  it('reload: credentials the broker refuses leave the link on the ones that worked', async () => {
    const { createCertificateAuthority, issueCertificate } = await import('../provisioning/pki.js');
    const foreign = await createCertificateAuthority({ tenant: TENANT });
    const stranger = await issueCertificate({ ca: foreign, tenant: TENANT, role: 'device', id: DEVICE });
    // The broker's CA is trusted, so the client side of the handshake passes; the broker refuses the certificate.
    await expect(link.reload({ ca: broker.ca.certPem, cert: stranger.certPem, key: stranger.keyPem }, 2000)).rejects.toThrow();
    await until(() => link.connected, 'the link back on its previous credentials');
    const p = punch();
    recorder.record(p);
    await until(() => received.some((e) => e.eventId === p.eventId), 'an event over the restored link');
  });

  it('refuses a broker whose certificate is on the revocation list', async () => {
    const { X509Certificate } = await import('node:crypto');
    const serial = new X509Certificate(broker.serverPair.certPem).serialNumber.toLowerCase().replace(/^0+/, '');
    const other = new DeviceStore(join(dir, 'revoked.db'), randomBytes(32));
    const refusing = new DeviceLink({
      tenant: TENANT, device: 'door-side-2', url: broker.url,
      tls: { ca: broker.ca.certPem, cert: broker.device.certPem, key: broker.device.keyPem },
      store: other, recorder, adminSigning: ref(admin), deviceSealing, log,
      applyCommand: async () => undefined, health: () => ({}), reconnectMs: 100,
      isRevoked: (s) => s === serial,
    });
    refusing.start();
    await until(() => refusing.refusedRevoked >= 2, 'repeated refusals');
    await refusing.stop();
    other.close();
  });

  it('keeps events whose receipt has not come, and a forged receipt deletes nothing', async () => {
    autoAck = false;
    const p = punch();
    recorder.record(p);
    await until(() => received.some((e) => e.eventId === p.eventId), 'publish');
    const forger = generateKeyPair('ed25519');
    const forged = sealAndSign({
      kind: 'receipt', id: newMessageId(), tenant: TENANT, device: DEVICE, seq: 999,
      body: { type: 'ack', tenant: TENANT, device: DEVICE, eventIds: [p.eventId], at: Date.now() }, signer: forger,
    });
    cloud.publish(topics.ack(TENANT, DEVICE), forged, { qos: 1 });
    sendReceipt([newMessageId()]); // a genuine receipt naming something else: a fence for ordering
    await until(() => receiptSeq > 0 && store.outboxSize().count === 1, 'receipts to be processed');
    await new Promise((r) => setTimeout(r, 100));
    expect(store.pending(10).map((e) => e.eventId)).toEqual([p.eventId]);
    sendReceipt([p.eventId]);
    await until(() => store.outboxSize().count === 0, 'genuine receipt');
    autoAck = true;
  });

  it('applies a signed command and rejects tampered, replayed, expired, foreign and unsigned ones, reporting each', async () => {
    const before = received.length;
    const unlock = { type: 'remote-unlock', door: 'lobby', pulseMs: 1000 };
    const good = command(unlock);
    cloud.publish(topics.cmd(TENANT, DEVICE), good, { qos: 1 });
    await until(() => applied.length === 1, 'command applied');

    const tampered = Buffer.from(command(unlock));
    tampered[tampered.length - 5]! ^= 0xff;
    const now = Date.now();
    const expired = command({ ...unlock, issuedAt: now - 120_000, expiresAt: now - 60_000 });
    const foreign = command(unlock, { tenant: 'other-co' });
    const wrongSigner = command(unlock, { signer: generateKeyPair('ed25519') });
    const enrollInClear = command(
      { type: 'enroll-subject', record: { subject: opaqueSubject('s-9'), cardHashes: [], pinHash: null, faceConsent: false, accessGroups: [], templates: [], referencePhotos: [] } },
      { sealed: false },
    );
    // Built after enrollInClear: sequences must rise in the order commands are sent.
    const personalInClear = command({ type: 'remove-subject', subject: opaqueSubject('s-1') }, { sealed: false });
    const failing = command({ type: 'config-update', config: { fail: true } });
    for (const env of [good, tampered, expired, foreign, wrongSigner, enrollInClear, personalInClear, failing]) {
      cloud.publish(topics.cmd(TENANT, DEVICE), env, { qos: 1 });
    }
    await until(() => received.length - before >= 9, 'command results');
    const results = received.slice(before).filter((e) => e.type === 'command-result');
    const outcomes = results.map((r) => (r.type === 'command-result' ? `${r.outcome}:${(r.reason ?? '').split(':')[0]}` : ''));
    expect(outcomes).toEqual([
      'applied:',
      'rejected:envelope.replayed',
      'rejected:envelope.signature-invalid',
      'rejected:envelope.expired',
      'rejected:envelope.context-mismatch',
      'rejected:envelope.unknown-signer',
      'rejected:enroll-subject must be sealed to the device',
      'applied:',
      'failed:config does not validate',
    ]);
    expect(applied.map((c) => c.type)).toEqual(['remote-unlock', 'remove-subject']);
  });

  it('queues punches while the broker is down and drains them in order, each acknowledged once', async () => {
    // Earlier tests' command results may still be waiting for their receipts: settle first.
    await until(() => store.outboxSize().count === 0, 'earlier events to be acknowledged');
    const ackedBefore = link.acknowledged;
    const before = received.length;
    await broker.close();
    await until(() => !link.connected, 'link to notice the broker is gone');
    const offline = Array.from({ length: 5 }, () => punch());
    for (const p of offline) recorder.record(p);
    expect(store.outboxSize().count).toBe(5);
    const { restartTestBroker } = await import('./test-support/broker.js');
    broker = await restartTestBroker(broker);
    await cloud.endAsync();
    cloud = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId: 'cloud-side', reconnectPeriod: 0 });
    await cloud.subscribeAsync(topics.events(TENANT, DEVICE), { qos: 1 });
    cloud.on('message', (_t, payload) => onEvent(payload));
    await until(() => store.outboxSize().count === 0, 'backlog to drain');
    // Redelivery after a reconnect is allowed (the cloud deduplicates); first arrivals keep the order.
    const ids = [...new Set(received.slice(before).map((e) => e.eventId))];
    expect(ids.filter((id) => offline.some((p) => p.eventId === id))).toEqual(offline.map((p) => p.eventId));
    expect(link.acknowledged - ackedBefore).toBe(5);
  });

  it('an event written to the outbox by a process SIGKILLed before publishing is delivered exactly once after restart', async () => {
    const child = await bundleChild('outbox-child');
    try {
      const dbFile = join(dir, 'crash.db');
      const dataKey = randomBytes(32);
      const keysFile = join(dir, 'crash-keys.json');
      writeFileSync(keysFile, JSON.stringify({ tenant: TENANT, device: DEVICE, signingPem: privateKeyToPem(deviceSigning), cloudPublic: rawPublicKey(cloudSealing.publicKey).toString('base64') }));
      const proc = spawn(process.execPath, [child.file, dbFile, dataKey.toString('hex'), keysFile], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => out.includes('\n'), 'child to queue its punch');
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
      const eventId = out.trim().split(' ')[1]!;

      const before = received.filter((e) => e.eventId === eventId).length;
      const crashStore = new DeviceStore(dbFile, dataKey);
      const startLink = () => {
        const l = new DeviceLink({
          tenant: TENANT, device: DEVICE, url: broker.url,
          tls: { ca: broker.ca.certPem, cert: broker.device.certPem, key: broker.device.keyPem },
          store: crashStore, recorder, adminSigning: ref(admin), deviceSealing, log,
          applyCommand: async () => undefined, health: () => ({}), reconnectMs: 200,
        });
        l.start();
        return l;
      };
      await link.stop(); // one terminal per client id
      const restarted = startLink();
      await until(() => crashStore.outboxSize().count === 0, 'crash backlog to drain');
      expect(received.filter((e) => e.eventId === eventId).length - before).toBe(1);
      expect(restarted.acknowledged).toBe(1);
      await restarted.stop();
      // A further restart has nothing left to send.
      const again = startLink();
      await until(() => again.connected, 'second restart');
      await new Promise((r) => setTimeout(r, 200));
      expect(received.filter((e) => e.eventId === eventId).length - before).toBe(1);
      await again.stop();
      crashStore.close();
    } finally {
      child.remove();
    }
  });
});
