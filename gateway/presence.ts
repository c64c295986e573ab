/**
 * Presence changes on their way to the cloud, with a grace period for "offline": a terminal
 * that disconnects and is back within `graceMs` (a credentials reload, a broker-side session
 * takeover, a short network blip) is never reported offline. "Online" always goes at once;
 * an "offline" still pending when the terminal returns is dropped. A grace of 0 reports
 * everything as it happens.
 */
export type PresenceState = 'online' | 'offline';

export class PresenceDebounce {
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; at: number }>();

  constructor(
    private readonly graceMs: number,
    private readonly report: (device: string, state: PresenceState, at: number) => void,
  ) {}

  /** A status message, Last Will or dropped connection for a device. */
  observe(device: string, state: PresenceState, at: number): void {
    const waiting = this.pending.get(device);
    if (state === 'online') {
      if (waiting) clearTimeout(waiting.timer);
      this.pending.delete(device);
      this.report(device, state, at);
      return;
    }
    if (this.graceMs === 0) return this.report(device, state, at);
    if (waiting) {
      // A Last Will carries the time its connection began; the broker's own drop notice is
      // later. The cloud ignores presence older than what it holds, so report the latest.
      waiting.at = Math.max(waiting.at, at);
      return;
    }
    const entry = { at } as { at: number; timer: NodeJS.Timeout };
    entry.timer = setTimeout(() => {
      this.pending.delete(device);
      this.report(device, 'offline', entry.at);
    }, this.graceMs);
    entry.timer.unref();
    this.pending.set(device, entry);
  }

  /** Devices whose "offline" is waiting out the grace period. */
  get waiting(): string[] {
    return [...this.pending.keys()];
  }

  /** Shutdown: whoever is still away is reported now (the store keeps it for the next start). */
  flush(): void {
    for (const [device, { timer, at }] of this.pending) {
      clearTimeout(timer);
      this.report(device, 'offline', at);
    }
    this.pending.clear();
  }
}
