import { EventEmitter } from 'node:events';
import type { InputsConfig, PinMap } from './config.js';
import type { GpioBackend, InputLine, Level } from './gpio/types.js';

export interface InputsEvents {
  'door-opened': [{ authorized: boolean }];
  'door-closed': [];
  /** The door opened after a grant (or exit) and has stayed open longer than inputs.heldOpenMs. */
  'door-held-open': [{ openMs: number }];
  /** The door opened while nobody was granted entry and no exit was requested. */
  'door-forced-open': [];
  'request-to-exit': [];
  /** active: the case is open (or the switch wiring is cut). */
  tamper: [{ active: boolean }];
}

/**
 * Door contact, request-to-exit button and tamper switch, debounced. Whether an opening is
 * authorised is known from authorizeOpening(), which the hardware set calls whenever the door
 * relay opens (and on a request-to-exit press).
 */
export class Inputs extends EventEmitter<InputsEvents> {
  private readonly lines: InputLine[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private authorizedUntil = 0;
  private heldTimer: NodeJS.Timeout | undefined;
  private openedAt = 0;
  private doorOpen = false;
  private tamperActive = false;

  constructor(
    backend: GpioBackend,
    pins: PinMap,
    private readonly cfg: InputsConfig,
  ) {
    super();
    if (pins.doorContact !== undefined) {
      const line = this.watch(backend.input(pins.doorContact, 'door-contact'), (lvl) => this.onDoor(lvl === cfg.doorOpenLevel));
      this.doorOpen = line.read() === cfg.doorOpenLevel;
    }
    if (pins.requestToExit !== undefined) {
      this.watch(backend.input(pins.requestToExit, 'request-to-exit'), (lvl) => {
        if (lvl !== cfg.rexActiveLevel) return;
        this.authorizeOpening(cfg.openGraceMs);
        this.emit('request-to-exit');
      });
    }
    if (pins.tamper !== undefined) {
      const line = this.watch(backend.input(pins.tamper, 'tamper'), (lvl) => {
        this.tamperActive = lvl === cfg.tamperActiveLevel;
        this.emit('tamper', { active: this.tamperActive });
      });
      this.tamperActive = line.read() === cfg.tamperActiveLevel;
    }
  }

  get isDoorOpen(): boolean {
    return this.doorOpen;
  }

  get isTampered(): boolean {
    return this.tamperActive;
  }

  /** The door may open within the next `ms` (plus inputs.openGraceMs) without counting as forced. */
  authorizeOpening(ms: number): void {
    this.authorizedUntil = Math.max(this.authorizedUntil, performance.now() + ms + this.cfg.openGraceMs);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.heldTimer) clearTimeout(this.heldTimer);
    for (const line of this.lines) line.close();
  }

  private onDoor(open: boolean): void {
    if (open === this.doorOpen) return;
    this.doorOpen = open;
    if (open) {
      const authorized = performance.now() <= this.authorizedUntil;
      this.openedAt = performance.now();
      this.emit('door-opened', { authorized });
      if (!authorized) this.emit('door-forced-open');
      this.heldTimer = setTimeout(() => {
        this.heldTimer = undefined;
        this.emit('door-held-open', { openMs: Math.round(performance.now() - this.openedAt) });
      }, this.cfg.heldOpenMs);
    } else {
      if (this.heldTimer) clearTimeout(this.heldTimer);
      this.heldTimer = undefined;
      this.emit('door-closed');
    }
  }

  /** Debounce: act on a level only once it has stayed put for inputs.debounceMs. */
  private watch(line: InputLine, onStable: (level: Level) => void): InputLine {
    this.lines.push(line);
    let stable = line.read();
    let timer: NodeJS.Timeout | undefined;
    line.watch(() => {
      if (timer) {
        clearTimeout(timer);
        this.timers.delete(timer);
      }
      timer = setTimeout(() => {
        this.timers.delete(timer!);
        timer = undefined;
        const now = line.read();
        if (now === stable) return; // bounced back: nothing happened
        stable = now;
        onStable(now);
      }, this.cfg.debounceMs);
      this.timers.add(timer);
    });
    return line;
  }
}
