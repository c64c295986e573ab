import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import mqtt from 'mqtt';
import { cardHash, generateKeyPair, privateKeyToPem, rawPublicKey, topics } from '../protocol/index.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';
import { createLogger } from '../common/log.js';
import { DeviceConfig } from './config.js';
import { startDeviceService, type DeviceService } from './service.js';
import { castFromSamples, emptyFrame, type Person } from '../demo/people.js';
import { WasmTerminalFaceEngine } from './face/terminal-engine.js';
import { startTestBroker, type TestBroker } from './test-support/broker.js';
import type { PunchBody } from './events.js';
import type { ScreenState } from './terminal.js';
import { pulses, type SimulatedGpio } from './hardware/index.js';
import { connectCloudSide, enrollCommand, type CloudSide } from './test-support/cloud-side.js';
import { until } from './test-support/terminal-process.js';
import { requireTool } from '../tests/support/tools.js';

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

let broker: TestBroker;
let socat: ChildProcess;
let hostFd: number;
let service: DeviceService;
let face: WasmTerminalFaceEngine;
let anna: Person;
let ben: Person;
let stranger: Person;
let dora: Person;
let cloud: CloudSide;
const screens: ScreenState[] = [];
let relayOpens = 0;
const HEARTBEAT_MS = 1000;

const command = (body: Record<string, unknown>) => cloud.command(body);
const sendCommand = (body: Record<string, unknown>, opts?: { seq?: number }) => cloud.send(body, opts);

