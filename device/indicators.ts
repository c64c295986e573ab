import type { LedColor, Outputs } from './hardware/index.js';
import { BUZZER_PATTERNS, LED_PATTERNS, type BuzzerPattern, type LedPattern, type Pattern } from './hardware/patterns.js';
import type { ScreenState } from './terminal.js';
import type { IgnoreReason } from './trigger-queue.js';

/**
 * The LEDs and the buzzer, driven from one place: the terminal's screen state, the MQTT link
 * and the health of the camera and reader map to one pattern per LED (and a sound on entry).
 * docs/facilities-guide.md §4 is this table in words; keep the two the same.
 */
export interface Indication {
  green: LedPattern;
  red: LedPattern;
  /** Played once when the state is entered; null leaves the buzzer as it is. */
  buzzer: BuzzerPattern | null;
}

/** What the unit shows while nobody is at it. */
export type IdleState = 'idle' | 'offline' | 'part-fault';

export type IndicatorState = Exclude<ScreenState, 'idle'> | IdleState;

export const INDICATIONS: Readonly<Record<IndicatorState, Indication>> = {
  idle: { green: 'off', red: 'off', buzzer: null },
  /** The link to the gateway is down: punches are kept and sent later. Also shown while starting. */
  offline: { green: 'off', red: 'blink', buzzer: null },
  /** The camera or the card reader failed; the error beep sounds once, when it fails. */
  'part-fault': { green: 'off', red: 'on', buzzer: null },
  capturing: { green: 'on', red: 'off', buzzer: null },
  deciding: { green: 'on', red: 'off', buzzer: null },
  'enter-pin': { green: 'blink', red: 'off', buzzer: null },
  granted: { green: 'blink-twice', red: 'off', buzzer: 'granted' },
  done: { green: 'blink-twice', red: 'off', buzzer: 'granted' },
  /** Let through, but the punch goes to review: green for the door, a red flash for the doubt. */
  flagged: { green: 'blink-twice', red: 'flash', buzzer: 'granted' },
  denied: { green: 'off', red: 'flash', buzzer: 'denied' },
  /** A repeat punch inside the debounce window: "already recorded", no sound. */
  debounced: { green: 'flash', red: 'off', buzzer: null },
  /** The face path broke during a decision (no engine, no frames, engine too slow or failing). */
  fault: { green: 'off', red: 'blink-twice', buzzer: 'error' },
};

/**
 * A trigger not acted on (trigger-queue.ts), shown over whatever the unit shows: a decision in
 * flight or a PIN prompt keeps its own pattern on the other LED, and takes the flashed LED back
 * when the flash ends. null: no separate sign (debounced has its own screen state, "already
 * recorded"; a reader repeat is the same presentation, which already had its sign).
 */
export interface IgnoredIndication {
  led: { color: LedColor; pattern: LedPattern };
  buzzer: BuzzerPattern | null;
}

/** "Not taken, badge again": a red flash and the refusal beep. */
const NOT_TAKEN: IgnoredIndication = { led: { color: 'red', pattern: 'flash' }, buzzer: 'denied' };

export const IGNORED_INDICATIONS: Readonly<Record<IgnoreReason, IgnoredIndication | null>> = {
  'queue-full': NOT_TAKEN,
  'wait-expired': NOT_TAKEN,
  closed: NOT_TAKEN,
  'no-pin-prompt': NOT_TAKEN,
  debounced: null,
  'reader-repeat': null,
};

/** Sounded once when the camera or the reader fails (not again at every return to idle). */
export const PART_FAULT_BEEP: BuzzerPattern = 'error';

/** A result stays visible for its whole pattern before the idle pattern takes the LEDs back. */
const RESULTS = new Set<IndicatorState>(['granted', 'done', 'flagged', 'denied', 'debounced', 'fault']);

export type HardwarePart = 'camera' | 'reader';

export class Indicators {
  private linkUp = false;
  private readonly failedParts = new Set<HardwarePart>();
  /** What the LEDs show now; idle states are applied only when they change. */
  private shown: IndicatorState | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private atIdle = true;
  private readonly leds: Partial<Record<LedColor, LedPattern>> = {};
  /** An ignored-trigger flash playing on an LED, and what the LED should show after it. */
  private readonly overlays: Partial<Record<LedColor, { timer: NodeJS.Timeout; after: LedPattern | undefined }>> = {};

