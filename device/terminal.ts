import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { LIMITS, newMessageId } from '../protocol/index.js';
import type { Logger } from 'pino';
import type { DeviceStore, StoredSubject } from './store.js';
import type { EventRecorder, PunchBody } from './events.js';
import type { FaceAnalysis, FaceEngine } from './face-engine.js';
import { checkAccess, localDate, type Policy } from './policy.js';
import type { Camera, Outputs, WiegandOutput } from './hardware/index.js';
import { faceCredentialNumber } from './wiegand-credential.js';
import { SubjectIndex } from './subject-index.js';
import { TriggerQueue, type IgnoredTrigger, type IgnoreReason, type TriggerContext, type TriggerKind } from './trigger-queue.js';
import { PinLockout } from './pin-lockout.js';
import { CredentialCheck } from './credential-check.js';

/** What the screen shows; each step of the flow has one. */
export type ScreenState = 'idle' | 'capturing' | 'deciding' | 'enter-pin' | 'granted' | 'denied' | 'flagged' | 'done' | 'debounced' | 'fault';
/** Why the face path could not run: a fault to fix, not a face that failed. */
export type FaceFault = 'no-face-engine' | 'no-camera' | 'no-frames' | 'engine-timeout' | 'engine-error';
export type Mode = 'access' | 'timekeeping' | 'both';
type Reason = PunchBody['reasons'][number];

export interface TerminalOptions {
  tenant: string;
  device: string;
  mode: Mode;
  store: DeviceStore;
  recorder: EventRecorder;
  pepper: Buffer;
  /** Badge lookup and PIN check with the pepper; made from store, pepper and log when not given. */
  credentials?: CredentialCheck;
  policy: () => Policy;
  face: FaceEngine | null;
  /** The camera in front of the user (a getter so tests and restarts can swap it). */
  camera: () => Camera | undefined;
  outputs: Outputs;
  wiegand?: WiegandOutput;
  /** Publishes the decision on the `door` topic (best effort; the punch itself is in the outbox). */
  publishDoor?: (d: { door: string; subject: string | null; result: 'granted' | 'denied'; reasons: Reason[]; eventId: string }) => void;
  log: Logger;
  clockSync?: () => 'synced' | 'unsynced' | 'stepped';
}

export interface TerminalEvents {
  /** Each step of the flow; `silent` marks a fault no one is waiting on (an idle face scan). indicators.ts drives the LEDs and buzzer from it. */
  screen: [state: ScreenState, detail: { silent: boolean }];
  punch: [PunchBody, { relayAt: number | null; startedAt: number }];
  /** A trigger the terminal did not act on, with why (logged once, by ignoreTrigger). */
  ignored: [IgnoredTrigger];
}

/**
 * The decision flow: idle → (card | face) → capturing → deciding → [enter-pin] → recording →
 * actuating → idle. One decision at a time (trigger-queue.ts): a card read preempts an idle
 * face scan, and waits its turn behind a decision in flight or a PIN prompt; whatever is not
 * acted on is refused with a reason, logged and counted, never dropped. The punch is in the
 * outbox (durably) before the relay moves or the screen says done.
 */
export class Terminal extends EventEmitter<TerminalEvents> {
  private pinWaiter: ((pin: string | null) => void) | undefined;
  private readonly lastGrant = new Map<string, number>();
  private readonly queue: TriggerQueue<PunchBody>;
  private readonly pinLockout: PinLockout;
  /** The trigger being decided (one at a time): its read time is the punch's time. */
  private trigger: TriggerContext | undefined;

  /** The face templates in memory, kept in step with the store (subject-index.ts). */
  readonly index: SubjectIndex;
  readonly credentials: CredentialCheck;

  constructor(private readonly o: TerminalOptions) {
    super();
    this.index = new SubjectIndex(o.store, o.face?.model ?? null, o.log);
    this.pinLockout = new PinLockout(o.store, o.policy);
    this.queue = new TriggerQueue<PunchBody>({
      limits: () => this.o.policy().queue,
      onIgnored: (i) => this.ignoreTrigger(i.trigger, i.reason),
      onIdle: () => {
        this.trigger = undefined;
        this.screen('idle');
      },
      // Nobody claimed to be anyone: the scan's frames and late engine result are simply dropped.
      onPreempted: (preempted, by) => this.o.log.debug({ preempted, by }, 'idle scan preempted'),
    });
    this.credentials = o.credentials ?? new CredentialCheck({ store: o.store, pepper: o.pepper, log: o.log });
  }

