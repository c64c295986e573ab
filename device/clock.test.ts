import { describe, expect, it } from 'vitest';
import { ClockWatch } from './clock.js';

describe('ClockWatch', () => {
  it('reports unsynced dates, steps of the wall clock, and otherwise synced', () => {
    let wall = Date.UTC(1970, 0, 2);
    let mono = 1000;
    const clock = new ClockWatch(() => wall, () => mono);
    expect(clock.state()).toBe('unsynced');
    wall = Date.UTC(2026, 10, 23); // NTP arrives: a step
    expect(clock.state()).toBe('stepped');
    wall += 5000;
    mono += 5000;
    expect(clock.state()).toBe('synced');
  });
});
