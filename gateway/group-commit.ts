/**
 * Group commit: events arriving in the same turn of the event loop are written to SQLite in
 * one transaction (one fsync), and only then is each publisher told to send its PUBACK. So
 * "PUBACK sent" always means "on the gateway's disk", at the cost of one fsync per batch
 * rather than per event.
 */
export interface PendingWrite<T> {
  item: T;
  done: (err: Error | null) => void;
}

export class GroupCommit<T> {
  private pending: PendingWrite<T>[] = [];
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly write: (items: T[]) => void,
    private readonly onBatch?: (size: number, ms: number) => void,
  ) {}

  add(item: T, done: (err: Error | null) => void): void {
    this.pending.push({ item, done });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  get size(): number {
    return this.pending.length;
  }

  /** Resolves once everything added so far has been written (or failed). */
  drained(): Promise<void> {
    if (!this.scheduled && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    const started = performance.now();
    let error: Error | null = null;
    try {
      if (batch.length) this.write(batch.map((p) => p.item));
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    this.onBatch?.(batch.length, performance.now() - started);
    for (const p of batch) p.done(error);
    if (!this.scheduled) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