/** A person steps in front of the camera: the replay camera now loops their frame. */
async function show(person: Person | Buffer): Promise<void> {
  rmSync(camDir, { recursive: true, force: true });
  mkdirSync(camDir);
  writeFileSync(join(camDir, 'frame.jpg'), Buffer.isBuffer(person) ? person : person.frame);
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

const enrollBody = (subject: string, card: string, opts: { photo?: Person; pin?: string; consent?: boolean }) =>
  enrollCommand(pepper, subject, card, { ...opts, photo: opts.photo?.reference });

const basePolicy = { credentials: 'card+face', thresholds: { match: 0.8 }, access: { door: 'lobby', pulseMs: 200, groups: { [opaqueGroup('staff')]: 'always' } } };

beforeAll(async () => {
  broker = await startTestBroker(TENANT, DEVICE);
  requireTool('socat');
  socat = spawn('socat', [`pty,raw,echo=0,link=${ptyPort}`, `pty,raw,echo=0,link=${ptyHost}`], { stdio: 'ignore' });
  await until(() => existsSync(ptyPort) && existsSync(ptyHost), 'socat pty links');
  hostFd = openSync(ptyHost, 'w');
  mkdirSync(camDir);
  face = await WasmTerminalFaceEngine.create();
  [anna, ben, stranger, dora] = (await castFromSamples(4)) as [Person, Person, Person, Person];
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
    mqtt: { url: broker.url, heartbeatMs: HEARTBEAT_MS },
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

  cloud = await connectCloudSide(broker, { tenant: TENANT, device: DEVICE, admin, cloudSealing, deviceSigning, deviceSealing });

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
  await cloud?.close();
  await broker?.close();
  if (hostFd !== undefined) closeSync(hostFd);
  socat?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('the terminal over real parts', () => {
  it('a signed, sealed enroll command makes the person known; badge + matching face opens the door', async () => {
    await command(enrollBody(opaqueSubject('s-anna'), '1001', { photo: anna }));
    await command(enrollBody(opaqueSubject('s-ben'), '1002', { photo: ben }));
    await command(enrollBody(opaqueSubject('s-cleo'), '1003', { pin: '4321', consent: false }));
    expect(service.store.subjectCount()).toBe(3);

    await show(anna);
    const before = relayOpens;
    const p = await badge('1001');
    expect(p).toMatchObject({ subject: opaqueSubject('s-anna'), credential: 'card+face', decision: 'granted', action: 'access', door: 'lobby' });
    expect(p.scores.similarity).toBeGreaterThan(0.8); // the real engine: a different cut of the same face
    expect(p.photo).not.toBeNull();
    expect(relayOpens).toBe(before + 1);
    await until(() => cloud.received.some((e) => e.eventId === p.eventId), 'punch at the cloud');
    await until(() => cloud.doorMessages.length > 0, 'door decision');
    expect(cloud.doorMessages.at(-1)?.result).toBe('granted');
  });

  it("badge + another person's face is denied without a relay pulse, or flagged per policy", async () => {
    await show(ben);
    const before = relayOpens;
    const denied = await badge('1001');
    expect(denied).toMatchObject({ subject: opaqueSubject('s-anna'), decision: 'denied', reasons: ['face-mismatch'] });
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
    expect(p).toMatchObject({ subject: opaqueSubject('s-ben'), credential: 'face', decision: 'granted' });
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
    expect(await first).toMatchObject({ subject: opaqueSubject('s-cleo'), credential: 'card+pin', decision: 'granted', photo: null, scores: { similarity: null } });

    const mark2 = screens.length;
    const second = badge('1003');
    await until(() => asked() >= mark2, 'second PIN prompt');
    service.terminal.enterPin('0000');
    expect(await second).toMatchObject({ decision: 'denied', reasons: ['pin-wrong'] });
  });

  it('refuses a bad policy whole and keeps the old one', async () => {
    const id = sendCommand({ type: 'config-update', config: { policy: { credentials: 'retina' } } });
    await until(() => cloud.received.some((e) => e.type === 'command-result' && e.commandId === id), 'rejection');
    const r = cloud.received.find((e) => e.type === 'command-result' && e.commandId === id);
    expect(r).toMatchObject({ outcome: 'failed' });
    expect(service.policy.get().credentials).toBe('card+face');
  });

  it('every event reached the cloud and the outbox is empty; templates sit encrypted on disk', async () => {
    await until(() => service.store.outboxSize().count === 0, 'outbox drained');
    const db = readFileSync(join(dir, 'data', 'device.db'));
    const template = service.store.templatesOf(opaqueSubject('s-anna'))[0]!.vector;
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
    await until(() => cloud.received.some((e) => e.type === 'alarm' && e.alarm === 'door-held-open'), 'held-open alarm');
    gpio.drive(5, 0); // ... and finally closes
    const alarm = cloud.received.find((e) => e.type === 'alarm');
    expect(alarm).toMatchObject({ door: 'lobby', device: DEVICE });
  });
});

/** Level changes of `pin` recorded by the service's GPIO simulator since record index `from`. */
const gpio = () => service.hardware.gpio as SimulatedGpio;
const onPeriods = (pin: number, from: number) => pulses(gpio().records.slice(from), pin, 1);

describe('commands, consent and policy through the real link', () => {
  it('the LEDs follow the flow: green on while looking, two green blinks on the grant, a slow green blink for the PIN', async () => {
    await show(anna);
    const mark = gpio().records.length;
    expect(await badge('1001')).toMatchObject({ decision: 'granted' });
    await until(() => onPeriods(22, mark).filter((p) => !Number.isNaN(p.ms)).length >= 3, 'looking + two blinks on the green LED');
    const [looking, ...blinks] = onPeriods(22, mark);
    expect(looking!.end).toBeLessThanOrEqual(blinks[0]!.start);
    expect(blinks).toHaveLength(2);
    expect(onPeriods(24, mark)).toHaveLength(1); // the grant beep
  });

  it('consent withdrawn by a signed update-subject (empty templates): the face data goes, card + PIN opens', async () => {
    await command(enrollBody(opaqueSubject('s-dora'), '1004', { photo: dora, pin: '2580' }));
    await show(dora);
    expect(await badge('1004')).toMatchObject({ subject: opaqueSubject('s-dora'), credential: 'card+face', decision: 'granted' });
    expect(service.store.templatesOf(opaqueSubject('s-dora'))).toHaveLength(1);
    expect(service.terminal.index.verify(opaqueSubject('s-dora'), (await face.analyze([dora.frame])).descriptor!)).not.toBeNull();

    // What cloud/subjects.ts consent(…, 'withdrawn') queues: the record again, without consent, templates or photos.
    await command({ type: 'update-subject', record: { ...enrollBody(opaqueSubject('s-dora'), '1004', { pin: '2580', consent: false }).record } });
    expect(service.store.getSubject(opaqueSubject('s-dora'))).toMatchObject({ faceConsent: false });
    expect(service.store.templatesOf(opaqueSubject('s-dora'))).toEqual([]);
    expect(service.terminal.index.verify(opaqueSubject('s-dora'), (await face.analyze([dora.frame])).descriptor!)).toBeNull();

    const mark = screens.length;
    const gpioMark = gpio().records.length;
    const punch = badge('1004'); // her face is still in view: it is not used
    await until(() => screens.lastIndexOf('enter-pin') >= mark, 'PIN prompt');
    await until(() => onPeriods(22, gpioMark).length >= 2, 'the PIN prompt blinking green');
    expect(service.terminal.enterPin('2580')).toBe(true);
    const p = await punch;
    expect(p).toMatchObject({ subject: opaqueSubject('s-dora'), credential: 'card+pin', decision: 'granted', photo: null, scores: { similarity: null } });
    await until(() => cloud.received.some((e) => e.eventId === p.eventId), 'the PIN punch at the cloud');
    expect(cloud.received.find((e) => e.eventId === p.eventId)).toMatchObject({ photo: null });
  });

  it('remote-unlock through the link pulses the relay for the asked length (read from the GPIO record)', async () => {
    await until(() => !service.hardware.outputs.relayOpen, 'the last grant\'s pulse over'); // a pulse during a pulse only extends it
    const mark = gpio().records.length;
    const before = relayOpens;
    await command({ type: 'remote-unlock', door: 'lobby', pulseMs: 400 });
    expect(relayOpens).toBe(before + 1);
    await until(() => onPeriods(17, mark).some((p) => !Number.isNaN(p.ms)), 'the relay closing again');
    const [pulse, ...more] = onPeriods(17, mark);
    expect(more).toEqual([]);
    expect(pulse!.ms).toBeGreaterThanOrEqual(398);
  });

  it('erase-subject through the link: gone from the store, the card is unknown, the face no longer recognised', async () => {
    await command({ type: 'config-update', config: { policy: { ...basePolicy, credentials: 'face-only' } } });
    await show(ben);
    expect(await service.terminal.onFace()).toMatchObject({ subject: opaqueSubject('s-ben'), decision: 'granted' });
    await command({ type: 'erase-subject', subject: opaqueSubject('s-ben') });
    expect(service.store.getSubject(opaqueSubject('s-ben'))).toBeUndefined();
    expect(service.store.templatesOf(opaqueSubject('s-ben'))).toEqual([]);
    expect(await service.terminal.onFace()).toMatchObject({ subject: null, decision: 'denied', reasons: ['unknown-face'] });
    await command({ type: 'config-update', config: { policy: basePolicy } });
    expect(await badge('1002')).toMatchObject({ subject: null, decision: 'denied', reasons: ['unknown-card'] });
  });

  it('re-enroll campaign through the link drops old-model templates; the re-enrolment recomputes them with this model', async () => {
    // A subject enrolled under an earlier model: never compared, so refused until re-enrolled.
    service.store.upsertSubject(
      { subject: opaqueSubject('s-eli'), cardHashes: [cardHash(pepper, '1005')], pinHash: null, faceConsent: true, accessGroups: [opaqueGroup('staff')], suspended: false },
      [{ model: 'old-model', vector: new Float32Array(128).fill(0.1) }],
    );
    await show(stranger);
    expect(await badge('1005')).toMatchObject({ subject: opaqueSubject('s-eli'), decision: 'denied', reasons: ['model-mismatch'] });
    const annaTemplates = service.store.templatesOf(opaqueSubject('s-anna'));

    await command({ type: 'reenroll-campaign', model: face.model, subjects: null });
    expect(service.store.templatesOf(opaqueSubject('s-eli'))).toEqual([]);
    expect(service.store.templatesOf(opaqueSubject('s-anna'))).toEqual(annaTemplates); // current-model templates stay

    await command({ type: 'update-subject', record: enrollBody(opaqueSubject('s-eli'), '1005', { photo: stranger }).record });
    const fresh = service.store.templatesOf(opaqueSubject('s-eli'));
    expect(fresh.map((t) => t.model)).toEqual([face.model]);
    expect(Array.from(fresh[0]!.vector)).toEqual(Array.from(await face.templateFromPhoto(stranger.reference)));
    const p = await badge('1005');
    expect(p).toMatchObject({ subject: opaqueSubject('s-eli'), credential: 'card+face', decision: 'granted' });
    expect(p.scores.similarity).toBeGreaterThan(0.8);
  });

  it('face-exists only: any face passes the check; an empty view is refused, or flagged under "flag"', async () => {
    await command({ type: 'config-update', config: { policy: { ...basePolicy, faceCheck: 'face-exists' } } });
    await show(ben); // not Anna, and not even enrolled any more: only presence counts
    const before = relayOpens;
    const anyone = await badge('1001');
    expect(anyone).toMatchObject({ subject: opaqueSubject('s-anna'), credential: 'card+face', decision: 'granted', reasons: [], scores: { similarity: null } });
    expect(anyone.scores.faceExists).toBeGreaterThanOrEqual(0.4);
    expect(relayOpens).toBe(before + 1);

    await show(await emptyFrame());
    const blocked = await badge('1001');
    expect(blocked).toMatchObject({ decision: 'denied', reasons: ['no-face'] });
    expect(relayOpens).toBe(before + 1);

    await command({ type: 'config-update', config: { policy: { ...basePolicy, faceCheck: 'face-exists', onFailedCheck: 'flag' } } });
    const flagged = await badge('1001');
    expect(flagged).toMatchObject({ decision: 'flagged', reasons: ['no-face', 'review-required'] });
    expect(relayOpens).toBe(before + 2);
    await command({ type: 'config-update', config: { policy: basePolicy } });
  });

  it('photo at punch off: the sealed event at the cloud carries no photo', async () => {
    await show(anna);
    const withPhoto = await badge('1001');
    await command({ type: 'config-update', config: { policy: { ...basePolicy, photoAtPunch: false } } });
    const without = await badge('1001');
    expect(without).toMatchObject({ subject: opaqueSubject('s-anna'), decision: 'granted' });
    await until(() => [withPhoto, without].every((p) => cloud.received.some((e) => e.eventId === p.eventId)), 'both punches at the cloud');
    const atCloud = (id: string) => cloud.received.find((e) => e.eventId === id);
    expect(atCloud(withPhoto.eventId)).toMatchObject({ type: 'punch', photoDropped: false });
    expect((atCloud(withPhoto.eventId) as PunchBody).photo).toMatch(/^\/9j\//); // a JPEG while the policy wanted one
    expect(atCloud(without.eventId)).toMatchObject({ type: 'punch', decision: 'granted', photo: null, photoDropped: false });
    await command({ type: 'config-update', config: { policy: basePolicy } });
  });

  it('heartbeat: the retained status is published again and again, each one fresh', async () => {
    const watcher = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId: 'heartbeat-watch', reconnectPeriod: 0 });
    try {
      const seen: Array<{ retain: boolean; status: { state: string; at: number; health: { subjects: number } } }> = [];
      watcher.on('message', (_t, payload, packet) => seen.push({ retain: packet.retain, status: JSON.parse(payload.toString()) as (typeof seen)[number]['status'] }));
      await watcher.subscribeAsync(topics.status(TENANT, DEVICE), { qos: 1 });
      await until(() => seen.length >= 4, 'the retained status and three heartbeats');
      expect(seen[0]!.retain).toBe(true); // what a newcomer gets at once
      const beats = seen.slice(1);
      for (const b of beats) expect(b.status.state).toBe('online');
      // Three republications while nothing reconnected: the heartbeat, never faster than its interval.
      for (let i = 1; i < beats.length; i++) expect(beats[i]!.status.at - beats[i - 1]!.status.at).toBeGreaterThanOrEqual(HEARTBEAT_MS - 5);
      // Each heartbeat reports the health of now: a new subject shows in the next one.
      const count = service.store.subjectCount();
      await command(enrollBody(opaqueSubject('s-fay'), '1006', { pin: '1111', consent: false }));
      await until(() => seen.some((m) => m.status.health.subjects === count + 1), 'a heartbeat with the new subject count');
    } finally {
      await watcher.endAsync();
    }
  });
});

describe('operations endpoint', () => {
  it('counts rejected commands by reason and reports link, latency and outbox after receipts', async () => {
    const id = sendCommand({ type: 'remote-unlock', door: 'lobby', pulseMs: null });
    await until(() => cloud.received.some((e) => e.type === 'command-result' && e.commandId === id), 'unlock result');
    const replay = sendCommand({ type: 'remote-unlock', door: 'lobby', pulseMs: null }, { seq: cloud.seq }); // the same sequence again: a replay
    await until(() => cloud.received.some((e) => e.type === 'command-result' && e.commandId === replay), 'replay rejection');
    await until(() => service.store.outboxSize().count === 0, 'outbox drained');
    const text = await (await fetch(`${service.ops!.url}/metrics`)).text();
    expect(text).toMatch(/clockface_device_commands_rejected_total\{reason="envelope\.replayed"\} 1/);
    expect(text).toMatch(/clockface_device_link_up 1/);
    expect(text).toMatch(/clockface_device_outbox_events 0/);
    expect(text).toMatch(/clockface_device_decision_seconds_count [1-9]/);
  });

  it('counts every trigger not acted on by reason: all reasons listed from the start, keypad digits without a prompt counted', async () => {
    const before = await (await fetch(`${service.ops!.url}/metrics`)).text();
    for (const reason of ['queue-full', 'wait-expired', 'debounced', 'reader-repeat', 'closed', 'no-pin-prompt']) {
      expect(before).toMatch(new RegExp(`clockface_device_triggers_ignored_total\\{reason="${reason}"\\} \\d+`));
    }
    const count = (text: string) => Number(/clockface_device_triggers_ignored_total\{reason="no-pin-prompt"\} (\d+)/.exec(text)![1]);
    writeSync(hostFd, '2580#\r\n'); // nobody was asked for a PIN
    let after = before;
    for (let i = 0; i < 500 && count(after) === count(before); i++) {
      await new Promise((r) => setTimeout(r, 10));
      after = await (await fetch(`${service.ops!.url}/metrics`)).text();
    }
    expect(count(after)).toBe(count(before) + 1);
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
