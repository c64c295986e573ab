import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * Preloaded into a process under test (`node --import …/clock-skew.js`): its wall clock
 * (Date.now and new Date()) runs ahead or behind by the milliseconds written in the file named
 * by CF_TEST_CLOCK_SKEW_FILE (not CLOCKFACE_…: those are config overrides), read again on every call, so a test can make the clock jump
 * while the process runs. Monotonic time (performance.now) is untouched, as on a real machine
 * whose clock is set.
 */
const file = process.env.CF_TEST_CLOCK_SKEW_FILE;
if (file) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  const skew = (): number => {
    try {
      return Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  };
  const now = () => realNow() + skew();
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(now());
      else super(...(args as [number]));
    }
    static override now(): number {
      return now();
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}

/**
 * Sets the skew a preloaded process reads (from the test's side). Written beside and renamed
 * into place: a process reading mid-write would see an empty file, i.e. no skew, and its clock
 * would jump back and forth for an instant.
 */
export function writeSkew(skewFile: string, ms: number): void {
  writeFileSync(`${skewFile}.tmp`, String(ms));
  renameSync(`${skewFile}.tmp`, skewFile);
}
