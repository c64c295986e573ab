import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { GpioBackend, InputLine, Level, OutputLine } from './types.js';

/**
 * GPIO simulator: lines live in memory, and every write is recorded with a timestamp so tests
 * can check pulse lengths and blink counts from the record rather than from wall-clock sleeps.
 * With a record file, each write is appended synchronously as a JSON line, so a process killed
 * mid-pulse leaves the truth behind, and the next process starts from the levels it left.
 */
export interface EdgeRecord {
  pin: number;
  name: string;
  level: Level;
  /** Milliseconds since the Unix epoch, sub-millisecond precision. */
  t: number;
  pid: number;
  /** False when the write left the level unchanged (still recorded: "drive safe" must be visible). */
  edge: boolean;
}

const clockOrigin = Date.now() - performance.now();
const now = (): number => clockOrigin + performance.now();

export class SimulatedGpio implements GpioBackend {
  readonly kind = 'simulator' as const;
  readonly records: EdgeRecord[] = [];
  private readonly levels = new Map<number, Level>();
  private readonly watchers = new Map<number, Set<(level: Level) => void>>();

  constructor(private readonly recordFile?: string) {
    if (recordFile && existsSync(recordFile)) {
      for (const r of readRecordFile(recordFile)) this.levels.set(r.pin, r.level);
    }
  }

  output(pin: number, name: string, initial: Level): OutputLine {
    this.set(pin, name, initial);
    return {
      pin,
      name,
      write: (level) => this.set(pin, name, level),
      read: () => this.levels.get(pin) ?? 0,
      close: () => undefined,
    };
  }

  input(pin: number, name: string): InputLine {
    if (!this.levels.has(pin)) this.levels.set(pin, 0);
    let mine: ((level: Level) => void) | undefined;
    return {
      pin,
      name,
      read: () => this.levels.get(pin) ?? 0,
      watch: (listener) => {
        mine = listener;
        this.watcherSet(pin).add(listener);
      },
      close: () => {
        if (mine) this.watcherSet(pin).delete(mine);
      },
    };
  }

  /** Test and demo hook: what the outside world does to an input pin (a door opening, a button). */
  drive(pin: number, level: Level): void {
    if (this.levels.get(pin) === level) return;
    this.levels.set(pin, level);
    for (const w of this.watcherSet(pin)) w(level);
  }

  level(pin: number): Level | undefined {
    return this.levels.get(pin);
  }

  close(): void {
    this.watchers.clear();
  }

  private set(pin: number, name: string, level: Level): void {
    const edge = this.levels.get(pin) !== level;
    this.levels.set(pin, level);
    const record: EdgeRecord = { pin, name, level, t: now(), pid: process.pid, edge };
    this.records.push(record);
    if (this.recordFile) appendFileSync(this.recordFile, JSON.stringify(record) + '\n');
  }

  private watcherSet(pin: number): Set<(level: Level) => void> {
    let set = this.watchers.get(pin);
    if (!set) this.watchers.set(pin, (set = new Set()));
    return set;
  }
}

export function readRecordFile(file: string): EdgeRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as EdgeRecord);
}

/** Periods a line spent at `level`: [start, end] times taken from the record (end NaN if still there). */
export function pulses(records: readonly EdgeRecord[], pin: number, level: Level = 1): Array<{ start: number; end: number; ms: number }> {
  const out: Array<{ start: number; end: number; ms: number }> = [];
  let start: number | undefined;
  let current: Level | undefined;
  for (const r of records) {
    if (r.pin !== pin) continue;
    if (r.level === current) continue;
    if (r.level === level) start = r.t;
    else if (start !== undefined) {
      out.push({ start, end: r.t, ms: r.t - start });
      start = undefined;
    }
    current = r.level;
  }
  if (start !== undefined) out.push({ start, end: NaN, ms: NaN });
  return out;
}
