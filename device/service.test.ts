import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import mqtt, { type MqttClient } from 'mqtt';
import {
  DeviceEvent,
  cardHash,
  generateKeyPair,
  hashPin,
  newMessageId,
  privateKeyToPem,
  publicKeyRef,
  rawPublicKey,
  sealAndSign,
  topics,
  verifyAndOpen,
  type KeyPair,
} from '../protocol/index.js';
import { createLogger } from '../common/log.js';
import { DeviceConfig } from './config.js';
import { startDeviceService, type DeviceService } from './service.js';
import { castFromSamples, type Person } from '../demo/people.js';
import { WasmTerminalFaceEngine } from './face/terminal-engine.js';
import { startTestBroker, type TestBroker } from './test-support/broker.js';
import type { DeviceEventBody, PunchBody } from './events.js';
import type { ScreenState } from './terminal.js';
import type { SimulatedGpio } from './hardware/index.js';

/*
 * The terminal over real parts: mTLS aedes on loopback, SQLite files, the replay camera showing
 * real face photos, the serial card reader on a socat pseudo-terminal, the GPIO simulator.
 * The face engine is the real one (WASM), on faces cut from the photos @vladmandic/face-api ships.
 */
const TENANT = 'acme';
const DEVICE = 'door-lobby-1';
const dir = mkdtempSync(join(tmpdir(), 'cf-device-'));
const camDir = join(dir, 'camera');
const ptyPort = join(dir, 'reader-port');
const ptyHost = join(dir, 'reader-host');

const admin = generateKeyPair('ed25519');
const cloudSealing = generateKeyPair('x25519');
const deviceSigning = generateKeyPair('ed25519');
const deviceSealing = generateKeyPair('x25519');
const pepper = randomBytes(32);
const ref = (k: KeyPair) => publicKeyRef(k.algorithm, rawPublicKey(k.publicKey));

let broker: TestBroker;
let socat: ChildProcess;
let hostFd: number;
let service: DeviceService;
let face: WasmTerminalFaceEngine;
let anna: Person;
let ben: Person;
let stranger: Person;
let cloud: MqttClient;
const received: DeviceEventBody[] = [];
const doorMessages: { result: string }[] = [];
const screens: ScreenState[] = [];
let relayOpens = 0;
let cmdSeq = 0;
let receiptSeq = 0;

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

function sendCommand(body: Record<string, unknown>): string {
  const now = Date.now();
  const commandId = newMessageId();
  const env = sealAndSign({
    kind: 'command',
    id: commandId,
    tenant: TENANT,
    device: DEVICE,
    seq: ++cmdSeq,
    body: { commandId, tenant: TENANT, device: DEVICE, issuedAt: now, expiresAt: now + 60_000, ...body },
    signer: admin,
    recipient: ref(deviceSealing),
    expiresAt: now + 60_000,
  });
  cloud.publish(topics.cmd(TENANT, DEVICE), env, { qos: 1 });
  return commandId;
}

async function command(body: Record<string, unknown>): Promise<void> {
  const id = sendCommand(body);
  await until(() => received.some((e) => e.type === 'command-result' && e.commandId === id), `result of ${String(body.type)}`);
  const r = received.find((e) => e.type === 'command-result' && e.commandId === id);
  expect(r?.type === 'command-result' && r.outcome).toBe('applied');
}

/** A person steps in front of the camera: the replay camera now loops their frame. */
async function show(person: Person): Promise<void> {
  rmSync(camDir, { recursive: true, force: true });
  mkdirSync(camDir);
  writeFileSync(join(camDir, 'frame.jpg'), person.frame);
  const cam = service.hardware.camera!;
  await cam.stop();
  await cam.start();
}

/** Presents a card at the serial reader and waits for the punch it causes. */
async function badge(card: string): Promise<PunchBody> {
  const got = new Promise<PunchBody>((resolve) => service.terminal.once('punch', (p) => resolve(p)));
  writeSync(hostFd, `${card}\r\n`);
  return got;
}

