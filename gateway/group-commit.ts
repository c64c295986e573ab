/**
 * Group commit: events arriving while the previous group is being written (or, when idle, in
 * the same turn of the event loop) are written to SQLite in one transaction (one fsync), and
 * only then is each publisher told to send its PUBACK. So "PUBACK sent" always means "on the
 * gateway's disk", at the cost of one fsync per batch rather than per event.
 *
 * The write may be asynchronous (gateway/event-writer.ts commits on a worker thread). One
 * group is written at a time, in order, so the queue's order is the order of arrival; the
 * longer a commit takes, the larger the next group gets.
 */
export interface PendingWrite<T> {
  /** Absent for a barrier (afterQueued): nothing to write, only a place in the order. */
  item?: T;
  done: (err: Error | null) => void;
}

export class GroupCommit<T> {
  private pending: PendingWrite<T>[] = [];
  private scheduled = false;
  private writing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly write: (items: T[]) => void | Promise<void>,
    private readonly onBatch?: (size: number, ms: number) => void,
  ) {}

  add(item: T, done: (err: Error | null) => void): void {
    this.pending.push({ item, done });
    this.schedule();
  }

  /**
   * Calls done once everything added so far has been written (or failed), in order with their
   * callbacks — at once if nothing is waiting. The broker uses it to keep a client's PUBACKs in
   * the order of its PUBLISHes when a status or door message follows events still being committed.
   */
  afterQueued(done: () => void): void {
    if (!this.scheduled && !this.writing && this.pending.length === 0) return done();
    this.pending.push({ done });
  }

  get size(): number {
    return this.pending.length;
  }

  /** Resolves once everything added so far has been written (or failed). */
  drained(): Promise<void> {
    if (!this.scheduled && !this.writing && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    this.writing = true;
    const started = performance.now();
    const items: T[] = [];
    for (const p of batch) if ('item' in p) items.push(p.item as T);
    let error: Error | null = null;
    try {
      if (items.length) await this.write(items);
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    this.writing = false;
    this.onBatch?.(items.length, performance.now() - started);
    for (const p of batch) p.done(error);
    if (this.pending.length) return this.schedule();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
