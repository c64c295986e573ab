import type { CardRead } from './parsers.js';

/**
 * A card held on a reader is sent over and over (RDM6300: every ~100 ms). Reads of the same
 * number are one presentation until the card has been away for `windowMs`.
 */
export class RepeatFilter {
  private last: { number: string; at: number; folded: number } | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True when this read is a new presentation. */
  accept(read: CardRead): boolean {
    return this.classify(read) === 'new';
  }

  /**
   * 'new' for a new presentation; 'repeat' for the first read folded into the presentation
   * before it (reported, so a second tap inside the window leaves a trace); 'held' for the
   * stream of reads after that (a card resting on the reader is one trace, not ten a second).
   */
  classify(read: CardRead): 'new' | 'repeat' | 'held' {
    const t = this.now();
    const last = this.last;
    if (last !== undefined && last.number === read.number && t - last.at < this.windowMs) {
      this.last = { number: read.number, at: t, folded: last.folded + 1 };
      return last.folded === 0 ? 'repeat' : 'held';
    }
    this.last = { number: read.number, at: t, folded: 0 };
    return 'new';
  }

  reset(): void {
    this.last = undefined;
  }
}
