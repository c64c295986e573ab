import { afterEach, describe, expect, it } from 'vitest';
import { hardwareConfig } from './config.js';
import { pulses, SimulatedGpio } from './gpio/sim.js';
import { Outputs } from './outputs.js';

const PINS = { relay: 17, greenLed: 22, redLed: 23, buzzer: 24 };
const open: Outputs[] = [];

function make(relay: Record<string, unknown> = {}, gpio: Record<string, unknown> = {}) {
  const cfg = hardwareConfig({ pins: PINS, relay, gpio });
  const sim = new SimulatedGpio();
  const outputs = new Outputs(sim, cfg.pins, cfg.relay, cfg.gpio);
  open.push(outputs);
  return { sim, outputs };
}

/** Resolves when the relay closes again. */
const pulseEnd = (o: Outputs) => new Promise<void>((resolve) => o.on('relay', (e) => !e.open && resolve()));

/** Waits (without asserting on wall-clock time) until the record holds `n` level changes on `pin`. */
async function edges(sim: SimulatedGpio, pin: number, n: number): Promise<void> {
  const count = () => sim.records.filter((r) => r.pin === pin && r.edge).length;
  const deadline = Date.now() + 10_000;
  while (count() < n) {
    if (Date.now() > deadline) throw new Error(`only ${count()} edges on pin ${pin}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 200)); // and nothing more follows
}

afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

describe('outputs on the GPIO simulator', () => {
  it('drives every output to its rest level when opened', () => {
    const { sim } = make({ activeLow: true }, { ledsActiveLow: true });
    expect(sim.records.map((r) => [r.name, r.level])).toEqual([
      ['relay', 1],
      ['green-led', 1],
      ['red-led', 1],
      ['buzzer', 0],
    ]);
  });

  it('pulses the relay for the asked length, measured on the recorded edges', async () => {
    const { sim, outputs } = make();
    const done = pulseEnd(outputs);
    expect(outputs.pulseRelay(300)).toBe(300);
    expect(sim.level(17)).toBe(1);
    await done;
    const p = pulses(sim.records, 17, 1);
    expect(p).toHaveLength(1);
    expect(p[0]!.ms).toBeGreaterThanOrEqual(298); // Node timers may fire up to ~1 ms early
    expect(p[0]!.ms).toBeLessThan(300 + 1000); // generous: timer lateness on a loaded machine
    expect(sim.level(17)).toBe(0);
  });

  it('a default grant holds the relay for relay.pulseMs (3 s) ± tolerance, read from the record', async () => {
    const { sim, outputs } = make();
    const done = pulseEnd(outputs);
    expect(outputs.pulseRelay()).toBe(3000);
    await done;
    const [pulse, ...more] = pulses(sim.records, 17, 1);
    expect(more).toEqual([]);
    expect(pulse!.ms).toBeGreaterThanOrEqual(2998);
    expect(pulse!.ms).toBeLessThan(3000 + 1000);
  });

  it('extends a pulse asked for during a pulse, and cuts pulses to maxPulseMs', async () => {
    const { sim, outputs } = make({ maxPulseMs: 200 });
    const done = pulseEnd(outputs);
    outputs.pulseRelay(100);
    expect(outputs.pulseRelay(5000)).toBe(200);
    await done;
    const p = pulses(sim.records, 17, 1);
    expect(p).toHaveLength(1);
    expect(p[0]!.ms).toBeGreaterThanOrEqual(198);
    expect(() => outputs.pulseRelay(0)).toThrow(/positive/);
  });

  it('handles polarity and fail-safe mode: a maglock rests energised and releases for the pulse', async () => {
    const { sim, outputs } = make({ mode: 'fail-safe', activeLow: true });
    // fail-safe rest = energised; activeLow: energised = pin low.
    expect(sim.level(17)).toBe(0);
    const done = pulseEnd(outputs);
    outputs.pulseRelay(100);
    expect(sim.level(17)).toBe(1);
    await done;
    expect(sim.level(17)).toBe(0);
    expect(pulses(sim.records, 17, 1)).toHaveLength(1);
  });

  it('blinks the green LED twice (counted from the record)', async () => {
    const { sim, outputs } = make();
    outputs.led('green', 'blink-twice');
    await edges(sim, 22, 1 + 4); // the initial write, then on/off twice
    const blinks = pulses(sim.records, 22, 1);
    expect(blinks).toHaveLength(2);
    for (const b of blinks) expect(b.ms).toBeGreaterThanOrEqual(148);
    expect(blinks[1]!.start - blinks[0]!.end).toBeGreaterThanOrEqual(148);
    expect(sim.level(22)).toBe(0);
  });

  it('plays buzzer patterns: denied is three beeps; a new pattern replaces the old', async () => {
    const { sim, outputs } = make();
    outputs.buzz('denied');
    await edges(sim, 24, 1 + 6);
    expect(pulses(sim.records, 24, 1).map((b) => b.ms >= 98)).toEqual([true, true, true]);
    outputs.buzz('error');
    outputs.buzz('granted');
    await edges(sim, 24, 1 + 6 + 4);
    const beeps = pulses(sim.records, 24, 1);
    expect(beeps).toHaveLength(5); // error cut short by granted, then granted
    expect(beeps[4]!.ms).toBeGreaterThanOrEqual(148);
    expect(sim.level(24)).toBe(0);
  });

  it('safe() ends a pulse and a continuous blink at once', () => {
    const { sim, outputs } = make();
    outputs.pulseRelay(10_000);
    outputs.led('red', 'blink');
    outputs.led('green', 'on');
    outputs.safe();
    expect([sim.level(17), sim.level(22), sim.level(23), sim.level(24)]).toEqual([0, 0, 0, 0]);
    expect(outputs.relayOpen).toBe(false);
  });
});
