import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DeviceEvent, cardHash, generateKeyPair, hashPin, publicKeyRef, rawPublicKey, verifyAndOpen } from '../protocol/index.js';
import { createLogger } from '../common/log.js';
import { HardwareConfig, createCamera, createHardware, type Camera, type Hardware, type SimulatedGpio } from './hardware/index.js';
import type { FaceAnalysis, FaceEngine } from './face-engine.js';
import { DeviceStore } from './store.js';
import { EventRecorder } from './events.js';
import { Terminal, type Mode } from './terminal.js';
import { Policy } from './policy.js';
import { createCommandHandler, PolicyHolder } from './commands.js';
import { StandInFaceEngine } from './test-support/stand-in-face.js';
import { startFaceTrigger } from './face-trigger.js';
import { wiegandForCard } from './hardware/wiegand/encoder.js';
import { faceCredentialNumber } from './wiegand-credential.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

/* The decision flow on its own: real SQLite, the replay camera with a real photo, GPIO simulator. */
const dir = mkdtempSync(join(tmpdir(), 'cf-terminal-'));
const PHOTO = join(process.cwd(), 'node_modules/@vladmandic/face-api/demo/sample1.jpg');
const pepper = randomBytes(32);
const signer = generateKeyPair('ed25519');
const cloud = generateKeyPair('x25519');
const face = new StandInFaceEngine();
const log = createLogger({ name: 'terminal-test', level: 'silent' });
let hw: Hardware;

beforeAll(async () => {
  mkdirSync(join(dir, 'cam'));
  copyFileSync(PHOTO, join(dir, 'cam', 'frame.jpg'));
  hw = createHardware(
    HardwareConfig.parse({ camera: { driver: 'replay', replayPath: join(dir, 'cam'), fps: 20 }, gpio: { driver: 'simulator' }, pins: { relay: 17, greenLed: 22, redLed: 23, buzzer: 24, wiegandD0: 20, wiegandD1: 21 }, wiegand: { enabled: true, format: 26 } }),
    { safeStateHooks: false, log },
  );
  await hw.start();
});
afterAll(async () => {
  await hw.close();
  rmSync(dir, { recursive: true, force: true });
});

function setup(
  name: string,
  mode: Mode,
  policy: Record<string, unknown>,
  limits = { maxEvents: 1000, maxBytes: 50_000_000 },
  parts: { face?: FaceEngine | null; camera?: () => Camera | undefined } = {},
) {
  const store = new DeviceStore(join(dir, `${name}.db`), randomBytes(32));
  const recorder = new EventRecorder({ tenant: 'acme', device: 'dev-1', store, signer, cloud: publicKeyRef('x25519', rawPublicKey(cloud.publicKey)), limits });
  const holder = new PolicyHolder(store, Policy.parse(policy));
  const terminal = new Terminal({
    tenant: 'acme', device: 'dev-1', mode, store, recorder, pepper, policy: () => holder.get(), face: parts.face === undefined ? face : parts.face,
    camera: parts.camera ?? (() => hw.camera), outputs: hw.outputs, wiegand: hw.wiegand, log,
  });
  return { store, recorder, terminal, holder };
}

function open(envelope: Buffer) {
  return verifyAndOpen(envelope, {
    expect: { kind: 'event', tenant: 'acme' },
    signers: () => publicKeyRef('ed25519', rawPublicKey(signer.publicKey)),
    recipientKeys: [cloud],
    maxAgeMs: 60_000,
    maxFutureMs: 60_000,
    schema: DeviceEvent,
  }).body;
}

async function enroll(store: DeviceStore, subject: string, card: string) {
  store.upsertSubject(
    { subject, cardHashes: [cardHash(pepper, card)], pinHash: null, faceConsent: true, accessGroups: [opaqueGroup('staff')], suspended: false },
    [{ model: face.model, vector: await face.templateFromPhoto(readFileSync(PHOTO)) }],
  );
}

describe('timekeeping', () => {
  it('auto toggles in/out per day and debounces a repeat punch within the window', async () => {
    const { store, terminal } = setup('tk', 'timekeeping', { timekeeping: { action: 'auto', debounceMs: 0 } });
    await enroll(store, opaqueSubject('s-1'), '42');
    expect((await terminal.onCard('42'))?.action).toBe('in');
    expect((await terminal.onCard('42'))?.action).toBe('out');
    expect((await terminal.onCard('42', 'out'))?.action).toBe('out'); // a function key forces the action
    const { store: s2, terminal: t2 } = setup('tk2', 'timekeeping', { timekeeping: { action: 'auto', debounceMs: 60_000 } });
    await enroll(s2, opaqueSubject('s-1'), '42');
    const first = await t2.onCard('42');
    expect(first).toMatchObject({ decision: 'granted', action: 'in', door: null });
    expect(await t2.onCard('42')).toBeNull();
    expect(s2.outboxSize().count).toBe(1);
  });
});

