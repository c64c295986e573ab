/**
 * The command long-polls that are waiting right now. A cloud that stops must not sit out
 * each one's wait (up to 30 s) while systemd, an operator or a failover waits for the exit:
 * `endAll()` answers every open poll at once (an empty answer, which a gateway takes as
 * "poll again"), and a poll that starts after it does not wait at all.
 */
export class LongPolls {
  private readonly open = new Set<() => void>();
  private ended = false;

  get ending(): boolean {
    return this.ended;
  }

  /**
   * Waits up to `ms`, or until `subscribe`'s wake function is called (a command was queued),
   * the client goes away (`gone` emits 'close'), or the cloud stops.
   */
  wait(ms: number, subscribe: (wake: () => void) => () => void, gone: NodeJS.EventEmitter): Promise<void> {
    if (this.ended || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        gone.off('close', done);
        this.open.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      const unsubscribe = subscribe(done);
      gone.once('close', done);
      this.open.add(done);
    });
  }

  /** Answers every open poll now and every later one at once; returns how many were open. */
  endAll(): number {
    this.ended = true;
    const waiting = [...this.open];
    waiting.forEach((done) => done());
    return waiting.length;
  }
}