function enrollBody(subject: string, card: string, opts: { photo?: Person; pin?: string; consent?: boolean }) {
  return {
    type: 'enroll-subject',
    record: {
      subject,
      cardHashes: [cardHash(pepper, card)],
      pinHash: opts.pin ? hashPin(opts.pin) : null,
      faceConsent: opts.consent ?? true,
      accessGroups: ['staff'],
      templates: [],
      referencePhotos: opts.photo ? [opts.photo.reference.toString('base64')] : [],
    },
  };
}

const basePolicy = { credentials: 'card+face', thresholds: { match: 0.8 }, access: { door: 'lobby', pulseMs: 200, groups: { staff: 'always' } } };

beforeAll(async () => {
  broker = await startTestBroker(TENANT, DEVICE);
  socat = spawn('socat', [`pty,raw,echo=0,link=${ptyPort}`, `pty,raw,echo=0,link=${ptyHost}`], { stdio: 'ignore' });
  await until(() => existsSync(ptyPort) && existsSync(ptyHost), 'socat pty links');
  hostFd = openSync(ptyHost, 'w');
  mkdirSync(camDir);
  face = await WasmTerminalFaceEngine.create();
  [anna, ben, stranger] = (await castFromSamples(3)) as [Person, Person, Person];
  writeFileSync(join(camDir, 'frame.jpg'), anna.frame);

  const bundle = join(dir, 'bundle');
  mkdirSync(bundle);
  const files: Record<string, string> = {
    'ca.crt': broker.ca.certPem,
    'device.crt': broker.device.certPem,
    'device.key': broker.device.keyPem,
    'device-signing.key': privateKeyToPem(deviceSigning),
    'device-sealing.key': privateKeyToPem(deviceSealing),
    'cloud-sealing.pub': rawPublicKey(cloudSealing.publicKey).toString('base64'),
    'admin-signing.pub': rawPublicKey(admin.publicKey).toString('base64'),
    'card-pepper.key': pepper.toString('base64'),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(bundle, name), text, { mode: 0o600 });
  const config = DeviceConfig.parse({
    tenant: TENANT,
    device: DEVICE,
    mode: 'access',
    dataDir: join(dir, 'data'),
    mqtt: { url: broker.url },
    hardware: {
      camera: { driver: 'replay', replayPath: camDir, fps: 20 },
      reader: { driver: 'serial', path: ptyPort, protocol: 'line', lineFormat: 'decimal', repeatWindowMs: 0 },
      gpio: { driver: 'simulator' },
      pins: { relay: 17, greenLed: 22, redLed: 23, buzzer: 24, doorContact: 5, requestToExit: 6 },
      relay: { pulseMs: 200, mode: 'fail-secure' },
      inputs: { heldOpenMs: 300, debounceMs: 0 },
    },
    policy: basePolicy,
    faceTrigger: { scanMs: 0 }, // tests call onFace() themselves
  });

  cloud = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId: 'cloud-side', reconnectPeriod: 0 });
  await cloud.subscribeAsync([topics.events(TENANT, DEVICE), topics.door(TENANT, DEVICE)], { qos: 1 });
  cloud.on('message', (topic, payload) => {
    if (topic.endsWith('/door')) {
      doorMessages.push(JSON.parse(payload.toString()) as { result: string });
      return;
    }
    const { body } = verifyAndOpen(payload, {
      expect: { kind: 'event', tenant: TENANT, device: DEVICE },
      signers: (id) => (id === ref(deviceSigning).keyId ? ref(deviceSigning) : undefined),
      recipientKeys: [cloudSealing],
      maxAgeMs: 86_400_000,
      maxFutureMs: 300_000,
      schema: DeviceEvent,
    });
    received.push(body);
    const receipt = sealAndSign({
      kind: 'receipt', id: newMessageId(), tenant: TENANT, device: DEVICE, seq: ++receiptSeq, signer: admin,
      body: { type: 'ack', tenant: TENANT, device: DEVICE, eventIds: [body.eventId], at: Date.now() },
    });
    cloud.publish(topics.ack(TENANT, DEVICE), receipt, { qos: 1 });
  });

  service = await startDeviceService({
    config,
    baseDir: bundle,
    log: createLogger({ name: 'device-test', level: 'silent' }),
    face,
    opsPort: 0,
  });
  service.hardware.outputs.on('relay', ({ open }) => {
    if (open) relayOpens++;
  });
  service.terminal.on('screen', (s) => screens.push(s));
  await until(() => service.link.connected && (service.hardware.reader as { connected?: boolean } | undefined)?.connected !== false, 'link and reader');
}, 60_000);

