import { z } from 'zod';
import type { GpioBackend, InputLine } from './hardware/gpio/types.js';

/** Timekeeping function keys on GPIO buttons: press "in" or "out", then badge (or look). */
export const FunctionKeysConfig = z
  .object({
    in: z.number().int().min(0).max(1023).optional(),
    out: z.number().int().min(0).max(1023).optional(),
    /** Level a pressed key reads (buttons to ground with pull-ups read 0). */
    activeLevel: z.union([z.literal(0), z.literal(1)]).default(0),
    /** A key press applies to a punch within this long. */
    holdMs: z.number().int().min(500).max(60_000).default(8000),
  })
  .strict()
  .prefault({});
export type FunctionKeysConfig = z.infer<typeof FunctionKeysConfig>;

export class FunctionKeys {
  private pending: { action: 'in' | 'out'; until: number } | undefined;
  private readonly lines: InputLine[] = [];

  constructor(gpio: GpioBackend, private readonly config: FunctionKeysConfig, private readonly onPress?: (action: 'in' | 'out') => void) {
    for (const action of ['in', 'out'] as const) {
      const pin = config[action];
      if (pin === undefined) continue;
      const line = gpio.input(pin, `key-${action}`);
      line.watch((level) => {
        if (level !== config.activeLevel) return;
        this.pending = { action, until: Date.now() + config.holdMs };
        this.onPress?.(action);
      });
      this.lines.push(line);
    }
  }

  /** The action chosen by the last key press, while it holds; undefined when none is pending. */
  peek(): 'in' | 'out' | undefined {
    const p = this.pending;
    return p && Date.now() <= p.until ? p.action : undefined;
  }

  /** Called when a punch was recorded: the key press is used up. */
  clear(): void {
    this.pending = undefined;
  }

  take(): 'in' | 'out' | undefined {
    const a = this.peek();
    this.clear();
    return a;
  }

  close(): void {
    for (const l of this.lines) l.close();
  }
}
