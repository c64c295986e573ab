/**
 * Lets the forward reader's reads and the wipe take turns. A wipe ends with a checkpoint that
 * truncates the WAL, which cannot finish while another connection reads an older snapshot;
 * under load the forward reader (gateway/forward-reader.ts) reads a batch almost all the time,
 * so a wipe that merely waited for a gap would wait on the writer's thread (group commits and
 * PUBACKs queued behind it) and often give up. So the wipe runs exclusive: reads already in
 * flight finish (tens of ms at most), new ones wait for the wipe, which then finds no reader.
 */
export class ReaderPause {
  private reading = 0;
  private idle: (() => void)[] = [];
  private paused: Promise<void> | null = null;

  /** Runs a read, after any wipe in progress. */
  async read<T>(fn: () => Promise<T>): Promise<T> {
    while (this.paused) await this.paused;
    this.reading++;
    try {
      return await fn();
    } finally {
      if (--this.reading === 0) for (const resume of this.idle.splice(0)) resume();
    }
  }

  /** Runs `fn` with no read in flight and none starting until it is done. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.paused) await this.paused;
    let release!: () => void;
    this.paused = new Promise<void>((resolve) => (release = resolve));
    try {
      if (this.reading > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
      return await fn();
    } finally {
      this.paused = null;
      release();
    }
  }
}