afterAll(async () => {
  await service?.stop();
  await cloud?.endAsync();
  await broker?.close();
  if (hostFd !== undefined) closeSync(hostFd);
  socat?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('the terminal over real parts', () => {
  it('a signed, sealed enroll command makes the person known; badge + matching face opens the door', async () => {
    await command(enrollBody('s-anna', '1001', { photo: anna }));
    await command(enrollBody('s-ben', '1002', { photo: ben }));
    await command(enrollBody('s-cleo', '1003', { pin: '4321', consent: false }));
    expect(service.store.subjectCount()).toBe(3);

    await show(anna);
    const before = relayOpens;
    const p = await badge('1001');
    expect(p).toMatchObject({ subject: 's-anna', credential: 'card+face', decision: 'granted', action: 'access', door: 'lobby' });
    expect(p.scores.similarity).toBeGreaterThan(0.8); // the real engine: a different cut of the same face
    expect(p.photo).not.toBeNull();
    expect(relayOpens).toBe(before + 1);
    await until(() => received.some((e) => e.eventId === p.eventId), 'punch at the cloud');
    await until(() => doorMessages.length > 0, 'door decision');
    expect(doorMessages.at(-1)?.result).toBe('granted');
  });

  it("badge + another person's face is denied without a relay pulse, or flagged per policy", async () => {
    await show(ben);
    const before = relayOpens;
    const denied = await badge('1001');
    expect(denied).toMatchObject({ subject: 's-anna', decision: 'denied', reasons: ['face-mismatch'] });
    expect(relayOpens).toBe(before);

    await command({ type: 'config-update', config: { policy: { ...basePolicy, onFailedCheck: 'flag' } } });
    const flagged = await badge('1001');
    expect(flagged).toMatchObject({ decision: 'flagged', reasons: ['face-mismatch', 'review-required'] });
    expect(relayOpens).toBe(before + 1);
    await command({ type: 'config-update', config: { policy: basePolicy } });
  });

  it('face only (1:N) finds the person in view', async () => {
    await command({ type: 'config-update', config: { policy: { ...basePolicy, credentials: 'face-only' } } });
    await show(ben);
    const p = await service.terminal.onFace();
    expect(p).toMatchObject({ subject: 's-ben', credential: 'face', decision: 'granted' });
    await show(stranger); // nobody enrolled
    const unknown = await service.terminal.onFace();
    expect(unknown).toMatchObject({ subject: null, decision: 'denied', reasons: ['unknown-face'] });
    await command({ type: 'config-update', config: { policy: basePolicy } });
  });

  it('an unknown card is denied', async () => {
    const before = relayOpens;
    const p = await badge('999999');
    expect(p).toMatchObject({ subject: null, credential: 'card', decision: 'denied', reasons: ['unknown-card'], photo: null });
    expect(relayOpens).toBe(before);
  });

  it('without face consent the card asks for the PIN: right PIN opens, wrong PIN does not', async () => {
    const asked = () => screens.lastIndexOf('enter-pin');
    const mark = screens.length;
    const first = badge('1003');
    await until(() => asked() >= mark, 'PIN prompt');
    expect(service.terminal.enterPin('4321')).toBe(true);
    expect(await first).toMatchObject({ subject: 's-cleo', credential: 'card+pin', decision: 'granted', photo: null, scores: { similarity: null } });

    const mark2 = screens.length;
    const second = badge('1003');
    await until(() => asked() >= mark2, 'second PIN prompt');
    service.terminal.enterPin('0000');
    expect(await second).toMatchObject({ decision: 'denied', reasons: ['pin-wrong'] });
  });

  it('refuses a bad policy whole and keeps the old one', async () => {
    const id = sendCommand({ type: 'config-update', config: { policy: { credentials: 'retina' } } });
    await until(() => received.some((e) => e.type === 'command-result' && e.commandId === id), 'rejection');
    const r = received.find((e) => e.type === 'command-result' && e.commandId === id);
    expect(r).toMatchObject({ outcome: 'failed' });
    expect(service.policy.get().credentials).toBe('card+face');
  });

  it('every event reached the cloud and the outbox is empty; templates sit encrypted on disk', async () => {
    await until(() => service.store.outboxSize().count === 0, 'outbox drained');
    const db = readFileSync(join(dir, 'data', 'device.db'));
    const template = service.store.templatesOf('s-anna')[0]!.vector;
    expect(db.includes(Buffer.from(template.buffer, template.byteOffset, 64))).toBe(false);
    expect(db.includes(Buffer.from('1001'))).toBe(false);
    const res = await fetch(`${service.ops!.url}/metrics`);
    expect(await res.text()).toMatch(/clockface_device_punches_total \d+/);
  });

  it('the retained status reports the face backend and model ids', async () => {
    const watcher = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId: 'status-watch', reconnectPeriod: 0 });
    try {
      const status = new Promise<{ state: string; versions: Record<string, string> }>((resolve) =>
        watcher.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()) as { state: string; versions: Record<string, string> })),
      );
      await watcher.subscribeAsync(topics.status(TENANT, DEVICE), { qos: 1 });
      const s = await status;
      expect(s.state).toBe('online');
      expect(s.versions).toMatchObject({ model: face.model, faceBackend: face.engine.backend, faceEmbedding: face.model });
    } finally {
      await watcher.endAsync();
    }
  });

  it('a door held open after a grant raises an alarm event', async () => {
    await show(anna);
    expect(await badge('1001')).toMatchObject({ decision: 'granted' });
    const gpio = service.hardware.gpio as SimulatedGpio;
    gpio.drive(5, 1); // the door opens during the pulse ...
    await until(() => received.some((e) => e.type === 'alarm' && e.alarm === 'door-held-open'), 'held-open alarm');
    gpio.drive(5, 0); // ... and finally closes
    const alarm = received.find((e) => e.type === 'alarm');
    expect(alarm).toMatchObject({ door: 'lobby', device: DEVICE });
  });
});

