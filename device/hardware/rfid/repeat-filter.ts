import type { CardRead } from './parsers.js';

/**
 * A card held on a reader is sent over and over (RDM6300: every ~100 ms). Reads of the same
 * number are one presentation until the card has been away for `windowMs`.
 */
export class RepeatFilter {
  private last: { number: string; at: number } | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True when this read is a new presentation. */
  accept(read: CardRead): boolean {
    const t = this.now();
    const repeat = this.last !== undefined && this.last.number === read.number && t - this.last.at < this.windowMs;
    this.last = { number: read.number, at: t };
    return !repeat;
  }

  reset(): void {
    this.last = undefined;
  }
}
