import { writeFileSync } from 'node:fs';

/**
 * The demo's narrator: prints a readable timeline, shows a spinner while a long step runs (on
 * a terminal; plain dots otherwise), checks each step's outcome against what was expected, and
 * ends with a summary table and a JSON summary.
 */
export interface Outcome {
  step: string;
  expected: string;
  actual: string;
  ok: boolean;
  ms: number;
}

export class Timeline {
  readonly outcomes: Outcome[] = [];
  private readonly started = Date.now();
  /** Why the script stopped outside a step (a throw between steps), if it did. */
  private failure: string | null = null;
  /**
   * @param expectedSteps how many steps a complete run has: a run that ends early (the script
   *   stopped, or a step was skipped) is not a success even if every step it ran passed.
   */
  constructor(
    private readonly expectedSteps = 1,
    private readonly out: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean } = process.stdout,
  ) {}

  note(text: string): void {
    this.out.write(`${this.clock()}   ${text}\n`);
  }

  /** Runs a step; its result (a string) is compared with what was expected. */
  async step(name: string, expected: string, fn: () => Promise<string>): Promise<boolean> {
    const t0 = Date.now();
    const stopSpinner = this.spin(name);
    let actual: string;
    try {
      actual = await fn();
    } catch (err) {
      actual = `error: ${(err as Error).message}`;
    }
    stopSpinner();
    const ok = actual === expected;
    const ms = Date.now() - t0;
    this.outcomes.push({ step: name, expected, actual, ok, ms });
    this.out.write(`${this.clock()} ${ok ? '✔' : '✘'} ${name} — ${actual}${ok ? '' : ` (expected: ${expected})`} [${fmtMs(ms)}]\n`);
    return ok;
  }

  /** The script stopped outside any step: the run has failed whatever the steps said. */
  fail(reason: string): void {
    this.failure ??= reason;
    this.note(`stopped: ${reason}`);
  }

  get allOk(): boolean {
    return this.failure === null && this.outcomes.length >= Math.max(1, this.expectedSteps) && this.outcomes.every((o) => o.ok);
  }

  summaryTable(): string {
    const w = Math.max(...this.outcomes.map((o) => o.step.length), 4);
    const rows = this.outcomes.map((o) => `${o.ok ? 'ok  ' : 'FAIL'}  ${o.step.padEnd(w)}  ${fmtMs(o.ms).padStart(7)}  ${o.actual}`);
    const passed = this.outcomes.filter((o) => o.ok).length;
    const total = Math.max(this.expectedSteps, this.outcomes.length);
    const stopped = this.failure !== null ? [`stopped after ${this.outcomes.length} of ${total} steps: ${this.failure}`] : this.outcomes.length < total ? [`only ${this.outcomes.length} of ${total} steps ran`] : [];
    return [`${'    '}  ${'step'.padEnd(w)}  ${'time'.padStart(7)}  outcome`, ...rows, '', `${passed} of ${total} expected outcomes happened.`, ...stopped].join('\n');
  }

  writeJson(path: string, extra: Record<string, unknown> = {}): void {
    writeFileSync(path, JSON.stringify({ ok: this.allOk, durationMs: Date.now() - this.started, expectedSteps: this.expectedSteps, failure: this.failure, outcomes: this.outcomes, ...extra }, null, 2));
  }

  private clock(): string {
    const s = (Date.now() - this.started) / 1000;
    return `[${s.toFixed(1).padStart(6)}s]`;
  }

  private spin(label: string): () => void {
    const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let i = 0;
    const tty = this.out.isTTY === true;
    const timer = setInterval(() => {
      if (tty) this.out.write(`\r${frames[i++ % frames.length]} ${label} …`);
      else if (i++ % 10 === 9) this.out.write('.');
    }, tty ? 100 : 1000);
    return () => {
      clearInterval(timer);
      if (tty) this.out.write('\r\x1b[K');
      else if (i >= 10) this.out.write('\n');
    };
  }
}

function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
