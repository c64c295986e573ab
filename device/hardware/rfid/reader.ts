import { EventEmitter } from 'node:events';
import { realpathSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { SerialPort } from 'serialport';
import type { Logger } from '../../../common/log.js';
import type { ReaderConfig } from '../config.js';
import { explainAccessError, type HardwareError } from '../errors.js';
import { em4100Frame, Em4100Parser, LineParser, type CardParser, type CardRead, type ParserSink } from './parsers.js';
import { RepeatFilter } from './repeat-filter.js';

export interface CardReaderEvents {
  /** A new card presentation (repeats within reader.repeatWindowMs are folded into one). */
  card: [CardRead];
  /** A read folded into the presentation before it (once per presentation; never the number). */
  repeat: [];
  /** A PIN keyed on the reader's keypad (line readers: digits then '#'). */
  pin: [{ pin: string }];
  /** A frame that failed its checksum or format; `reason` names why (never the card number). */
  reject: [{ reason: string }];
  connected: [];
  disconnected: [{ reason: string }];
  /** Opening failed; `fix` says what to try. Emitted once per distinct failure, retries continue. */
  error: [HardwareError];
}

export interface CardReader extends EventEmitter<CardReaderEvents> {
  readonly kind: 'serial' | 'simulator';
  readonly connected: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Shared path: bytes -> parser -> repeat filter -> events. */
function makeSink(emitter: EventEmitter<CardReaderEvents>, filter: RepeatFilter): ParserSink {
  return {
    card: (read) => {
      const seen = filter.classify(read);
      if (seen === 'new') emitter.emit('card', read);
      else if (seen === 'repeat') emitter.emit('repeat');
    },
    pin: (pin) => emitter.emit('pin', { pin }),
    reject: (reason) => emitter.emit('reject', { reason }),
  };
}

function makeParser(cfg: ReaderConfig, sink: ParserSink): CardParser {
  return cfg.protocol === 'em4100' ? new Em4100Parser(sink) : new LineParser(sink, cfg.lineFormat);
}

/**
 * A reader on a serial port. It survives unplug/replug: when the port closes or cannot be
 * opened it retries with back-off (reader.reconnectMinMs doubling to reconnectMaxMs).
 */
export class SerialCardReader extends EventEmitter<CardReaderEvents> implements CardReader {
  readonly kind = 'serial' as const;
  private port: SerialPort | undefined;
  private readonly parser: CardParser;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private stopped = true;
  private lastErrorCode: string | undefined = 'none';
  private isConnected = false;
  private presenceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: ReaderConfig & { path: string },
    private readonly log?: Logger,
  ) {
    super();
    this.parser = makeParser(cfg, makeSink(this, new RepeatFilter(cfg.repeatWindowMs)));
    this.retryMs = cfg.reconnectMinMs;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** Resolves after the first open attempt, connected or not (it keeps retrying in the background). */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.retryTimer = this.presenceTimer = undefined;
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    this.isConnected = false;
  }

  private open(): Promise<void> {
    return new Promise((resolve) => {
      const port = new SerialPort({ path: this.cfg.path, baudRate: this.cfg.baudRate, autoOpen: false });
      port.open((err) => {
        if (this.stopped) {
          if (!err) port.close();
          return resolve();
        }
        if (err) {
          const hwErr = explainAccessError('reader', this.cfg.path, err);
          if ((hwErr.code ?? 'other') !== this.lastErrorCode) {
            this.lastErrorCode = hwErr.code ?? 'other';
            this.log?.warn({ path: this.cfg.path, code: hwErr.code, fix: hwErr.fix }, hwErr.message);
            if (this.listenerCount('error') > 0) this.emit('error', hwErr);
          }
          this.scheduleRetry();
          return resolve();
        }
        this.port = port;
        this.lastErrorCode = 'none';
        this.retryMs = this.cfg.reconnectMinMs;
        this.parser.reset();
        this.isConnected = true;
        port.on('data', (chunk: Buffer) => this.port === port && this.parser.push(chunk));
        port.on('error', (e: Error) => this.log?.warn({ path: this.cfg.path, err: e }, 'card reader port error'));
        port.once('close', (e?: Error | null) => this.onClose(port, e?.message ?? 'port closed'));
        this.watchPresence(port);
        this.log?.info({ path: this.cfg.path }, 'card reader connected');
        this.emit('connected');
        resolve();
      });
    });
  }

  /**
   * An unplugged USB reader removes its device node, but the port does not always report it
   * (a hang-up before the first read goes unnoticed by the poller). So while connected, check
   * that the path still leads to the device that was opened; if not, drop it and reconnect.
   */
  private watchPresence(port: SerialPort): void {
    const target = resolveDevice(this.cfg.path);
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.presenceTimer = setInterval(() => {
      if (this.port !== port || resolveDevice(this.cfg.path) === target) return;
      this.onClose(port, 'device path vanished or changed');
      if (port.isOpen) port.close(() => undefined);
    }, Math.max(100, this.cfg.reconnectMinMs));
  }

  private onClose(port: SerialPort, reason: string): void {
    if (this.port !== port) return;
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.presenceTimer = undefined;
    this.port = undefined;
    this.isConnected = false;
    if (this.stopped) return;
    this.log?.warn({ path: this.cfg.path, reason }, 'card reader disconnected; reconnecting');
    this.emit('disconnected', { reason });
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.cfg.reconnectMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) void this.open();
    }, wait);
  }
}

