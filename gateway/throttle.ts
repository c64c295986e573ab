/**
 * The per-client publish rate limit, as back-pressure rather than punishment: a token bucket
 * (`rate` per second, up to `burst` saved up) whose balance may go negative. A publish without
 * a token is admitted late — its PUBACK (and, because aedes reads a client's next packets only
 * after the current ones are handled, the reading of that client's socket) waits until its
 * token has accrued. A terminal replaying a long outage's outbox is therefore slowed to the
 * rate, never cut off. Only gross abuse ends the connection: more than `burst` publishes
 * waiting for tokens at once, which a client that waits for its PUBACKs cannot reach.
 */
/** A monotonic clock: a wall-clock step (NTP, a dead RTC battery) must not refuse or free a burst. */
const monotonicMs = (): number => performance.now();

export class PublishThrottle {
  private tokens: number;
  private at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = monotonicMs(),
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes a token: how many ms the publish must wait (0: admit now), or null for a flood. */
  take(now = monotonicMs()): number | null {
    this.tokens = Math.min(this.burst, this.tokens + ((Math.max(0, now - this.at) / 1000) * this.rate));
    this.at = now;
    if (this.tokens - 1 < -this.burst) return null;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000);
  }
}

/**
 * Late admissions of one client, strictly in arrival order: a publish never overtakes one
 * that arrived before it, even when its own token would be ready sooner (the bucket refills
 * between the two, or two timers fall due in the same millisecond), so a terminal's events
 * reach the queue in the order it sent them.
 */
export class AdmissionQueue {
  private readonly waiting: { at: number; run: () => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  get idle(): boolean {
    return this.waiting.length === 0;
  }

  schedule(waitMs: number, run: () => void, now = monotonicMs()): void {
    this.waiting.push({ at: now + waitMs, run });
    if (this.timer === null) this.arm();
  }

  private arm(): void {
    const head = this.waiting[0];
    if (!head) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = monotonicMs();
      // The head is due; whoever queued behind it and is due too goes right after it.
      while (this.waiting.length && this.waiting[0]!.at <= now) this.waiting.shift()!.run();
      this.arm();
    }, Math.max(0, head.at - monotonicMs()));
    // A throttled publish must not keep a stopping process alive.
    this.timer.unref();
  }
}