  /**
   * Shutdown: refuses new triggers and those waiting (each traced as 'closed'), ends a PIN
   * prompt (recorded as a timeout), and resolves once the decision in flight is fully recorded
   * and actuated. Nothing is left half done.
   */
  async close(): Promise<void> {
    // The queue refuses what waits before the prompt ends, so nothing starts behind it.
    const closing = this.queue.close();
    const w = this.pinWaiter;
    this.pinWaiter = undefined;
    w?.(null);
    await closing.catch(() => undefined);
    this.index.close(); // the index is the terminal's: it stops following the store with it
  }

  get state(): 'idle' | 'busy' {
    return this.queue.busy ? 'busy' : 'idle';
  }

  /**
   * The one way a trigger is not acted on: one log line (never the card number), the `ignored`
   * event (service.ts counts it by reason; indicators.ts shows it to the employee). Expected
   * repeats (debounced, reader-repeat) log at info, the rest at warn.
   */
  ignoreTrigger(trigger: TriggerKind, reason: IgnoreReason): void {
    const quiet = reason === 'debounced' || reason === 'reader-repeat';
    this.o.log[quiet ? 'info' : 'warn']({ trigger, reason }, 'trigger ignored');
    this.emit('ignored', { trigger, reason });
  }

  /**
   * Keypad entry while the screen asks for a PIN. Returns false when no PIN is being asked for
   * (traced as 'no-pin-prompt', so digits typed too early are seen and not silently lost).
   */
  enterPin(pin: string): boolean {
    const w = this.pinWaiter;
    if (!w) {
      this.ignoreTrigger('pin', 'no-pin-prompt');
      return false;
    }
    this.pinWaiter = undefined;
    w(pin);
    return true;
  }

  /**
   * A card was read: 1:1, the card claims a subject; the face (or PIN) must confirm per policy.
   * It preempts an idle face scan or waits its turn (trigger-queue.ts); null when it was not
   * acted on (refused with a traced reason).
   */
  async onCard(cardNumber: string, action?: 'in' | 'out'): Promise<PunchBody | null> {
    // One "card read" line per read and then exactly one outcome line ("punch" or "trigger
    // ignored"), so a log alone shows every badge accounted for (tests/support/badges.ts).
    this.o.log.info({ trigger: 'card' }, 'card read');
    return this.queue.submit({ kind: 'card', idle: false, run: (ctx) => this.decideCard(ctx, cardNumber, action) });
  }

  private async decideCard(ctx: TriggerContext, cardNumber: string, action?: 'in' | 'out'): Promise<PunchBody | null> {
    const { startedAt } = ctx;
    this.trigger = ctx;
    const policy = this.o.policy();
    const subject = await this.credentials.subjectByCard(cardNumber);
    if (!subject) return this.finish(startedAt, { subject: null, credential: 'card', decision: 'denied', reasons: ['unknown-card'] }, null, null);
    if (subject.suspended) return this.finish(startedAt, { subject: subject.subject, credential: 'card', decision: 'denied', reasons: ['subject-suspended'] }, null, null);

    // card-only and card-or-face: the card alone is the credential. card+face: the face confirms
    // it. Face only: the card is a 1:1 claim the face must match (stronger than a 1:N search,
    // so always a face match, whatever faceCheck says); without face consent, card + PIN.
    const faceOnly = policy.credentials === 'face-only';
    const faceWanted = faceOnly || (policy.credentials === 'card+face' && policy.faceCheck !== 'none');
    const checks: Policy = faceOnly ? { ...policy, faceCheck: 'face-match' } : policy;
    if (!faceWanted) return this.grantIfAllowed(startedAt, subject, 'card', [], null, cardNumber, action);
    if (!subject.faceConsent) {
      // No face consent, in any mode that wants a face: card + PIN when the policy allows it and a PIN is set.
      if (policy.pinFallback && subject.pinHash) return this.pinPath(startedAt, subject, cardNumber, action);
      return this.finish(startedAt, { subject: subject.subject, credential: 'card', decision: 'denied', reasons: ['consent-withdrawn'] }, null, null);
    }

    this.screen('capturing');
    const burst = await this.analyzeBurst(checks, (a) => this.faceFailures(checks, a, subject).reasons.length === 0, ctx.signal);
    if ('aborted' in burst) return null; // never for a card (it is nobody's idle job); kept for the type
    if ('fault' in burst) return this.faceFault(startedAt, subject.subject, 'card+face', burst.fault);
    const analysis = burst.analysis;
    this.screen('deciding');
    const failed = this.faceFailures(checks, analysis, subject);
    if (failed.reasons.length === 0) return this.grantIfAllowed(startedAt, subject, 'card+face', [], analysis, cardNumber, action, failed.similarity);
    // "flag" lets every failed check through for review, an empty view included (the reviewer
    // sees no-face). Only a broken face path (above) always blocks.
    if (policy.onFailedCheck === 'flag') {
      return this.grantIfAllowed(startedAt, subject, 'card+face', [...failed.reasons, 'review-required'], analysis, cardNumber, action, failed.similarity, true);
    }
    return this.finish(
      startedAt,
      { subject: subject.subject, credential: 'card+face', decision: 'denied', reasons: failed.reasons, similarity: failed.similarity },
      analysis,
      null,
    );
  }

