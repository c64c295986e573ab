import { afterEach, describe, expect, it } from 'vitest';
import { hardwareConfig } from './hardware/config.js';
import { Outputs, SimulatedGpio, type EdgeRecord } from './hardware/index.js';
import { BUZZER_PATTERNS, LED_PATTERNS } from './hardware/patterns.js';
import { Indicators } from './indicators.js';

/*
 * Every indicator state on the GPIO simulator, read back from the recorded edges: which LED
 * lit, how many times, for how long (lower bounds only, from the record), and the buzzer.
 */
const GREEN = 22;
const RED = 23;
const BUZZER = 24;
/** Timers fire to the millisecond, not better: a step shown whole measures within this of its length (one cut short by the next state would be far shorter). */
const SLACK_MS = 10;
const open: Array<{ outputs: Outputs; indicators: Indicators }> = [];

function make() {
  const cfg = hardwareConfig({ pins: { greenLed: GREEN, redLed: RED, buzzer: BUZZER } });
  const sim = new SimulatedGpio();
  const outputs = new Outputs(sim, cfg.pins, cfg.relay, cfg.gpio);
  const indicators = new Indicators(outputs);
  open.push({ outputs, indicators });
  return { sim, indicators };
}

afterEach(() => {
  for (const { indicators, outputs } of open.splice(0)) {
    indicators.close();
    outputs.close();
  }
});

/** On-periods per pin since record index `from`; `end` NaN while still on. */
function lit(records: readonly EdgeRecord[], pin: number, from: number): Array<{ ms: number; end: number }> {
  const out: Array<{ ms: number; end: number }> = [];
  let start: number | undefined;
  for (const r of records.slice(from)) {
    if (r.pin !== pin || !r.edge) continue;
    if (r.level === 1) start = r.t;
    else if (start !== undefined) {
      out.push({ ms: r.t - start, end: r.t });
      start = undefined;
    }
  }
  if (start !== undefined) out.push({ ms: NaN, end: NaN });
  return out;
}

const edgeCount = (sim: SimulatedGpio, pin: number, from: number) => sim.records.slice(from).filter((r) => r.pin === pin && r.edge).length;

/** Waits until `pin` has made `n` level changes since `from` (no clock assertions). */
async function edges(sim: SimulatedGpio, pin: number, n: number, from: number): Promise<void> {
  for (let i = 0; i < 1000 && edgeCount(sim, pin, from) < n; i++) await new Promise((r) => setTimeout(r, 10));
  if (edgeCount(sim, pin, from) < n) throw new Error(`only ${edgeCount(sim, pin, from)} of ${n} edges on pin ${pin}`);
}

/** A one-shot pattern's on-periods, from patterns.ts (not copied numbers). */
const onSteps = (steps: readonly number[]) => steps.filter((_, i) => i % 2 === 0);

