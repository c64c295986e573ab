/**
 * Light and sound patterns as step lists: durations in ms, alternating on, off, on, ... and
 * always ending off. A pattern with `repeat` loops until replaced (the idle "blink").
 */
export interface Pattern {
  steps: readonly number[];
  repeat?: boolean;
}

export const LED_PATTERNS = {
  off: { steps: [] },
  on: { steps: [Infinity] },
  /** Access granted: two short blinks. */
  'blink-twice': { steps: [150, 150, 150] },
  /** Slow continuous blink: waiting, offline. */
  blink: { steps: [500, 500], repeat: true },
  /** One second on: a decision shown. */
  flash: { steps: [1000] },
} as const satisfies Record<string, Pattern>;

export const BUZZER_PATTERNS = {
  off: { steps: [] },
  granted: { steps: [150] },
  denied: { steps: [100, 100, 100, 100, 100] },
  error: { steps: [800] },
} as const satisfies Record<string, Pattern>;

export type LedPattern = keyof typeof LED_PATTERNS;
export type BuzzerPattern = keyof typeof BUZZER_PATTERNS;

/** Plays patterns on one on/off line with timers; a new pattern replaces the running one. */
export class PatternPlayer {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly set: (on: boolean) => void) {}

  play(pattern: Pattern): void {
    this.stop();
    const { steps, repeat } = pattern;
    if (steps.length === 0) return;
    let i = 0;
    const step = (): void => {
      if (i >= steps.length) {
        if (!repeat) return this.stop();
        i = 0;
      }
      const on = i % 2 === 0;
      this.set(on);
      const ms = steps[i++]!;
      if (ms === Infinity) return; // stays on until replaced
      this.timer = setTimeout(step, ms);
    };
    step();
  }

  /** Cancels the pattern and leaves the line off. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.set(false);
  }
}
