/** One GPIO line as the outputs, inputs and Wiegand code see it, whatever drives it. */
export type Level = 0 | 1;

export interface OutputLine {
  readonly pin: number;
  readonly name: string;
  write(level: Level): void;
  read(): Level;
  /** Releases the line; the level stays where it was (that is what the kernel does too). */
  close(): void;
}

export interface InputLine {
  readonly pin: number;
  readonly name: string;
  read(): Level;
  /** Called on every raw level change (debouncing happens above this layer). */
  watch(listener: (level: Level) => void): void;
  close(): void;
}

export interface GpioBackend {
  readonly kind: 'onoff' | 'simulator';
  /** Opens an output and drives it to `initial` at once (the safe state comes first). */
  output(pin: number, name: string, initial: Level): OutputLine;
  input(pin: number, name: string): InputLine;
  close(): void;
}