describe('LEDs and buzzer per terminal state', () => {
  it('starts offline (slow red blink), goes dark once the link is up, blinks again when it drops while idle', async () => {
    const { sim, indicators } = make();
    const start = sim.records.length - 1; // the constructor's first write is part of the pattern
    await edges(sim, RED, 5, 0);
    const blinks = lit(sim.records, RED, 0).filter((p) => !Number.isNaN(p.ms));
    expect(blinks.length).toBeGreaterThanOrEqual(2);
    for (const b of blinks) expect(b.ms).toBeGreaterThanOrEqual(LED_PATTERNS.blink.steps[0] - SLACK_MS);
    expect(edgeCount(sim, GREEN, start)).toBe(0);
    expect(indicators.idleState()).toBe('offline');

    indicators.link(true);
    const up = sim.records.length;
    expect(sim.level(RED)).toBe(0);
    await new Promise((r) => setTimeout(r, LED_PATTERNS.blink.steps[0] * 2 + 100)); // a blink would have come by now
    expect(edgeCount(sim, RED, up)).toBe(0);
    expect(edgeCount(sim, GREEN, up)).toBe(0);

    indicators.link(false);
    const down = sim.records.length;
    await edges(sim, RED, 3, down);
    expect(lit(sim.records, RED, down)[0]!.ms).toBeGreaterThanOrEqual(LED_PATTERNS.blink.steps[0] - SLACK_MS);
  });

  it('capturing and deciding: green steady on, without a flicker between the two', () => {
    const { sim, indicators } = make();
    indicators.link(true);
    const mark = sim.records.length;
    indicators.screen('capturing', { silent: false });
    indicators.screen('deciding', { silent: false });
    expect(sim.level(GREEN)).toBe(1);
    expect(edgeCount(sim, GREEN, mark)).toBe(1);
    expect(edgeCount(sim, RED, mark)).toBe(0);
    indicators.screen('idle', { silent: false }); // nobody there after all
    expect(sim.level(GREEN)).toBe(0);
  });

  it('the PIN prompt blinks green slowly until the answer', async () => {
    const { sim, indicators } = make();
    indicators.link(true);
    const mark = sim.records.length;
    indicators.screen('enter-pin', { silent: false });
    await edges(sim, GREEN, 4, mark);
    expect(lit(sim.records, GREEN, mark).filter((p) => !Number.isNaN(p.ms)).length).toBeGreaterThanOrEqual(2);
    expect(edgeCount(sim, RED, mark)).toBe(0);
    expect(edgeCount(sim, BUZZER, mark)).toBe(0);
  });

  it('granted: two short green blinks and one short beep, shown whole although idle follows at once', async () => {
    const { sim, indicators } = make();
    indicators.link(true);
    const mark = sim.records.length;
    indicators.screen('granted', { silent: false });
    indicators.screen('idle', { silent: false });
    await edges(sim, GREEN, 4, mark);
    await edges(sim, BUZZER, 2, mark);
    const green = lit(sim.records, GREEN, mark);
    expect(green).toHaveLength(2);
    for (const [i, on] of onSteps(LED_PATTERNS['blink-twice'].steps).entries()) expect(green[i]!.ms).toBeGreaterThanOrEqual(on - SLACK_MS);
    expect(lit(sim.records, BUZZER, mark).map((p) => p.ms)[0]).toBeGreaterThanOrEqual(BUZZER_PATTERNS.granted.steps[0] - SLACK_MS);
    expect(edgeCount(sim, RED, mark)).toBe(0);
  });

  it('denied: red on for a second and five short beeps (three tones); then back to the offline blink if the link is down', async () => {
    const { sim, indicators } = make();
    const mark = sim.records.length;
    indicators.screen('denied', { silent: false });
    indicators.screen('idle', { silent: false });
    await edges(sim, BUZZER, 6, mark);
    await edges(sim, RED, 4, mark); // the flash (on, off), then the offline blink starts again
    const red = lit(sim.records, RED, mark);
    expect(red[0]!.ms).toBeGreaterThanOrEqual(LED_PATTERNS.flash.steps[0] - SLACK_MS); // not cut short by idle
    expect(lit(sim.records, BUZZER, mark)).toHaveLength(onSteps(BUZZER_PATTERNS.denied.steps).length);
    expect(edgeCount(sim, GREEN, mark)).toBe(0);
  });

  it('flagged: the green grant blinks with a red flash for the review, and the grant beep', async () => {
    const { sim, indicators } = make();
    indicators.link(true);
    const mark = sim.records.length;
    indicators.screen('flagged', { silent: false });
    await edges(sim, GREEN, 4, mark);
    await edges(sim, RED, 2, mark);
    await edges(sim, BUZZER, 2, mark);
    expect(lit(sim.records, GREEN, mark)).toHaveLength(2);
    expect(lit(sim.records, RED, mark)[0]!.ms).toBeGreaterThanOrEqual(LED_PATTERNS.flash.steps[0] - SLACK_MS);
    expect(lit(sim.records, BUZZER, mark)).toHaveLength(1);
  });

  it('debounced and done: a one-second green flash without sound, two green blinks with the grant beep', async () => {
    const { sim, indicators } = make();
    indicators.link(true);
    let mark = sim.records.length;
    indicators.screen('debounced', { silent: false });
    await edges(sim, GREEN, 2, mark);
    expect(lit(sim.records, GREEN, mark)[0]!.ms).toBeGreaterThanOrEqual(LED_PATTERNS.flash.steps[0] - SLACK_MS);
    expect(edgeCount(sim, BUZZER, mark)).toBe(0);
    mark = sim.records.length;
    indicators.screen('done', { silent: false });
    await edges(sim, GREEN, 4, mark);
    await edges(sim, BUZZER, 2, mark);
    expect(lit(sim.records, GREEN, mark)).toHaveLength(2);
  });

  it('a face-path fault: two red blinks and the long error beep; silent when no one is waiting', async () => {
    const { sim, indicators } = make();
    indicators.link(true);
    let mark = sim.records.length;
    indicators.screen('fault', { silent: false });
    await edges(sim, RED, 4, mark);
    await edges(sim, BUZZER, 2, mark);
    expect(lit(sim.records, BUZZER, mark)[0]!.ms).toBeGreaterThanOrEqual(BUZZER_PATTERNS.error.steps[0] - SLACK_MS);
    expect(edgeCount(sim, GREEN, mark)).toBe(0);
    mark = sim.records.length;
    indicators.screen('fault', { silent: true });
    await edges(sim, RED, 4, mark);
    expect(edgeCount(sim, BUZZER, mark)).toBe(0);
  });

  it('a failed camera or reader: red steady while idle, the error beep once, cleared when it works again', async () => {
    const { sim, indicators } = make();
    indicators.link(true);
    const mark = sim.records.length;
    indicators.part('reader', true);
    indicators.part('reader', true); // the same failure again: no second beep
    expect(sim.level(RED)).toBe(1);
    await edges(sim, BUZZER, 2, mark);
    expect(lit(sim.records, BUZZER, mark)).toHaveLength(1);
    // A decision during the fault shows as usual; idle goes back to the steady red without a beep.
    indicators.screen('granted', { silent: false });
    indicators.screen('idle', { silent: false });
    await edges(sim, GREEN, 4, mark);
    await edges(sim, BUZZER, 4, mark);
    for (let i = 0; i < 300 && sim.level(RED) !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sim.level(RED)).toBe(1);
    expect(lit(sim.records, BUZZER, mark)).toHaveLength(2); // error, granted: nothing at the return to idle
    indicators.part('reader', false);
    expect(sim.level(RED)).toBe(0);
    expect(indicators.idleState()).toBe('idle');
  });

  it('a trigger not taken: a red flash and the refusal beep over the PIN prompt, whose green blink goes on; the red comes back as it was', async () => {
    const { sim, indicators } = make();
    indicators.part('camera', true); // red steady: the flash must hand it back
    const mark = sim.records.length;
    indicators.screen('enter-pin', { silent: false });
    indicators.ignored('queue-full');
    await edges(sim, BUZZER, 2 * onSteps(BUZZER_PATTERNS.denied.steps).length, mark);
    await edges(sim, RED, 3, mark); // the prompt puts the part-fault red out, then the flash: on, off
    for (let i = 0; i < 300 && sim.level(RED) !== 0; i++) await new Promise((r) => setTimeout(r, 10));
    await edges(sim, GREEN, 6, mark); // the PIN prompt's blink went on under it
    indicators.screen('idle', { silent: false });
    for (let i = 0; i < 300 && sim.level(RED) !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sim.level(RED)).toBe(1); // the part fault shows again
  });

  it('debounced and reader repeats have no separate sign (their screen state, or the presentation already shown)', () => {
    const { sim, indicators } = make();
    indicators.link(true);
    const mark = sim.records.length;
    indicators.ignored('debounced');
    indicators.ignored('reader-repeat');
    expect(sim.records.slice(mark).filter((r) => r.edge)).toEqual([]);
  });
});
