import { afterEach, describe, expect, it } from 'vitest';
import { hardwareConfig } from './config.js';
import { SimulatedGpio } from './gpio/sim.js';
import { Inputs, type InputsEvents } from './inputs.js';

const PINS = { doorContact: 5, requestToExit: 6, tamper: 13 };
const open: Inputs[] = [];

function make(inputs: Record<string, unknown> = {}) {
  const cfg = hardwareConfig({ pins: PINS, inputs: { debounceMs: 20, heldOpenMs: 200, openGraceMs: 0, ...inputs } });
  const sim = new SimulatedGpio();
  sim.drive(6, 1); // exit button released (active low)
  const ins = new Inputs(sim, cfg.pins, cfg.inputs);
  open.push(ins);
  const events: Array<[keyof InputsEvents, unknown]> = [];
  for (const name of ['door-opened', 'door-closed', 'door-held-open', 'door-forced-open', 'request-to-exit', 'tamper'] as const) {
    ins.on(name, (...args: unknown[]) => events.push([name, args[0]]));
  }
  return { sim, ins, events };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const next = (ins: Inputs, name: keyof InputsEvents) => new Promise<void>((resolve) => ins.once(name, () => resolve()));

afterEach(() => {
  for (const i of open.splice(0)) i.close();
});

describe('door inputs', () => {
  it('debounces a bouncing contact into one opening, and a door opened without a grant is forced', async () => {
    const { sim, ins, events } = make();
    const forced = next(ins, 'door-forced-open');
    for (const level of [1, 0, 1, 0, 1] as const) sim.drive(5, level);
    await forced;
    expect(events.filter(([n]) => n === 'door-opened')).toEqual([['door-opened', { authorized: false }]]);
    expect(ins.isDoorOpen).toBe(true);
  });

  it('ignores a glitch shorter than the debounce time', async () => {
    const { sim, events } = make();
    sim.drive(5, 1);
    sim.drive(5, 0);
    await wait(80);
    expect(events).toEqual([]);
  });

  it('an authorised opening is not forced, but held open too long raises door-held-open', async () => {
    const { sim, ins, events } = make();
    ins.authorizeOpening(1000);
    const held = next(ins, 'door-held-open');
    sim.drive(5, 1);
    await held;
    expect(events.map(([n]) => n)).toEqual(['door-opened', 'door-held-open']);
    expect((events[1]![1] as { openMs: number }).openMs).toBeGreaterThanOrEqual(198);
    const closed = next(ins, 'door-closed');
    sim.drive(5, 0);
    await closed;
  });

  it('closing in time cancels door-held-open', async () => {
    const { sim, ins, events } = make();
    ins.authorizeOpening(1000);
    const opened = next(ins, 'door-opened');
    sim.drive(5, 1);
    await opened;
    const closed = next(ins, 'door-closed');
    sim.drive(5, 0);
    await closed;
    await wait(300);
    expect(events.map(([n]) => n)).toEqual(['door-opened', 'door-closed']);
  });

  it('a request-to-exit press is reported and lets the door open without an alarm', async () => {
    const { sim, ins, events } = make({ openGraceMs: 1000 });
    const rex = next(ins, 'request-to-exit');
    sim.drive(6, 0);
    await rex;
    const opened = next(ins, 'door-opened');
    sim.drive(5, 1);
    await opened;
    expect(events).toContainEqual(['door-opened', { authorized: true }]);
    expect(events.map(([n]) => n)).not.toContain('door-forced-open');
  });

  it('reports tamper when the case opens and when it closes', async () => {
    const { sim, ins, events } = make();
    const t1 = next(ins, 'tamper');
    sim.drive(13, 1);
    await t1;
    expect(ins.isTampered).toBe(true);
    const t2 = next(ins, 'tamper');
    sim.drive(13, 0);
    await t2;
    expect(events).toEqual([['tamper', { active: true }], ['tamper', { active: false }]]);
  });
});