  /**
   * A face came into view (the idle scan): 1:N search over local templates. Null when there is
   * nobody to decide on, when the terminal is busy (the next scan looks again), or when a card
   * read preempted it (it was nobody's claim).
   */
  async onFace(action?: 'in' | 'out'): Promise<PunchBody | null> {
    return this.queue.submit({ kind: 'face', idle: true, run: (ctx) => this.decideFace(ctx, action) });
  }

  private async decideFace(ctx: TriggerContext, action?: 'in' | 'out'): Promise<PunchBody | null> {
    const { startedAt } = ctx;
    this.trigger = ctx;
    const policy = this.o.policy();
    if (policy.credentials !== 'face-only' && policy.credentials !== 'card-or-face') return null;
    if (!this.o.face) return null;
    this.screen('capturing');
    // The first frame's search, when it already decides, is the one the decision uses (not run twice).
    const searched = new WeakMap<Float32Array, ReturnType<SubjectIndex['identify']>>();
    const identify = (descriptor: Float32Array) => {
      let found = searched.get(descriptor);
      if (!found) searched.set(descriptor, (found = this.index.identify(descriptor, policy.thresholds)));
      return found;
    };
    const burst = await this.analyzeBurst(policy, (a) => !!a.descriptor && identify(a.descriptor).outcome === 'match', ctx.signal);
    // Preempted by a card read: give up without a trace of its own (no punch, no screen).
    if ('aborted' in burst) return null;
    if ('fault' in burst) {
      // Nobody claimed to be anyone: no punch to record, but the fault shows (silently) and is logged.
      this.o.log.error({ fault: burst.fault }, 'face path fault');
      this.screen('fault', true);
      return null;
    }
    const analysis = burst.analysis;
    if (!analysis || analysis.faces === 0 || !analysis.descriptor) {
      this.screen('idle');
      return null;
    }
    this.screen('deciding');
    const found = identify(analysis.descriptor);
    const best = found.best;
    if (found.outcome === 'ambiguous') {
      return this.finish(startedAt, { subject: null, credential: 'face', decision: 'denied', reasons: ['match-ambiguous'], similarity: best?.similarity ?? null }, analysis, null);
    }
    const subject = found.outcome === 'match' && best ? this.o.store.getSubject(best.subject) : undefined;
    if (!subject || !best) {
      return this.finish(startedAt, { subject: null, credential: 'face', decision: 'denied', reasons: ['unknown-face'], similarity: best?.similarity ?? null }, analysis, null);
    }
    const reasons: Reason[] = [];
    if (policy.livenessRequired && (analysis.liveness ?? 0) < policy.thresholds.liveness) reasons.push('liveness-failed');
    if (reasons.length > 0 && policy.onFailedCheck === 'block') {
      return this.finish(startedAt, { subject: subject.subject, credential: 'face', decision: 'denied', reasons, similarity: best.similarity }, analysis, null);
    }
    return this.grantIfAllowed(startedAt, subject, 'face', reasons.length ? [...reasons, 'review-required'] : [], analysis, null, action, best.similarity, reasons.length > 0);
  }

  /** Opens the door without a punch decision (remote unlock, request to exit). */
  unlock(pulseMs?: number): void {
    if (!this.o.outputs.hasRelay) throw new Error('this terminal has no door relay (hardware.pins.relay); the access panel opens the door');
    this.o.outputs.pulseRelay(pulseMs ?? this.o.policy().access.pulseMs);
  }

