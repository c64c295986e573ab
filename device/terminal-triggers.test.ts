import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { DeviceEvent, cardHash, generateKeyPair, hashPin, publicKeyRef, rawPublicKey, verifyAndOpen } from '../protocol/index.js';
import type { PunchBody } from './events.js';
import { HardwareConfig, createHardware, type Hardware } from './hardware/index.js';
import type { FaceAnalysis, FaceEngine } from './face-engine.js';
import { DeviceStore } from './store.js';
import { EventRecorder } from './events.js';
import { Terminal, type Mode, type ScreenState } from './terminal.js';
import { Policy } from './policy.js';
import { PolicyHolder } from './commands.js';
import { StandInFaceEngine } from './test-support/stand-in-face.js';
import { PinLockout } from './pin-lockout.js';
import { RepeatFilter } from './hardware/rfid/repeat-filter.js';
import type { IgnoredTrigger } from './trigger-queue.js';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';

/*
 * The promise at the terminal: a badge presented is a punch or a refusal with a logged
 * reason, never silently nothing. Real SQLite, the replay camera with a real photo, the GPIO
 * simulator; the face engine is the stand-in, gated where a test needs an engine call in flight.
 */
const dir = mkdtempSync(join(tmpdir(), 'cf-triggers-'));
const PHOTO = join(process.cwd(), 'node_modules/@vladmandic/face-api/demo/sample1.jpg');
const OTHER_PHOTO = join(process.cwd(), 'node_modules/@vladmandic/face-api/demo/sample2.jpg');
const pepper = randomBytes(32);
const signer = generateKeyPair('ed25519');
const cloud = generateKeyPair('x25519');
const face = new StandInFaceEngine();
let hw: Hardware;

