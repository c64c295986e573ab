import { describe, expect, it } from 'vitest';
import { WiegandConfig } from '../config.js';
import { SimulatedGpio, type EdgeRecord } from '../gpio/sim.js';
import { OnoffGpioBackend } from '../gpio/onoff.js';
import { HardwareError } from '../errors.js';
import { bitsToString, wiegand26 } from './encoder.js';
import { WiegandOutput } from './output.js';

/** What a panel does: a low pulse on D0 is a 0, on D1 a 1. Returns the bits and pulse widths. */
function decode(records: EdgeRecord[]): { bits: string; widthsUs: number[]; periodsUs: number[] } {
  let bits = '';
  const widthsUs: number[] = [];
  const starts: number[] = [];
  const fell = new Map<number, number>();
  for (const r of records) {
    if (!r.edge) continue;
    if (r.level === 0) {
      fell.set(r.pin, r.t);
      starts.push(r.t);
      bits += r.name === 'wiegand-d1' ? '1' : '0';
    } else if (fell.has(r.pin)) {
      widthsUs.push((r.t - fell.get(r.pin)!) * 1000);
      fell.delete(r.pin);
    }
  }
  return { bits, widthsUs, periodsUs: starts.slice(1).map((s, i) => (s - starts[i]!) * 1000) };
}

describe('Wiegand output on the GPIO simulator', () => {
  it('sends a 26-bit frame bit for bit with the configured pulse timing', () => {
    const sim = new SimulatedGpio();
    const cfg = WiegandConfig.parse({ enabled: true, format: 26, facilityCode: 18, pulseUs: 100, intervalUs: 1000 });
    const out = new WiegandOutput(sim, { d0: 20, d1: 21 }, cfg);
    const sent = out.sendCard(12345);
    expect(bitsToString(sent)).toBe(bitsToString(wiegand26(18, 12345)));
    const { bits, widthsUs, periodsUs } = decode(sim.records);
    expect(bits).toBe('0' + '00010010' + '0011000000111001' + '1');
    expect(widthsUs).toHaveLength(26);
    for (const w of widthsUs) expect(w).toBeGreaterThanOrEqual(100);
    // Bits are at least 1 ms apart: the next bit waits for 1 ms after the previous line went
    // low, so a busy machine can stretch a gap but never shrink one.
    for (const p of periodsUs) expect(p).toBeGreaterThanOrEqual(999); // (float rounding of epoch ms)
    expect([sim.level(20), sim.level(21)]).toEqual([1, 1]); // both lines idle high afterwards
  });

  it('keeps the frame gap between two grants in a row, so the panel sees two frames', async () => {
    const sim = new SimulatedGpio();
    const out = new WiegandOutput(sim, { d0: 20, d1: 21 }, WiegandConfig.parse({ enabled: true, format: 26, facilityCode: 1, intervalUs: 200, frameGapMs: 40 }));
    out.sendCard(1);
    out.sendCard(2);
    await out.drained();
    const lows = sim.records.filter((r) => r.edge && r.level === 0);
    expect(lows).toHaveLength(52);
    // The second frame starts only after the gap: a panel's 20-25 ms end-of-frame timeout has run.
    expect(lows[26]!.t - lows[25]!.t).toBeGreaterThanOrEqual(40);
    expect(decode(sim.records.filter((r) => r.t < lows[26]!.t)).bits).toBe(bitsToString(wiegand26(1, 1)));
    expect(decode(sim.records.filter((r) => r.t >= lows[26]!.t)).bits).toBe(bitsToString(wiegand26(1, 2)));
    out.close();
  });

  it('sends 34-bit frames', () => {
    const sim = new SimulatedGpio();
    const out = new WiegandOutput(sim, { d0: 20, d1: 21 }, WiegandConfig.parse({ enabled: true, format: 34, intervalUs: 200 }));
    out.sendCard(0x12345678);
    expect(decode(sim.records).bits).toBe('1' + '00010010001101000101011001111000' + '1');
  });
});

describe('onoff GPIO driver', () => {
  it('on a machine without sysfs GPIO, fails with the part, the path and the fix', () => {
    // This machine has no /sys/class/gpio (a Pi has): opening a pin must fail clearly, not crash.
    let err: unknown;
    try {
      new OnoffGpioBackend().output(17, 'relay', 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HardwareError);
    const e = err as HardwareError;
    expect(e.part).toBe('gpio');
    expect(e.message).toMatch(/gpio/);
    expect(e.fix.length).toBeGreaterThan(10);
  });
});
