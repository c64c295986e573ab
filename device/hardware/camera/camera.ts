import { EventEmitter } from 'node:events';
import type { HardwareError } from '../errors.js';

/** One JPEG frame from a camera. */
export interface Frame {
  jpeg: Buffer;
  /** Counts up from 1 for the life of the Camera object (across process restarts). */
  seq: number;
  /** performance.now() when the last byte arrived (for latency measurements). */
  receivedAt: number;
  /** Wall-clock time of arrival, ms since the epoch. */
  wallTime: number;
}

export interface CameraStats {
  frames: number;
  /** Frames per second over the last few seconds. */
  fps: number;
  restarts: number;
  stalls: number;
  garbageBytes: number;
  running: boolean;
  /** Which program produces frames (rpicam-vid, libcamera-vid, ffmpeg, replay). */
  source: string;
}

export interface CameraEvents {
  frame: [Frame];
  /** The camera process ended or stalled and will be restarted after `inMs`. */
  restart: [{ reason: string; inMs: number }];
  /** A failure staff can act on (missing tool, no camera, permission). Retries continue. */
  error: [HardwareError];
}

export interface Camera extends EventEmitter<CameraEvents> {
  start(): Promise<void>;
  /** Stops frame production; resolves when any child process has exited. */
  stop(): Promise<void>;
  /** The newest frame, or undefined before the first one. */
  latestFrame(): Frame | undefined;
  /**
   * Frames as fast as the consumer takes them, newest only: a slow consumer skips frames
   * instead of queueing them (back-pressure never builds up memory or latency). Ends on stop().
   */
  frames(): AsyncIterableIterator<Frame>;
  /** A full-resolution still for enrollment (may pause the stream briefly). */
  captureStill(): Promise<Buffer>;
  stats(): CameraStats;
}

const FPS_WINDOW_MS = 2000;

/** Shared frame bookkeeping: newest frame, fps window, the newest-only iterator. */
export abstract class CameraBase extends EventEmitter<CameraEvents> implements Camera {
  protected latest: Frame | undefined;
  protected seq = 0;
  protected restarts = 0;
  protected stalls = 0;
  protected active = false;
  private readonly arrivals: number[] = [];
  private waiters: Array<() => void> = [];

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract captureStill(): Promise<Buffer>;
  protected abstract sourceName(): string;
  protected abstract garbageBytes(): number;

  latestFrame(): Frame | undefined {
    return this.latest;
  }

  stats(): CameraStats {
    const now = performance.now();
    while (this.arrivals.length && now - this.arrivals[0]! > FPS_WINDOW_MS) this.arrivals.shift();
    const span = this.arrivals.length > 1 ? now - this.arrivals[0]! : 0;
    const fps = span > 0 ? ((this.arrivals.length - 1) * 1000) / span : 0;
    return {
      frames: this.seq,
      fps: Math.round(fps * 10) / 10,
      restarts: this.restarts,
      stalls: this.stalls,
      garbageBytes: this.garbageBytes(),
      running: this.active,
      source: this.sourceName(),
    };
  }

  async *frames(): AsyncIterableIterator<Frame> {
    let seen = 0;
    while (this.active || (this.latest && this.latest.seq > seen)) {
      if (this.latest && this.latest.seq > seen) {
        seen = this.latest.seq;
        yield this.latest;
        continue;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  protected deliver(jpeg: Buffer): void {
    const receivedAt = performance.now();
    const frame: Frame = { jpeg, seq: ++this.seq, receivedAt, wallTime: Date.now() };
    this.latest = frame;
    this.arrivals.push(receivedAt);
    if (this.arrivals.length > 1000) this.arrivals.shift();
    this.wake();
    this.emit('frame', frame);
  }

  /** Releases iterators waiting for a frame (on a frame, or on stop so they can end). */
  protected wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