describe('outbox pressure', () => {
  it('drops photos first (the event says so) and keeps every punch', async () => {
    const { store, terminal } = setup('press', 'access', { access: { groups: { [opaqueGroup('staff')]: 'always' } } }, { maxEvents: 1000, maxBytes: 250_000 });
    await enroll(store, opaqueSubject('s-1'), '42');
    for (let i = 0; i < 4; i++) await terminal.onCard('42');
    const all = store.pending(10).map((e) => ({ e, body: open(e.envelope) }));
    expect(all.filter((x) => x.body.type === 'alarm').map((x) => x.body.type === 'alarm' && x.body.alarm)).toEqual(['outbox-full']);
    const pending = all.filter((x) => x.body.type === 'punch').map((x) => x.e);
    expect(pending).toHaveLength(4);
    const bodies = pending.map((e) => open(e.envelope));
    const dropped = bodies.filter((b) => b.type === 'punch' && b.photoDropped);
    expect(dropped.length).toBeGreaterThan(0);
    for (const b of dropped) expect(b).toMatchObject({ photo: null, reasons: ['photo-dropped'] });
    expect(bodies.at(-1)).toMatchObject({ photoDropped: false });
    expect(store.outboxSize().bytes).toBeLessThanOrEqual(250_000);
  });

  it('erase-subject removes the person and strips photos of theirs still queued', async () => {
    const { store, terminal, holder } = setup('erase', 'access', { access: { groups: { [opaqueGroup('staff')]: 'always' } } });
    await enroll(store, opaqueSubject('s-1'), '42');
    await terminal.onCard('42');
    expect(store.pending(1)[0]!.hasPhoto).toBe(true);
    const apply = createCommandHandler({ store, face, policy: holder, unlock: () => undefined, log });
    await apply({ type: 'erase-subject', commandId: '00000000-0000-4000-8000-000000000000', tenant: 'acme', device: 'dev-1', issuedAt: 0, expiresAt: 1, subject: opaqueSubject('s-1') });
    expect(store.getSubject(opaqueSubject('s-1'))).toBeUndefined();
    const queued = store.pending(1)[0]!;
    expect(queued.hasPhoto).toBe(false);
    expect(open(queued.envelope)).toMatchObject({ photo: null, photoDropped: true });
  });
});

describe('door rules', () => {
  it('denies outside the access groups and on anti-passback', async () => {
    const { store, terminal } = setup('door', 'access', { access: { groups: { [opaqueGroup('staff')]: 'always' }, antiPassback: { enabled: true, windowMs: 60_000 } } });
    await enroll(store, opaqueSubject('s-1'), '42');
    store.upsertSubject({ subject: opaqueSubject('s-2'), cardHashes: [cardHash(pepper, '43')], pinHash: null, faceConsent: true, accessGroups: [opaqueGroup('visitors')], suspended: false }, null);
    expect(await terminal.onCard('42')).toMatchObject({ decision: 'granted' });
    expect(await terminal.onCard('42')).toMatchObject({ decision: 'denied', reasons: ['anti-passback'] });
    // s-2 has no template at all: the face check fails closed before the door rules.
    expect(await terminal.onCard('43')).toMatchObject({ decision: 'denied', reasons: ['no-template'] });
  });
});

