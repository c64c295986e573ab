import { EventEmitter } from 'node:events';
import type { Logger } from '../../common/log.js';
import type { GpioConfig, PinMap, RelayConfig } from './config.js';
import type { GpioBackend, Level, OutputLine } from './gpio/types.js';
import { BUZZER_PATTERNS, LED_PATTERNS, PatternPlayer, type BuzzerPattern, type LedPattern, type Pattern } from './patterns.js';

export type LedColor = 'green' | 'red';

export interface OutputsEvents {
  /** The door relay changed: open = the door may be opened now. */
  relay: [{ open: boolean; pulseMs?: number }];
}

/**
 * Door relay, LEDs and buzzer. The relay's safety rules:
 *  - it is driven to its rest (locked) state when the lines are opened, before anything else;
 *  - every pulse has a timer that ends it, and a pulse can never exceed relay.maxPulseMs;
 *  - safe() (called on exit, SIGTERM and uncaught exceptions by the hardware set) ends any pulse.
 * "Energised" is the coil; polarity (activeLow) maps it to a pin level, and mode picks which
 * coil state is the rest state (fail-secure strike: rest de-energised; fail-safe maglock: rest energised).
 */
export class Outputs extends EventEmitter<OutputsEvents> {
  private readonly relayLine: OutputLine | undefined;
  private readonly leds = new Map<LedColor, { line: OutputLine; player: PatternPlayer }>();
  private readonly buzzer: { line: OutputLine; player: PatternPlayer } | undefined;
  private pulseTimer: NodeJS.Timeout | undefined;
  private pulseEndsAt = 0;

  constructor(
    backend: GpioBackend,
    pins: PinMap,
    private readonly relay: RelayConfig,
    gpio: Pick<GpioConfig, 'ledsActiveLow' | 'buzzerActiveLow'>,
    private readonly log?: Logger,
  ) {
    super();
    if (pins.relay !== undefined) this.relayLine = backend.output(pins.relay, 'relay', this.relayLevel(false));
    const ledOff: Level = gpio.ledsActiveLow ? 1 : 0;
    if (pins.greenLed !== undefined) this.addLed('green', backend.output(pins.greenLed, 'green-led', ledOff), gpio.ledsActiveLow);
    if (pins.redLed !== undefined) this.addLed('red', backend.output(pins.redLed, 'red-led', ledOff), gpio.ledsActiveLow);
    if (pins.buzzer !== undefined) {
      const line = backend.output(pins.buzzer, 'buzzer', gpio.buzzerActiveLow ? 1 : 0);
      this.buzzer = { line, player: new PatternPlayer((on) => line.write(level(on, gpio.buzzerActiveLow))) };
    }
  }

  get hasRelay(): boolean {
    return this.relayLine !== undefined;
  }

  /** True while a pulse holds the door open. */
  get relayOpen(): boolean {
    return this.pulseTimer !== undefined;
  }

  /**
   * Opens the door for `ms` (default relay.pulseMs, at most relay.maxPulseMs). A pulse during a
   * pulse extends it to end `ms` from now. Returns the pulse length actually used.
   */
  pulseRelay(ms: number = this.relay.pulseMs): number {
    if (!this.relayLine) throw new Error('outputs: no relay pin configured (hardware.pins.relay)');
    if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`outputs: pulse length must be a positive number of ms, got ${ms}`);
    const length = Math.min(Math.round(ms), this.relay.maxPulseMs);
    if (length < ms) this.log?.warn({ requestedMs: ms, pulseMs: length }, 'relay pulse cut to relay.maxPulseMs');
    if (this.pulseTimer) clearTimeout(this.pulseTimer);
    else this.relayLine.write(this.relayLevel(true));
    this.pulseEndsAt = performance.now() + length;
    this.pulseTimer = setTimeout(() => this.endPulse(), length);
    this.emit('relay', { open: true, pulseMs: length });
    return length;
  }

  /** Milliseconds left in the current pulse (0 when closed). */
  pulseRemainingMs(): number {
    return this.pulseTimer ? Math.max(0, this.pulseEndsAt - performance.now()) : 0;
  }

  led(color: LedColor, pattern: LedPattern | Pattern): void {
    const led = this.leds.get(color);
    if (!led) return; // a terminal without that LED shows nothing; not an error
    led.player.play(typeof pattern === 'string' ? LED_PATTERNS[pattern] : pattern);
  }

  buzz(pattern: BuzzerPattern | Pattern): void {
    this.buzzer?.player.play(typeof pattern === 'string' ? BUZZER_PATTERNS[pattern] : pattern);
  }

  /** Ends any pulse and pattern and drives every output to its rest level. Safe to call repeatedly. */
  safe(): void {
    if (this.pulseTimer) clearTimeout(this.pulseTimer);
    const wasOpen = this.pulseTimer !== undefined;
    this.pulseTimer = undefined;
    try {
      this.relayLine?.write(this.relayLevel(false));
    } finally {
      for (const { player } of this.leds.values()) player.stop();
      this.buzzer?.player.stop();
    }
    if (wasOpen) this.emit('relay', { open: false });
  }

  /** safe(), then releases the lines. */
  close(): void {
    this.safe();
    this.relayLine?.close();
    for (const { line } of this.leds.values()) line.close();
    this.buzzer?.line.close();
  }

  private endPulse(): void {
    this.pulseTimer = undefined;
    this.relayLine?.write(this.relayLevel(false));
    this.emit('relay', { open: false });
  }

  private relayLevel(open: boolean): Level {
    const energised = this.relay.mode === 'fail-secure' ? open : !open;
    return level(energised, this.relay.activeLow);
  }

  private addLed(color: LedColor, line: OutputLine, activeLow: boolean): void {
    this.leds.set(color, { line, player: new PatternPlayer((on) => line.write(level(on, activeLow))) });
  }
}

function level(on: boolean, activeLow: boolean): Level {
  return on !== activeLow ? 1 : 0;
}