describe('operations endpoint', () => {
  it('counts rejected commands by reason and reports link, latency and outbox after receipts', async () => {
    const id = sendCommand({ type: 'remote-unlock', door: 'lobby', pulseMs: null });
    await until(() => received.some((e) => e.type === 'command-result' && e.commandId === id), 'unlock result');
    cmdSeq -= 1; // the same sequence again: a replay
    const replay = sendCommand({ type: 'remote-unlock', door: 'lobby', pulseMs: null });
    cmdSeq += 1;
    await until(() => received.some((e) => e.type === 'command-result' && e.commandId === replay), 'replay rejection');
    await until(() => service.store.outboxSize().count === 0, 'outbox drained');
    const text = await (await fetch(`${service.ops!.url}/metrics`)).text();
    expect(text).toMatch(/clockface_device_commands_rejected_total\{reason="[a-z-]+"\} 1/);
    expect(text).toMatch(/clockface_device_link_up 1/);
    expect(text).toMatch(/clockface_device_outbox_events 0/);
    expect(text).toMatch(/clockface_device_decision_seconds_count [1-9]/);
  });

  it('/health: degraded-but-ok is only the link; a dead camera or a closed store is a failure', async () => {
    const health = async () => {
      const res = await fetch(`${service.ops!.url}/health`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    await show(anna);
    await until(() => service.hardware.camera!.latestFrame() !== undefined, 'a frame');
    expect(await health()).toMatchObject({ status: 200, body: { state: 'healthy', store: 'ok', camera: 'ok', link: 'up' } });
    await service.hardware.camera!.stop();
    expect(await health()).toMatchObject({ status: 503, body: { state: 'failed', camera: 'no-frames' } });
    await service.hardware.camera!.start();
    await until(() => service.hardware.camera!.stats().running, 'camera again');
    expect((await health()).status).toBe(200);
    service.store.db.close(); // the database goes away under the running service
    expect(await health()).toMatchObject({ status: 503, body: { state: 'failed', store: 'failed' } });
  });
});
