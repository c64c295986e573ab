import { performance } from 'node:perf_hooks';

/** Before this the wall clock cannot be right (a Pi without RTC boots in the past until NTP). */
const PLAUSIBLE_FROM = Date.UTC(2025, 0, 1);

/**
 * What the terminal can tell about its wall clock without asking the OS: `unsynced` while the
 * date is implausible, `stepped` when the wall clock jumped against the monotonic clock since the
 * last look (NTP corrected it, or someone set it), else `synced`. Punches carry it so the cloud
 * can order and flag times.
 */
export class ClockWatch {
  private offset: number | undefined;
  constructor(
    private readonly wall: () => number = Date.now,
    private readonly mono: () => number = () => performance.now(),
    private readonly stepMs = 2000,
  ) {}

  state(): 'synced' | 'unsynced' | 'stepped' {
    const w = this.wall();
    const offset = w - this.mono();
    const previous = this.offset;
    this.offset = offset;
    if (w < PLAUSIBLE_FROM) return 'unsynced';
    if (previous !== undefined && Math.abs(offset - previous) > this.stepMs) return 'stepped';
    return 'synced';
  }
}