  private async pinPath(startedAt: number, subject: StoredSubject, cardNumber: string, action?: 'in' | 'out'): Promise<PunchBody | null> {
    // Too many wrong PINs for this holder: refused without a prompt until the lock ends.
    if (this.pinLockout.locked(subject.subject)) {
      return this.finish(startedAt, { subject: subject.subject, credential: 'card+pin', decision: 'denied', reasons: ['pin-locked'] }, null, null);
    }
    this.screen('enter-pin');
    const pin = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => {
        this.pinWaiter = undefined;
        resolve(null);
      }, this.o.policy().pinTimeoutMs);
      this.pinWaiter = (p) => {
        clearTimeout(timer);
        resolve(p);
      };
    });
    if (pin === null) return this.finish(startedAt, { subject: subject.subject, credential: 'card+pin', decision: 'denied', reasons: ['timeout'] }, null, null);
    if (!(await this.credentials.pinMatches(subject, pin))) {
      // The wrong PIN that reaches the limit says so: the lock starts with this punch.
      const locked = this.pinLockout.wrongPin(subject.subject);
      return this.finish(startedAt, { subject: subject.subject, credential: 'card+pin', decision: 'denied', reasons: locked ? ['pin-wrong', 'pin-locked'] : ['pin-wrong'] }, null, null);
    }
    this.pinLockout.rightPin(subject.subject);
    return this.grantIfAllowed(startedAt, subject, 'card+pin', [], null, cardNumber, action);
  }

  private faceFailures(policy: Policy, a: FaceAnalysis | null, subject: StoredSubject): { reasons: Reason[]; similarity: number | null } {
    if (!a || a.faces === 0) return { reasons: ['no-face'], similarity: null };
    if (a.faces > 1) return { reasons: ['several-faces'], similarity: null };
    const reasons: Reason[] = [];
    let similarity: number | null = null;
    if ((a.faceScore ?? 0) < policy.thresholds.faceExists) reasons.push('face-exists-low');
    if (policy.faceCheck === 'face-match') {
      // One face but no descriptor: every frame failed the quality gate (too small, turned away…).
      if (!a.descriptor) reasons.push('face-quality-low');
      else {
        // No template of this model: only an old model's awaiting re-enrolment (never compared
        // across models), or none at all (enrolled by badge, reference photo not pushed yet).
        similarity = this.index.verify(subject.subject, a.descriptor);
        if (similarity === null) reasons.push(this.index.needsReenrolment(subject.subject) ? 'model-mismatch' : 'no-template');
        else if (similarity < policy.thresholds.match) reasons.push('face-mismatch');
      }
    }
    if (policy.livenessRequired && (a.liveness ?? 0) < policy.thresholds.liveness) reasons.push('liveness-failed');
    return { reasons, similarity };
  }

  /**
   * Captures up to `burst.frames` frames and analyses them. When the first frame alone already
   * `passes` (a clear match) and no liveness is asked for, the decision does not wait for the
   * rest: a grant is one frame's work, while a doubtful face gets the whole burst (and its
   * fused template) before it is refused.
   */
  private async analyzeBurst(
    policy: Policy,
    passes: (a: FaceAnalysis) => boolean,
    signal: AbortSignal,
  ): Promise<{ analysis: FaceAnalysis } | { fault: FaceFault } | { aborted: true }> {
    const camera = this.o.camera();
    const face = this.o.face;
    if (!face) return { fault: 'no-face-engine' };
    if (!camera) return { fault: 'no-camera' };
    const analyze = (frames: Buffer[], earlier?: FaceAnalysis) => withTimeout(face.analyze(frames, earlier), policy.burst.analysisTimeoutMs);
    const frames: Buffer[] = [];
    let first: FaceAnalysis | undefined;
    let lastSeq = -1;
    const deadline = performance.now() + policy.burst.timeoutMs;
    while (frames.length < policy.burst.frames && performance.now() < deadline) {
      const f = camera.latestFrame();
      if (f && f.seq !== lastSeq) {
        frames.push(f.jpeg);
        lastSeq = f.seq;
        if (frames.length === 1 && policy.burst.frames > 1 && !policy.livenessRequired) {
          const r = await analyze(frames);
          if (signal.aborted) return { aborted: true };
          if ('fault' in r) return r;
          first = r.analysis;
          if (first.descriptor && passes(first)) return { analysis: first };
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          camera.off('frame', done);
          resolve();
        }, Math.max(1, deadline - performance.now()));
        camera.once('frame', done);
      });
      if (signal.aborted) return { aborted: true };
    }
    // A camera that gives no frame in the whole burst window is broken, not an empty scene.
    if (frames.length === 0) return { fault: 'no-frames' };
    const r = await analyze(frames, first);
    return signal.aborted ? { aborted: true } : r;
  }

  /** A broken face path blocks (never a flagged pass), ends on the fault screen (error beep), and says why. */
  private faceFault(startedAt: number, subject: string, credential: PunchBody['credential'], fault: FaceFault): PunchBody {
    this.o.log.error({ fault }, 'face path fault');
    return this.finish(startedAt, { subject, credential, decision: 'denied', reasons: ['face-unavailable'] }, null, null, undefined, { fault: true });
  }

  private grantIfAllowed(
    startedAt: number,
    subject: StoredSubject,
    credential: PunchBody['credential'],
    reasons: Reason[],
    analysis: FaceAnalysis | null,
    cardNumber: string | null,
    action: 'in' | 'out' | undefined,
    similarity: number | null = null,
    flagged = false,
  ): PunchBody | null {
    const policy = this.o.policy();
    const now = new Date();
    if (this.o.mode !== 'timekeeping') {
      const denied = checkAccess(policy, subject.accessGroups, now);
      const ap = policy.access.antiPassback;
      const last = this.lastGrant.get(subject.subject);
      const passback = ap.enabled && last !== undefined && now.getTime() - last < ap.windowMs;
      if (denied || passback) {
        return this.finish(startedAt, { subject: subject.subject, credential, decision: 'denied', reasons: [...reasons, denied ?? 'anti-passback'], similarity }, analysis, null);
      }
    }
    let clocksTime = this.o.mode !== 'access';
    if (clocksTime) {
      const lastPunch = Number(this.o.store.getSetting(`last-punch:${subject.subject}`) ?? 0);
      if (now.getTime() - lastPunch < policy.timekeeping.debounceMs) {
        // A repeat within the window is not a new time punch. On a timekeeping-only unit
        // nothing is recorded: the trigger is ignored as 'debounced' (logged, counted, shown as
        // "already recorded"); on a door (both) the door still opens and the passage is
        // recorded as access only, without an in/out.
        this.screen('debounced');
        if (this.o.mode === 'timekeeping') {
          this.ignoreTrigger(credential === 'face' ? 'face' : 'card', 'debounced');
          return null;
        }
        clocksTime = false;
      }
    }
    return this.finish(startedAt, { subject: subject.subject, credential, decision: flagged ? 'flagged' : 'granted', reasons, similarity }, analysis, cardNumber, action, { clocksTime });
  }

  private punchAction(subject: string | null, action: 'in' | 'out' | undefined, decision: PunchBody['decision'], clocksTime: boolean): PunchBody['action'] {
    if (this.o.mode === 'access' || !clocksTime) return 'access';
    if (action) return action;
    const configured = this.o.policy().timekeeping.action;
    if (configured !== 'auto' || subject === null) return configured;
    // auto: the first accepted punch of the day is "in", then it toggles.
    const key = `last-action:${subject}`;
    const [day, last] = (this.o.store.getSetting(key) ?? '').split(' ');
    const next = day === localDate(new Date()) && last === 'in' ? 'out' : 'in';
    if (decision !== 'denied') this.o.store.setSetting(key, `${localDate(new Date())} ${next}`);
    return next;
  }

  private finish(
    startedAt: number,
    d: { subject: string | null; credential: PunchBody['credential']; decision: PunchBody['decision']; reasons: Reason[]; similarity?: number | null },
    analysis: FaceAnalysis | null,
    cardNumber: string | null,
    action?: 'in' | 'out',
    opts: { clocksTime?: boolean; fault?: boolean } = {},
  ): PunchBody {
    const policy = this.o.policy();
    const clocksTime = opts.clocksTime ?? this.o.mode !== 'access';
    const known = d.subject === null ? undefined : this.o.store.getSubject(d.subject);
    const consented = d.subject === null || known?.faceConsent === true;
    // The photo is the frame the face check used; without a face check (card only) it is the
    // current frame, and only for a known person who consented.
    const frame = analysis?.bestFrame ?? (known?.faceConsent && d.credential === 'card' ? this.o.camera()?.latestFrame()?.jpeg : undefined);
    const photo = policy.photoAtPunch && consented && frame && frame.length <= LIMITS.eventPhotoBytes ? frame.toString('base64') : null;
    const usesDoor = this.o.mode !== 'timekeeping';
    const punch: PunchBody = {
      type: 'punch',
      eventId: newMessageId(),
      tenant: this.o.tenant,
      device: this.o.device,
      subject: d.subject,
      credential: d.credential,
      action: this.punchAction(d.subject, action, d.decision, clocksTime),
      decision: d.decision,
      reasons: d.reasons,
      scores: {
        faceExists: round(analysis?.faceScore ?? null),
        similarity: round(d.similarity ?? null),
        liveness: round(analysis?.liveness ?? null),
        quality: round(analysis?.quality ?? null),
      },
      model: analysis ? (this.o.face?.model ?? null) : null,
      door: usesDoor ? policy.access.door : null,
      // The time of the read: a badge that waited its turn is punched when it was shown.
      time: { wall: this.trigger?.readAtWall ?? Date.now(), monotonicMs: this.trigger?.readAt ?? performance.now(), clockSync: this.o.clockSync?.() ?? 'synced' },
      photo,
      photoDropped: false,
    };
    // Durable first: the relay and the "done" screen come only after the outbox commit.
    this.o.recorder.record(punch);
    const accepted = d.decision !== 'denied';
    let relayAt: number | null = null;
    if (accepted && d.subject !== null) {
      this.lastGrant.set(d.subject, Date.now());
      if (clocksTime) this.o.store.setSetting(`last-punch:${d.subject}`, String(Date.now()));
    }
    if (usesDoor) {
      if (accepted) {
        relayAt = this.openDoor(policy);
        this.sendWiegand(policy, d.subject, cardNumber);
      }
      this.guard('door topic', () =>
        this.o.publishDoor?.({ door: policy.access.door, subject: d.subject, result: accepted ? 'granted' : 'denied', reasons: d.reasons, eventId: punch.eventId }),
      );
    }
    // The screen state drives the LEDs and buzzer (indicators.ts); a face-path fault shows as such.
    this.screen(opts.fault ? 'fault' : d.decision === 'granted' ? (usesDoor ? 'granted' : 'done') : d.decision);
    this.emit('punch', punch, { relayAt, startedAt });
    this.o.log.info({ eventId: punch.eventId, decision: punch.decision, reasons: punch.reasons, credential: punch.credential }, 'punch');
    return punch;
  }

  /**
   * Pulses the relay when one is fitted; returns when it moved. A terminal without a relay (the
   * pi-wiegand profile) leaves the door to the external panel, which decides on the frame.
   */
  private openDoor(policy: Policy): number | null {
    if (!this.o.outputs.hasRelay) return null;
    return this.guard('relay', () => {
      this.o.outputs.pulseRelay(policy.access.pulseMs);
      return performance.now();
    }) ?? null;
  }

  /**
   * The grant as a Wiegand frame, independent of the relay: the card just read, or for a face
   * grant the subject's face credential number (wiegand-credential.ts). Sent whenever an output
   * is fitted, unless the policy turns it off (policy.access.wiegand).
   */
  private sendWiegand(policy: Policy, subject: string | null, cardNumber: string | null): void {
    const out = this.o.wiegand;
    if (!out || policy.access.wiegand === false) return;
    const number = cardNumber !== null ? BigInt(cardNumber) : subject !== null ? faceCredentialNumber(subject) : null;
    if (number === null) return;
    this.guard('wiegand', () => out.sendCard(number));
  }

  /** Runs one actuation; a fault is logged and never stops the rest of the decision. */
  private guard<T>(part: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.o.log.error({ err, part }, 'actuation failed');
      return undefined;
    }
  }

  private screen(s: ScreenState, silent = false): void {
    this.o.log.debug({ screen: s }, 'screen');
    this.emit('screen', s, { silent });
  }
}

/**
 * The engine's analysis, or a fault when it throws or takes longer than `ms`. A timed-out
 * analysis cannot be cancelled; its late result is dropped.
 */
async function withTimeout(p: Promise<FaceAnalysis>, ms: number): Promise<{ analysis: FaceAnalysis } | { fault: FaceFault }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ fault: FaceFault }>((resolve) => {
    timer = setTimeout(() => resolve({ fault: 'engine-timeout' }), ms);
  });
  try {
    return await Promise.race([p.then((analysis) => ({ analysis }), () => ({ fault: 'engine-error' as const })), late]);
  } finally {
    clearTimeout(timer);
  }
}

function round(x: number | null): number | null {
  return x === null ? null : Math.min(1, Math.max(0, Math.round(x * 10_000) / 10_000));
}
