import type { WiegandConfig } from '../config.js';
import type { GpioBackend, OutputLine } from '../gpio/types.js';
import { wiegandForCard, type WiegandBits } from './encoder.js';

/**
 * Sends Wiegand frames on D0/D1 to an access panel. Both lines idle high; a 0 bit pulls D0 low
 * for pulseUs, a 1 bit pulls D1 low; bits start every intervalUs. Timing is busy-waited on the
 * high-resolution clock, because timers cannot hold microsecond pulses and a gap long enough
 * makes the panel end the frame early. Bit gaps can stretch (a preempted process), never shrink.
 * A 34-bit frame at the default 2 ms blocks the event loop
 * for about 70 ms, once per granted card.
 */
export class WiegandOutput {
  private readonly d0: OutputLine;
  private readonly d1: OutputLine;
  /** Frames waiting for the gap after the previous one, in order. */
  private readonly waiting: WiegandBits[] = [];
  private quietUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private drainedWaiters: Array<() => void> = [];

  constructor(
    backend: GpioBackend,
    pins: { d0: number; d1: number },
    private readonly cfg: WiegandConfig,
  ) {
    this.d0 = backend.output(pins.d0, 'wiegand-d0', 1);
    this.d1 = backend.output(pins.d1, 'wiegand-d1', 1);
  }

  /**
   * Sends a card number in the configured format; returns the bits. The frame goes out now, or
   * (a grant right after another) once the previous frame's gap has passed, so the panel sees
   * two frames and never one run-together frame.
   */
  sendCard(cardNumber: bigint | number): WiegandBits {
    const bits = wiegandForCard(cardNumber, this.cfg.format, this.cfg.facilityCode);
    this.waiting.push(bits);
    this.pump();
    return bits;
  }

  /** Resolves when every frame handed over has been sent. */
  drained(): Promise<void> {
    if (!this.waiting.length) return Promise.resolve();
    return new Promise((resolve) => this.drainedWaiters.push(resolve));
  }

  private pump(): void {
    if (this.timer) return;
    while (this.waiting.length) {
      const wait = this.quietUntil - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, Math.ceil(wait));
        return;
      }
      this.sendBits(this.waiting.shift()!);
      this.quietUntil = performance.now() + this.cfg.frameGapMs;
    }
    for (const resolve of this.drainedWaiters.splice(0)) resolve();
  }

  sendBits(bits: WiegandBits): void {
    const pulseNs = BigInt(this.cfg.pulseUs) * 1000n;
    const intervalNs = BigInt(this.cfg.intervalUs) * 1000n;
    try {
      let earliest = 0n;
      for (const bit of bits) {
        const line = bit === 1 ? this.d1 : this.d0;
        spinUntil(earliest);
        line.write(0);
        // Both timings count from when the line is actually low: the pulse is never shorter than
        // pulseUs, and a late bit (a preempted process) delays the next one instead of crowding it.
        const fell = process.hrtime.bigint();
        spinUntil(fell + pulseNs);
        line.write(1);
        earliest = fell + intervalNs;
      }
    } finally {
      this.d0.write(1);
      this.d1.write(1);
    }
  }

  /** Frames still waiting for their gap are not sent: the lines are released at rest (high). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.waiting.length = 0;
    for (const resolve of this.drainedWaiters.splice(0)) resolve();
    this.d0.close();
    this.d1.close();
  }
}

function spinUntil(deadline: bigint): void {
  while (process.hrtime.bigint() < deadline) {
    /* busy-wait: microsecond timing */
  }
}