describe('policy variants', () => {
  it('card only: the card is the credential, access groups still apply', async () => {
    const { store, terminal } = setup('cardonly', 'access', { credentials: 'card-only', access: { groups: { [opaqueGroup('staff')]: 'always' } } });
    await enroll(store, opaqueSubject('s-1'), '42');
    store.upsertSubject({ subject: opaqueSubject('s-2'), cardHashes: [cardHash(pepper, '43')], pinHash: null, faceConsent: false, accessGroups: [opaqueGroup('visitors')], suspended: false }, null);
    const granted = await terminal.onCard('42');
    expect(granted).toMatchObject({ credential: 'card', decision: 'granted', scores: { similarity: null } });
    expect(granted?.photo?.startsWith('/9j/')).toBe(true); // photo at punch, from the live frame
    const visitor = await terminal.onCard('43');
    expect(visitor).toMatchObject({ credential: 'card', decision: 'denied', reasons: ['not-in-access-group'], photo: null }); // no consent, no photo
  });

  it('liveness required: a single-frame burst (no motion) is refused', async () => {
    const { store, terminal } = setup('live', 'access', { livenessRequired: true, burst: { frames: 1 }, access: { groups: { [opaqueGroup('staff')]: 'always' } } });
    await enroll(store, opaqueSubject('s-1'), '42');
    expect(await terminal.onCard('42')).toMatchObject({ decision: 'denied', reasons: ['liveness-failed'] });
  });

  it('a grant sends the card as a Wiegand frame to the access panel when configured', async () => {
    const { store, terminal } = setup('wg', 'access', { access: { groups: { [opaqueGroup('staff')]: 'always' }, wiegand: true } });
    await enroll(store, opaqueSubject('s-1'), '42');
    const records = () => (hw.gpio as SimulatedGpio).records.filter((r) => r.pin === 20 || r.pin === 21);
    const edgesBefore = records().length;
    expect(await terminal.onCard('42')).toMatchObject({ decision: 'granted' });
    for (let i = 0; i < 200 && records().length - edgesBefore < 52; i++) await new Promise((r) => setTimeout(r, 10));
    // 26 bits, each a low pulse on D0 or D1: 52 edges.
    expect(records().length - edgesBefore).toBeGreaterThanOrEqual(52);
  });

  it('a face-only grant sends the subject\'s face credential number (no card was read)', async () => {
    const { store, terminal } = setup('wg-face', 'access', { credentials: 'face-only', thresholds: { identify: 0.8 }, access: { groups: { [opaqueGroup('staff')]: 'always' } } });
    await enroll(store, opaqueSubject('s-face'), '42');
    const lows = () => (hw.gpio as SimulatedGpio).records.filter((r) => (r.pin === 20 || r.pin === 21) && r.edge && r.level === 0);
    await hw.wiegand!.drained(); // frames of earlier grants still waiting for their gap
    const before = lows().length;
    expect(await terminal.onFace()).toMatchObject({ subject: opaqueSubject('s-face'), credential: 'face', decision: 'granted' });
    await hw.wiegand!.drained();
    const bits = lows().slice(before).map((r) => (r.pin === 21 ? 1 : 0));
    expect(bits).toEqual(wiegandForCard(faceCredentialNumber(opaqueSubject('s-face')), 26));
    expect(bits).not.toEqual(wiegandForCard(42, 26));
  });

  it('re-enroll campaign drops old-model templates; revocation lists only move forward', async () => {
    const { store, holder } = setup('cmds', 'access', {});
    await enroll(store, opaqueSubject('s-1'), '42');
    store.upsertSubject({ subject: opaqueSubject('s-2'), cardHashes: [], pinHash: null, faceConsent: true, accessGroups: [], suspended: false }, [{ model: 'old-model', vector: new Float32Array([1, 0]) }]);
    const apply = createCommandHandler({ store, face, policy: holder, unlock: () => undefined, log });
    const base = { commandId: '00000000-0000-4000-8000-000000000001', tenant: 'acme', device: 'dev-1', issuedAt: 0, expiresAt: 1 };
    await apply({ ...base, type: 'reenroll-campaign', model: face.model, subjects: null });
    expect(store.templatesOf(opaqueSubject('s-2'))).toEqual([]);
    expect(store.templatesOf(opaqueSubject('s-1'))).toHaveLength(1);
    await apply({ ...base, type: 'revocation-list', serials: ['abc'], listVersion: 2 });
    await expect(apply({ ...base, type: 'revocation-list', serials: [], listVersion: 1 })).rejects.toThrow(/not newer/);
    expect(JSON.parse(store.getSetting('revocations')!)).toEqual({ version: 2, serials: ['abc'] });
  });
});

describe('face in view', () => {
  it('punches a known face without any card, once per cooldown', async () => {
    const { store, terminal, holder } = setup('trigger', 'access', { credentials: 'face-only', thresholds: { identify: 0.8 }, access: { groups: { [opaqueGroup('staff')]: 'always' } } });
    await enroll(store, opaqueSubject('s-1'), '42');
    const punches: string[] = [];
    terminal.on('punch', (p) => punches.push(`${p.subject}:${p.decision}:${p.credential}`));
    const stop = startFaceTrigger(terminal, () => holder.get(), { scanMs: 30, cooldownMs: 60_000 });
    for (let i = 0; i < 300 && punches.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200)); // several more scans fall inside the cooldown
    stop();
    expect(punches).toEqual([`${opaqueSubject('s-1')}:granted:face`]);
  });
});


