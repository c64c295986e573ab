import { performance } from 'node:perf_hooks';

/*
 * One decision at a time, and no trigger lost without a trace. A presented credential (a card
 * read) preempts an idle face scan, which is nobody's claim; behind a decision in flight or a
 * PIN prompt it waits its turn in a small FIFO. A trigger that cannot wait (the queue is full,
 * it waited past the bound, the terminal is shutting down) is refused through `onIgnored`,
 * the one place that logs, counts and signals a trigger not acted on.
 */

/** What started a decision (or would have). */
export type TriggerKind = 'card' | 'face' | 'pin';

/** Why a trigger was not acted on; the label of clockface_device_triggers_ignored_total. */
export type IgnoreReason =
  /** The FIFO behind the decision in flight was full. */
  | 'queue-full'
  /** It waited in the FIFO longer than the policy's queue.maxWaitMs. */
  | 'wait-expired'
  /** A timekeeping punch repeated within timekeeping.debounceMs: already recorded. */
  | 'debounced'
  /** The same card still on the reader (reader.repeatWindowMs): one presentation, already taken. */
  | 'reader-repeat'
  /** The terminal is shutting down. */
  | 'closed'
  /** Keypad digits while nothing asked for a PIN. */
  | 'no-pin-prompt';

export const IGNORE_REASONS: readonly IgnoreReason[] = ['queue-full', 'wait-expired', 'debounced', 'reader-repeat', 'closed', 'no-pin-prompt'];

export interface IgnoredTrigger {
  trigger: TriggerKind;
  reason: IgnoreReason;
}

export interface TriggerContext {
  /** performance.now() when the decision started (after any wait). */
  startedAt: number;
  /** Wall-clock and monotonic time of the read itself: a punch that waited its turn keeps the time it was made. */
  readAtWall: number;
  readAt: number;
  /** Aborted when a presented credential preempts this (idle) job: stop, record nothing. */
  signal: AbortSignal;
}

export interface TriggerJob<T> {
  kind: TriggerKind;
  /** An idle scan: preempted by a presented credential, never queued (the next scan looks again). */
  idle: boolean;
  run(ctx: TriggerContext): Promise<T | null>;
}

export interface TriggerQueueOptions {
  /** Read at each submit, so a pushed policy applies at once. */
  limits: () => { size: number; maxWaitMs: number };
  onIgnored: (i: IgnoredTrigger) => void;
  /** The slot is free (after a job ends; before the next queued one starts). */
  onIdle: () => void;
  /** An idle job was abandoned for a presented credential. */
  onPreempted?: (preempted: TriggerKind, by: TriggerKind) => void;
}

type Read = Pick<TriggerContext, 'readAtWall' | 'readAt'>;

interface Running<T> {
  job: TriggerJob<T>;
  abort: AbortController;
  settle: (v: T | null) => void;
  done: Promise<void>;
}

interface Waiting<T> {
  job: TriggerJob<T>;
  read: Read;
  timer: NodeJS.Timeout;
  resolve: (v: T | null) => void;
  reject: (e: unknown) => void;
}

export class TriggerQueue<T> {
  private current: Running<T> | undefined;
  private readonly waiting: Waiting<T>[] = [];
  /** Preempted jobs still unwinding (an engine call cannot be cancelled); close() waits for them. */
  private readonly abandoned = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly o: TriggerQueueOptions) {}

  get busy(): boolean {
    return this.current !== undefined || this.waiting.length > 0;
  }

  /** Triggers waiting behind the decision in flight. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs the job now, after the ones waiting, or refuses it with a reason. Resolves with the
   * job's result, or null when it was refused, preempted or (an idle job) found the slot taken.
   */
  submit(job: TriggerJob<T>): Promise<T | null> {
    const read = { readAtWall: Date.now(), readAt: performance.now() };
    // An idle scan is nobody's claim: when it cannot run there is nothing to trace.
    if (job.idle) return this.busy || this.closed ? Promise.resolve(null) : this.start(job, read);
    if (this.closed) return this.refuse(job, 'closed');
    if (this.current?.job.idle) this.preempt(job.kind);
    if (!this.current && this.waiting.length === 0) return this.start(job, read);
    const { size, maxWaitMs } = this.o.limits();
    if (this.waiting.length >= size) return this.refuse(job, 'queue-full');
    return new Promise<T | null>((resolve, reject) => {
      const entry: Waiting<T> = {
        job,
        read,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          this.o.onIgnored({ trigger: job.kind, reason: 'wait-expired' });
          resolve(null);
        }, maxWaitMs),
      };
      this.waiting.push(entry);
    });
  }

  /** Refuses new triggers and those waiting ('closed'); resolves when the job in flight has ended. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      this.o.onIgnored({ trigger: w.job.kind, reason: 'closed' });
      w.resolve(null);
    }
    await Promise.all([this.current?.done, ...this.abandoned]);
  }

  private refuse(job: TriggerJob<T>, reason: IgnoreReason): Promise<null> {
    this.o.onIgnored({ trigger: job.kind, reason });
    return Promise.resolve(null);
  }

  /** The idle job gives up the slot at once; its late result is dropped (it sees its signal aborted). */
  private preempt(by: TriggerKind): void {
    const c = this.current!;
    this.current = undefined;
    c.abort.abort();
    c.settle(null);
    this.abandoned.add(c.done);
    void c.done.then(() => this.abandoned.delete(c.done));
    this.o.onPreempted?.(c.job.kind, by);
  }

  private start(job: TriggerJob<T>, read: Read): Promise<T | null> {
    const abort = new AbortController();
    let settle!: (v: T | null) => void;
    let fail!: (e: unknown) => void;
    const result = new Promise<T | null>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    const entry = { job, abort, settle } as Running<T>;
    this.current = entry;
    entry.done = (async () => {
      try {
        const v = await job.run({ startedAt: performance.now(), ...read, signal: abort.signal });
        if (this.current === entry) settle(v);
      } catch (err) {
        if (this.current === entry) fail(err);
      } finally {
        if (this.current === entry) {
          this.current = undefined;
          this.o.onIdle();
          this.next();
        }
      }
    })();
    return result;
  }

  private next(): void {
    const w = this.waiting.shift();
    if (!w || this.current) return;
    clearTimeout(w.timer);
    this.start(w.job, w.read).then(w.resolve, w.reject);
  }
}