function resolveDevice(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The simulator: cards "presented" become real EM4100 frames fed through the same parser and
 * repeat filter the serial reader uses. With reader.simulatedCards it presents them in turn
 * every simulatedIntervalMs (the demo's badge feed).
 */
export class SimulatedCardReader extends EventEmitter<CardReaderEvents> implements CardReader {
  readonly kind = 'simulator' as const;
  private readonly parser: CardParser;
  private timer: NodeJS.Timeout | undefined;
  private feedServer: Server | undefined;
  private next = 0;
  private running = false;

  constructor(private readonly cfg: ReaderConfig) {
    super();
    this.parser = makeParser(cfg, makeSink(this, new RepeatFilter(cfg.repeatWindowMs)));
  }

  get connected(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.cfg.simulatedFeed) await this.listenForFeed(this.cfg.simulatedFeed);
    this.emit('connected');
    if (this.cfg.simulatedCards.length > 0) {
      this.timer = setInterval(() => {
        const card = this.cfg.simulatedCards[this.next++ % this.cfg.simulatedCards.length]!;
        this.present(card);
      }, this.cfg.simulatedIntervalMs);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.running = false;
    const server = this.feedServer;
    this.feedServer = undefined;
    if (server) await new Promise<void>((done) => server.close(() => done()));
  }

  /** Presents a tag (up to 10 hex digits) as if held on the reader (EM4100 frame, or a hex line). */
  present(tagHex: string): void {
    if (this.cfg.protocol === 'em4100') return this.feed(em4100Frame(tagHex));
    const id = tagHex.length === 10 ? tagHex.slice(2) : tagHex; // the 32-bit id, as an EM4100 frame gives it
    this.feed(Buffer.from(`${this.cfg.lineFormat === 'hex' ? tagHex : BigInt('0x' + id).toString()}\r\n`));
  }

  private async listenForFeed(path: string): Promise<void> {
    rmSync(path, { force: true }); // a socket left by a previous run
    const server = createServer((socket) => socket.on('data', (chunk: Buffer) => this.feed(chunk)).on('error', () => {}));
    await new Promise<void>((done, fail) => server.once('error', fail).listen(path, () => done()));
    this.feedServer = server;
  }

  /** Raw bytes as a reader would send them, e.g. to show what noise does. */
  feed(bytes: Buffer): void {
    this.parser.push(bytes);
  }
}

export function createCardReader(cfg: ReaderConfig, log?: Logger): CardReader | undefined {
  if (cfg.driver === 'none') return undefined;
  if (cfg.driver === 'simulator') return new SimulatedCardReader(cfg);
  return new SerialCardReader({ ...cfg, path: cfg.path! }, log);
}