describe('both modes on one unit', () => {
  it('a repeat badge within the debounce window still opens the door; only the time punch is suppressed', async () => {
    const { store, terminal } = setup('both', 'both', { credentials: 'card-only', timekeeping: { action: 'auto', debounceMs: 60_000 }, access: { groups: { [opaqueGroup('staff')]: 'always' } } });
    await enroll(store, opaqueSubject('s-1'), '42');
    const opens: boolean[] = [];
    const onRelay = ({ open }: { open: boolean }) => open && opens.push(open);
    hw.outputs.on('relay', onRelay);
    try {
      const first = await terminal.onCard('42');
      expect(first).toMatchObject({ decision: 'granted', action: 'in', door: 'door' });
      const again = await terminal.onCard('42');
      expect(again).toMatchObject({ decision: 'granted', action: 'access', door: 'door' });
      expect(opens).toHaveLength(2);
      // The repeat did not toggle the day's in/out: the next real punch after the window is "out".
      store.setSetting(`last-punch:${opaqueSubject('s-1')}`, '0');
      expect(await terminal.onCard('42')).toMatchObject({ action: 'out' });
    } finally {
      hw.outputs.off('relay', onRelay);
    }
  });
});

/** The stand-in engine, slowed past the policy's analysis time limit (an engine that hangs). */
class SlowEngine implements FaceEngine {
  readonly model = face.model;
  analyze(burst: readonly Buffer[]): Promise<FaceAnalysis> {
    return new Promise((r) => setTimeout(() => r(face.analyze(burst)), 1500));
  }
  similarity(a: Float32Array, b: Float32Array): number {
    return face.similarity(a, b);
  }
  templateFromPhoto(jpeg: Buffer): Promise<Float32Array> {
    return face.templateFromPhoto(jpeg);
  }
}

describe('consent and a broken face path', () => {
  it('face only: a card of someone without face consent asks for the PIN; a consenting card is a 1:1 claim the face confirms', async () => {
    const { store, terminal } = setup('fo-pin', 'access', { credentials: 'face-only', access: { groups: { [opaqueGroup('staff')]: 'always' } } });
    await enroll(store, opaqueSubject('s-face'), '42');
    store.upsertSubject({ subject: opaqueSubject('s-nc'), cardHashes: [cardHash(pepper, '77')], pinHash: hashPin(pepper, '2468'), faceConsent: false, accessGroups: [opaqueGroup('staff')], suspended: false }, null);
    const screens: string[] = [];
    terminal.on('screen', (x) => screens.push(x));
    const p = terminal.onCard('77');
    for (let i = 0; i < 200 && !screens.includes('enter-pin'); i++) await new Promise((r) => setTimeout(r, 5));
    expect(terminal.enterPin('2468')).toBe(true);
    expect(await p).toMatchObject({ subject: opaqueSubject('s-nc'), credential: 'card+pin', decision: 'granted' });
    expect(await terminal.onCard('42')).toMatchObject({ subject: opaqueSubject('s-face'), credential: 'card+face', decision: 'granted' });
  });

  it('no engine, a camera without frames, or an engine past its time limit block with face-unavailable, even under "flag"', async () => {
    const stopped = createCamera(HardwareConfig.parse({ camera: { driver: 'replay', replayPath: join(dir, 'cam'), fps: 20 } }).camera, dir)!; // never started: no frames
    const flag = { onFailedCheck: 'flag', burst: { frames: 2, timeoutMs: 200, analysisTimeoutMs: 100 }, access: { groups: { [opaqueGroup('staff')]: 'always' } } };
    const cases = [
      setup('fault-engine', 'access', flag, undefined, { face: null }),
      setup('fault-camera', 'access', flag, undefined, { camera: () => stopped }),
      setup('fault-slow', 'access', flag, undefined, { face: new SlowEngine() }),
    ];
    for (const { store, terminal } of cases) {
      await enroll(store, opaqueSubject('s-1'), '42');
      const screens: string[] = [];
      terminal.on('screen', (x) => screens.push(x));
      const opens: boolean[] = [];
      const onRelay = ({ open }: { open: boolean }) => open && opens.push(open);
      hw.outputs.on('relay', onRelay);
      const p = await terminal.onCard('42');
      hw.outputs.off('relay', onRelay);
      expect(p).toMatchObject({ subject: opaqueSubject('s-1'), decision: 'denied', reasons: ['face-unavailable'] });
      expect(opens).toEqual([]);
      expect(screens).toContain('fault');
      expect(terminal.state).toBe('idle');
    }
  });
});