  constructor(private readonly outputs: Pick<Outputs, 'led' | 'buzz'>) {
    this.showIdle();
  }

  /** A screen state from the terminal. `silent` keeps the buzzer quiet (a fault seen by an idle face scan). */
  screen(state: ScreenState, detail: { silent?: boolean } = {}): void {
    if (state === 'idle') {
      this.atIdle = true;
      if (this.idleTimer) return; // the result still plays; idle follows it
      if (this.shown !== undefined && RESULTS.has(this.shown)) {
        this.idleTimer = setTimeout(() => {
          this.idleTimer = undefined;
          if (this.atIdle) this.showIdle();
        }, resultLengthMs(INDICATIONS[this.shown]));
        return;
      }
      this.showIdle();
      return;
    }
    this.atIdle = false;
    this.cancelIdleTimer();
    this.apply(state, !detail.silent);
  }

  /** A trigger was not acted on: its sign plays over the current state (IGNORED_INDICATIONS). */
  ignored(reason: IgnoreReason): void {
    const i = IGNORED_INDICATIONS[reason];
    if (!i) return;
    const { color, pattern } = i.led;
    const running = this.overlays[color];
    if (running) clearTimeout(running.timer);
    const after = running ? running.after : this.leds[color];
    this.outputs.led(color, pattern);
    this.leds[color] = pattern;
    const timer = setTimeout(() => {
      delete this.overlays[color];
      this.leds[color] = undefined; // whatever comes back is applied, even the same pattern
      if (after !== undefined) this.led(color, after);
    }, patternLengthMs(LED_PATTERNS[pattern]));
    this.overlays[color] = { timer, after };
    if (i.buzzer) this.outputs.buzz(i.buzzer);
  }

  /** The MQTT link came up or went down. */
  link(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    this.refreshIdle();
  }

  /** The camera or reader failed (true) or works again (false). */
  part(part: HardwarePart, failed: boolean): void {
    if (failed === this.failedParts.has(part)) return;
    if (failed) this.failedParts.add(part);
    else this.failedParts.delete(part);
    // The beep marks the moment it failed; the steady red stays until it works again.
    if (failed) this.outputs.buzz(PART_FAULT_BEEP);
    this.refreshIdle();
  }

  /** The idle state the unit is in now (tests and /health could show it). */
  idleState(): IdleState {
    return this.failedParts.size > 0 ? 'part-fault' : this.linkUp ? 'idle' : 'offline';
  }

  close(): void {
    this.cancelIdleTimer();
    for (const o of Object.values(this.overlays)) clearTimeout(o.timer);
  }

  private refreshIdle(): void {
    if (this.atIdle && !this.idleTimer) this.showIdle();
  }

  private showIdle(): void {
    const state = this.idleState();
    if (state === this.shown) return;
    this.apply(state, false);
  }

  private apply(state: IndicatorState, sound: boolean): void {
    const i = INDICATIONS[state];
    this.shown = state;
    this.led('green', i.green);
    this.led('red', i.red);
    if (sound && i.buzzer) this.outputs.buzz(i.buzzer);
  }

  /** A steady or looping pattern already showing is left alone (restarting it would flicker); a one-shot plays again. */
  private led(color: LedColor, pattern: LedPattern): void {
    const overlay = this.overlays[color];
    if (overlay) {
      overlay.after = pattern; // shown when the flash ends
      return;
    }
    const p: Pattern = LED_PATTERNS[pattern];
    const oneShot = !p.repeat && p.steps.length > 0 && p.steps.every(Number.isFinite);
    if (!oneShot && this.leds[color] === pattern) return;
    this.leds[color] = pattern;
    this.outputs.led(color, pattern);
  }

  private cancelIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

/** How long an indication's finite LED patterns take to play out. */
function resultLengthMs(i: Indication): number {
  return Math.max(patternLengthMs(LED_PATTERNS[i.green]), patternLengthMs(LED_PATTERNS[i.red]), i.buzzer ? patternLengthMs(BUZZER_PATTERNS[i.buzzer]) : 0);
}

function patternLengthMs(p: Pattern): number {
  return p.steps.reduce<number>((sum, ms) => sum + (Number.isFinite(ms) ? ms : 0), 0);
}
