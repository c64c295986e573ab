import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../../../common/log.js';
import type { CameraConfig } from '../config.js';
import { HardwareError } from '../errors.js';
import { CameraBase } from './camera.js';
import { MjpegSplitter } from './mjpeg-splitter.js';
import type { CommandCandidate } from './still.js';

/**
 * A camera whose frames come from a child process writing MJPEG on stdout: rpicam-vid
 * (libcamera-vid on older Raspberry Pi OS) or ffmpeg reading a V4L2 webcam.
 *  - candidates are tried in order; a missing program (ENOENT) moves on to the next;
 *  - the process is restarted with back-off when it exits, and killed and restarted when no
 *    frame has arrived for stallTimeoutMs (a hung camera stack);
 *  - stop() sends SIGTERM, then SIGKILL after a grace period, and resolves once it has exited;
 *    an 'exit' hook kills it too, so a stopping service leaves no orphan. (If this process is
 *    SIGKILLed, the child's next write hits a closed pipe and SIGPIPE ends it.)
 */
const STOP_GRACE_MS = 1500;

export class ProcessCamera extends CameraBase {
  private child: ChildProcess | undefined;
  private candidate = 0;
  private pauses = 0;
  private lastReported: string | undefined;
  private readonly splitter: MjpegSplitter;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastProgress = 0;
  private stderrTail: string[] = [];
  private readonly killOnExit = (): void => {
    this.child?.kill('SIGKILL');
  };

  constructor(
    private readonly cfg: CameraConfig,
    private readonly candidates: CommandCandidate[],
    /** Takes a full-resolution still while the stream is paused. */
    private readonly takeStill: () => Promise<Buffer>,
    private readonly log?: Logger,
  ) {
    super();
    this.splitter = new MjpegSplitter((jpeg) => this.onFrame(jpeg));
    this.backoffMs = cfg.restartMinMs;
  }

  async start(): Promise<void> {
    if (this.active) return;
    this.active = true;
    process.on('exit', this.killOnExit);
    this.launch();
  }

  async stop(): Promise<void> {
    this.active = false;
    await this.halt();
    process.off('exit', this.killOnExit);
    this.wake(); // frame iterators end
  }

  /**
   * Pauses the stream (the camera has one owner), takes a still, resumes. Frame iterators stay
   * open across the pause; they simply see no new frame until the stream is back.
   */
  async captureStill(): Promise<Buffer> {
    if (!this.active) return this.takeStill();
    this.pauses++;
    await this.halt();
    try {
      return await this.takeStill();
    } finally {
      if (--this.pauses === 0 && this.active) this.launch();
    }
  }

  private launch(): void {
    this.spawnNext();
    this.watchdog = setInterval(() => this.checkStall(), Math.max(50, Math.floor(this.cfg.stallTimeoutMs / 4)));
  }

  /** Stops the process and the timers that would restart it. */
  private async halt(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.watchdog = this.restartTimer = undefined;
    await this.killChild();
  }

  /** Process id of the running camera program (tests check it is gone after stop). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  protected sourceName(): string {
    return this.candidates[this.candidate]?.command ?? 'none';
  }

  protected garbageBytes(): number {
    return this.splitter.stats.garbageBytes;
  }

  private onFrame(jpeg: Buffer): void {
    this.lastProgress = performance.now();
    this.backoffMs = this.cfg.restartMinMs; // it works again: next failure restarts fast
    this.lastReported = undefined;
    this.deliver(jpeg);
  }

  private spawnNext(): void {
    if (!this.active) return;
    const cand = this.candidates[this.candidate];
    if (!cand) return;
    this.splitter.reset();
    this.stderrTail = [];
    this.lastProgress = performance.now();
    const child = spawn(cand.command, cand.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // Output still draining from a process already given up on must not mix into the new stream.
    child.stdout!.on('data', (chunk: Buffer) => this.child === child && this.splitter.push(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      if (this.child !== child) return;
      this.stderrTail.push(...text.split('\n').filter((l) => l.trim()));
      if (this.stderrTail.length > 20) this.stderrTail.splice(0, this.stderrTail.length - 20);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (err.code === 'ENOENT') {
        this.log?.info({ command: cand.command }, 'camera program not installed; trying the next one');
        if (this.candidate + 1 < this.candidates.length) {
          this.candidate++;
          return this.spawnNext();
        }
        this.candidate = 0;
        this.report(new HardwareError('camera', `camera: none of ${this.candidates.map((c) => c.command).join(', ')} is installed`, cand.fix, 'ENOENT'));
      } else {
        this.report(new HardwareError('camera', `camera: cannot start ${cand.command}: ${err.message}`, cand.fix, err.code));
      }
      this.scheduleRestart(`spawn failed: ${err.code ?? err.message}`);
    });
    // 'close', not 'exit': by then stderr is drained, so its last lines can explain the failure.
    child.once('close', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (!this.active) return;
      const reason = `${cand.command} exited (${signal ?? `code ${code}`})`;
      this.log?.warn({ command: cand.command, code, signal, stderr: this.stderrTail.slice(-5) }, 'camera process ended; restarting');
      const hint = explainStderr(this.stderrTail);
      if (hint) this.report(hint);
      this.scheduleRestart(reason);
    });
  }

  private scheduleRestart(reason: string): void {
    if (!this.active || this.pauses > 0 || this.restartTimer) return;
    const inMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.cfg.restartMaxMs);
    this.restarts++;
    this.emit('restart', { reason, inMs });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.spawnNext();
    }, inMs);
  }

  private checkStall(): void {
    const child = this.child;
    if (!child || performance.now() - this.lastProgress < this.cfg.stallTimeoutMs) return;
    this.stalls++;
    this.log?.warn({ command: this.sourceName(), stallTimeoutMs: this.cfg.stallTimeoutMs }, 'camera stalled: no frame in time; restarting it');
    this.child = undefined; // its exit must not schedule a second restart
    child.kill('SIGKILL');
    this.scheduleRestart('stalled');
  }

  private async killChild(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Reports a failure once until it changes or frames flow again (no log flood while retrying). */
  private report(err: HardwareError): void {
    if (err.message === this.lastReported) return;
    this.lastReported = err.message;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log?.error({ fix: err.fix, code: err.code }, err.message);
  }
}

/** Known rpicam/libcamera messages turned into something to try. */
function explainStderr(lines: string[]): HardwareError | undefined {
  const text = lines.join('\n');
  if (/no cameras available/i.test(text)) {
    return new HardwareError('camera', 'camera: the camera program found no camera', 'check the ribbon cable (contacts facing the right way) and run rpicam-hello --list-cameras', 'ENODEV');
  }
  if (/permission denied/i.test(text)) {
    return new HardwareError('camera', 'camera: permission denied on the camera device', 'add the service user to group video (sudo usermod -aG video USER) and restart the service', 'EACCES');
  }
  if (/device or resource busy/i.test(text)) {
    return new HardwareError('camera', 'camera: the camera is in use by another process', 'stop the other camera program (fuser -v /dev/video* /dev/media*)', 'EBUSY');
  }
  return undefined;
}