beforeAll(async () => {
  mkdirSync(join(dir, 'cam'));
  copyFileSync(PHOTO, join(dir, 'cam', 'frame.jpg'));
  hw = createHardware(HardwareConfig.parse({ camera: { driver: 'replay', replayPath: join(dir, 'cam'), fps: 20 }, gpio: { driver: 'simulator' }, pins: { relay: 17 } }), {
    safeStateHooks: false,
  });
  await hw.start();
});
afterAll(async () => {
  await hw.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A stand-in engine whose calls can be held until released: an engine call "in flight", without timing. */
class GatedEngine implements FaceEngine {
  readonly model = face.model;
  private held: Array<() => void> = [];
  private holding = false;
  calls = 0;
  hold(): void {
    this.holding = true;
  }
  release(): void {
    this.holding = false;
    for (const go of this.held.splice(0)) go();
  }
  analyze(burst: readonly Buffer[]): Promise<FaceAnalysis> {
    this.calls++;
    if (!this.holding) return face.analyze(burst);
    return new Promise((resolve) => this.held.push(() => resolve(face.analyze(burst))));
  }
  similarity(a: Float32Array, b: Float32Array): number {
    return face.similarity(a, b);
  }
  templateFromPhoto(jpeg: Buffer): Promise<Float32Array> {
    return face.templateFromPhoto(jpeg);
  }
}

function setup(name: string, mode: Mode, policy: Record<string, unknown>, engine: FaceEngine = face, file = join(dir, `${name}.db`)) {
  const store = new DeviceStore(file, dataKey);
  const recorder = new EventRecorder({ tenant: 'acme', device: 'dev-1', store, signer, cloud: publicKeyRef('x25519', rawPublicKey(cloud.publicKey)), limits: { maxEvents: 1000, maxBytes: 50_000_000 } });
  const holder = new PolicyHolder(store, Policy.parse(policy));
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
  const terminal = new Terminal({ tenant: 'acme', device: 'dev-1', mode, store, recorder, pepper, policy: () => holder.get(), face: engine, camera: () => hw.camera, outputs: hw.outputs, log });
  const ignored: IgnoredTrigger[] = [];
  const screens: ScreenState[] = [];
  terminal.on('ignored', (i) => ignored.push(i));
  terminal.on('screen', (s) => screens.push(s));
  const punches = () => store.pending(100).map((e) => open(e.envelope)).filter((b): b is PunchBody => b.type === 'punch');
  return { store, terminal, ignored, screens, lines, punches };
}
const dataKey = randomBytes(32);

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

async function enroll(store: DeviceStore, subject: string, card: string, photo = PHOTO) {
  store.upsertSubject(
    { subject, cardHashes: [cardHash(pepper, card)], pinHash: null, faceConsent: true, accessGroups: [opaqueGroup('staff')], suspended: false },
    [{ model: face.model, vector: await face.templateFromPhoto(readFileSync(photo)) }],
  );
}

function withPin(store: DeviceStore, subject: string, card: string, pin: string) {
  store.upsertSubject({ subject, cardHashes: [cardHash(pepper, card)], pinHash: hashPin(pepper, pin), faceConsent: false, accessGroups: [opaqueGroup('staff')], suspended: false }, null);
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!ok()) throw new Error(`never: ${what}`);
}

const FACE_ONLY_CLOCK = { credentials: 'face-only', timekeeping: { debounceMs: 0 }, access: { groups: { [opaqueGroup('staff')]: 'always' } } };

describe('a card read preempts the idle face scan', () => {
  it('the scan is abandoned (resolves null at once), the card decides, and the late engine result records nothing', async () => {
    const engine = new GatedEngine();
    const { store, terminal, punches, lines } = setup('preempt', 'timekeeping', FACE_ONLY_CLOCK, engine);
    await enroll(store, opaqueSubject('s-1'), '42');
    engine.hold();
    let scan: PunchBody | null | undefined;
    const scanning = terminal.onFace().then((p) => (scan = p));
    await until('the idle scan calls the engine', () => engine.calls === 1);
    engine.calls = 0;
    const card = terminal.onCard('42');
    await scanning;
    expect(scan).toBeNull(); // given up before the engine answered
    engine.release(); // the scan's late result, and the card's own analysis
    expect(await card).toMatchObject({ subject: opaqueSubject('s-1'), credential: 'card+face', decision: 'granted', action: 'in' });
    expect(engine.calls).toBeGreaterThan(0); // the card's own face check ran
    await terminal.close(); // waits for the abandoned scan to unwind too
    expect(punches().map((p) => p.credential)).toEqual(['card+face']);
    expect(lines.filter((l) => l.msg === 'idle scan preempted')).toHaveLength(1);
  });

  it('an idle scan never queues: while a decision is in flight it is skipped (the next scan looks again)', async () => {
    const engine = new GatedEngine();
    const { store, terminal, ignored } = setup('no-queue-scan', 'timekeeping', FACE_ONLY_CLOCK, engine);
    await enroll(store, opaqueSubject('s-1'), '42');
    engine.hold();
    const card = terminal.onCard('42');
    await until('the card calls the engine', () => engine.calls === 1);
    expect(await terminal.onFace()).toBeNull();
    engine.release();
    expect(await card).toMatchObject({ decision: 'granted' });
    expect(ignored).toEqual([]); // an idle look is nobody's claim: nothing to trace
    await terminal.close();
  });
});

describe('a card read behind a decision in flight waits its turn', () => {
  it('behind a PIN prompt: queued in order, decided after the PIN, punched at the time it was read', async () => {
    const { store, terminal, punches, screens } = setup('queue-pin', 'timekeeping', { credentials: 'card+face', timekeeping: { debounceMs: 0 } });
    withPin(store, opaqueSubject('s-pin'), '77', '2468');
    await enroll(store, opaqueSubject('s-face'), '42');
    const first = terminal.onCard('77');
    await until('the PIN prompt', () => screens.includes('enter-pin'));
    const readAt = Date.now();
    const second = terminal.onCard('42');
    expect(terminal.state).toBe('busy');
    expect(terminal.enterPin('2468')).toBe(true);
    expect(await first).toMatchObject({ subject: opaqueSubject('s-pin'), credential: 'card+pin', decision: 'granted' });
    const p = await second;
    expect(p).toMatchObject({ subject: opaqueSubject('s-face'), credential: 'card+face', decision: 'granted' });
    expect(p!.time.wall).toBeGreaterThanOrEqual(readAt);
    expect(p!.time.wall).toBeLessThanOrEqual(punches()[0]!.time.wall + 60_000);
    expect(punches().map((x) => x.subject)).toEqual([opaqueSubject('s-pin'), opaqueSubject('s-face')]);
    await terminal.close();
  });

  it('past the FIFO bound: refused as queue-full, logged without the card number, the others still decided', async () => {
    const { store, terminal, ignored, screens, lines, punches } = setup('queue-full', 'timekeeping', { credentials: 'card+face', timekeeping: { debounceMs: 0 }, queue: { size: 1 } });
    withPin(store, opaqueSubject('s-pin'), '77', '2468');
    await enroll(store, opaqueSubject('s-face'), '42');
    const first = terminal.onCard('77');
    await until('the PIN prompt', () => screens.includes('enter-pin'));
    const waiting = terminal.onCard('42');
    expect(await terminal.onCard('4242424242')).toBeNull();
    expect(ignored).toEqual([{ trigger: 'card', reason: 'queue-full' }]);
    const line = lines.find((l) => l.msg === 'trigger ignored')!;
    expect(line).toMatchObject({ level: 40, trigger: 'card', reason: 'queue-full' });
    expect(JSON.stringify(lines)).not.toContain('4242424242');
    terminal.enterPin('2468');
    await first;
    expect(await waiting).toMatchObject({ decision: 'granted' });
    expect(punches()).toHaveLength(2);
    await terminal.close();
  });

  it('past the wait bound: refused as wait-expired', async () => {
    const { store, terminal, ignored, screens } = setup('wait-expired', 'timekeeping', { credentials: 'card+face', timekeeping: { debounceMs: 0 }, queue: { maxWaitMs: 100 } });
    withPin(store, opaqueSubject('s-pin'), '77', '2468');
    await enroll(store, opaqueSubject('s-face'), '42');
    const first = terminal.onCard('77');
    await until('the PIN prompt', () => screens.includes('enter-pin'));
    const waiting = terminal.onCard('42');
    await until('the wait runs out', () => ignored.length > 0); // the prompt is held as long as it takes
    expect(await waiting).toBeNull();
    expect(ignored).toEqual([{ trigger: 'card', reason: 'wait-expired' }]);
    terminal.enterPin('2468');
    expect(await first).toMatchObject({ decision: 'granted' });
    await terminal.close();
  });

  it('at shutdown: what waits is refused as closed, the PIN prompt ends as a recorded timeout, later reads are closed too', async () => {
    const { store, terminal, ignored, screens, punches } = setup('closing', 'timekeeping', { credentials: 'card+face', timekeeping: { debounceMs: 0 } });
    withPin(store, opaqueSubject('s-pin'), '77', '2468');
    await enroll(store, opaqueSubject('s-face'), '42');
    const first = terminal.onCard('77');
    await until('the PIN prompt', () => screens.includes('enter-pin'));
    const waiting = terminal.onCard('42');
    await terminal.close();
    expect(await first).toMatchObject({ decision: 'denied', reasons: ['timeout'] });
    expect(await waiting).toBeNull();
    expect(await terminal.onCard('42')).toBeNull();
    expect(ignored).toEqual([
      { trigger: 'card', reason: 'closed' },
      { trigger: 'card', reason: 'closed' },
    ]);
    expect(punches().map((p) => p.reasons)).toEqual([['timeout']]);
  });
});

describe('every trigger not acted on has a reason', () => {
  it('a timekeeping repeat within the debounce window: debounced (info), shown as already recorded', async () => {
    const { store, terminal, ignored, screens, lines } = setup('debounce', 'timekeeping', { credentials: 'card-only', timekeeping: { debounceMs: 60_000 } });
    await enroll(store, opaqueSubject('s-1'), '42');
    expect(await terminal.onCard('42')).toMatchObject({ decision: 'granted' });
    expect(await terminal.onCard('42')).toBeNull();
    expect(ignored).toEqual([{ trigger: 'card', reason: 'debounced' }]);
    expect(screens).toContain('debounced');
    expect(lines.find((l) => l.msg === 'trigger ignored')).toMatchObject({ level: 30, reason: 'debounced' });
    await terminal.close();
  });

  it('keypad digits while nothing asks for a PIN: no-pin-prompt', async () => {
    const { terminal, ignored } = setup('no-prompt', 'timekeeping', {});
    expect(terminal.enterPin('1234')).toBe(false);
    expect(ignored).toEqual([{ trigger: 'pin', reason: 'no-pin-prompt' }]);
    await terminal.close();
  });

  it('the reader folds a held card into one presentation and reports the first repeat once', () => {
    let t = 0;
    const filter = new RepeatFilter(1000, () => t);
    const read = (number: string) => filter.classify({ number, protocol: 'em4100' } as never);
    expect(read('1')).toBe('new');
    t = 100;
    expect(read('1')).toBe('repeat');
    t = 200;
    expect(read('1')).toBe('held');
    t = 300;
    expect(read('2')).toBe('new');
    t = 2000;
    expect(read('2')).toBe('new');
  });
});

describe('face only: a card is a 1:1 claim the face confirms', () => {
  it('matching face: granted card+face; another face: denied face-mismatch; unknown card: denied; none is silent', async () => {
    const { store, terminal, ignored } = setup('face-only', 'timekeeping', FACE_ONLY_CLOCK);
    await enroll(store, opaqueSubject('s-here'), '42');
    await enroll(store, opaqueSubject('s-away'), '43', OTHER_PHOTO); // the camera shows someone else
    expect(await terminal.onCard('42')).toMatchObject({ subject: opaqueSubject('s-here'), credential: 'card+face', decision: 'granted' });
    expect(await terminal.onCard('43')).toMatchObject({ subject: opaqueSubject('s-away'), credential: 'card+face', decision: 'denied', reasons: ['face-mismatch'] });
    expect(await terminal.onCard('99')).toMatchObject({ subject: null, decision: 'denied', reasons: ['unknown-card'] });
    expect(ignored).toEqual([]);
    await terminal.close();
  });

  it('the face must match even when the policy only asks whether a face is there (a 1:N search would match too)', async () => {
    const { store, terminal } = setup('face-only-exists', 'timekeeping', { ...FACE_ONLY_CLOCK, faceCheck: 'face-exists' });
    await enroll(store, opaqueSubject('s-away'), '43', OTHER_PHOTO);
    expect(await terminal.onCard('43')).toMatchObject({ credential: 'card+face', decision: 'denied', reasons: ['face-mismatch'] });
    await terminal.close();
  });
});

describe('PIN attempts are limited per card holder', () => {
  it('after 3 wrong PINs the card + PIN path is locked, across a restart, without a prompt', async () => {
    const file = join(dir, 'pin-lock.db');
    const policy = { credentials: 'card+face', timekeeping: { debounceMs: 0 } };
    const first = setup('pin-lock', 'timekeeping', policy, face, file);
    withPin(first.store, opaqueSubject('s-pin'), '77', '2468');
    const attempt = async (t: typeof first, pin: string) => {
      const n = t.screens.filter((s) => s === 'enter-pin').length;
      const p = t.terminal.onCard('77');
      await until('the PIN prompt', () => t.screens.filter((s) => s === 'enter-pin').length > n);
      t.terminal.enterPin(pin);
      return p;
    };
    expect(await attempt(first, '0000')).toMatchObject({ decision: 'denied', reasons: ['pin-wrong'] });
    expect(await attempt(first, '1111')).toMatchObject({ decision: 'denied', reasons: ['pin-wrong'] });
    expect(await attempt(first, '2222')).toMatchObject({ decision: 'denied', reasons: ['pin-wrong', 'pin-locked'] });
    const prompts = first.screens.filter((s) => s === 'enter-pin').length;
    expect(await first.terminal.onCard('77')).toMatchObject({ subject: opaqueSubject('s-pin'), credential: 'card+pin', decision: 'denied', reasons: ['pin-locked'] });
    expect(first.screens.filter((s) => s === 'enter-pin')).toHaveLength(prompts); // no prompt: the right PIN would not help now
    await first.terminal.close();
    first.store.close();

    const again = setup('pin-lock-2', 'timekeeping', policy, face, file);
    expect(await again.terminal.onCard('77')).toMatchObject({ decision: 'denied', reasons: ['pin-locked'] });
    await again.terminal.close();
    again.store.close();
  });

  it('the lock ends after lockMs; wrong PINs outside the window do not add up; a right PIN clears the count', () => {
    const settings = new Map<string, string>();
    const store = { getSetting: (k: string) => settings.get(k), setSetting: (k: string, v: string) => void settings.set(k, v) };
    let now = 1_000_000;
    const lockout = new PinLockout(store, () => Policy.parse({ pinLockout: { attempts: 3, windowMs: 60_000, lockMs: 300_000 } }), () => now);
    expect(lockout.wrongPin('s')).toBe(false);
    now += 61_000; // the first one has left the window
    expect(lockout.wrongPin('s')).toBe(false);
    expect(lockout.wrongPin('s')).toBe(false);
    expect(lockout.wrongPin('s')).toBe(true);
    expect(lockout.locked('s')).toBe(true);
    now += 299_000;
    expect(lockout.locked('s')).toBe(true);
    now += 1000;
    expect(lockout.locked('s')).toBe(false);
    expect(lockout.wrongPin('s')).toBe(false);
    lockout.rightPin('s');
    expect(lockout.wrongPin('s')).toBe(false);
    expect(lockout.wrongPin('s')).toBe(false);
    expect(lockout.locked('s')).toBe(false);
    expect(lockout.locked('other')).toBe(false);
  });
});
