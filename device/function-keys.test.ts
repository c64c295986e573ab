import { describe, expect, it } from 'vitest';
import { SimulatedGpio } from './hardware/index.js';
import { FunctionKeys, FunctionKeysConfig } from './function-keys.js';

describe('FunctionKeys', () => {
  it('a pressed key chooses the action of the next punch, once', () => {
    const gpio = new SimulatedGpio();
    const pressed: string[] = [];
    const keys = new FunctionKeys(gpio, FunctionKeysConfig.parse({ in: 12, out: 16 }), (a) => pressed.push(a));
    gpio.drive(16, 1);
    expect(keys.take()).toBeUndefined(); // released level: nothing
    gpio.drive(16, 0);
    expect(pressed).toEqual(['out']);
    expect(keys.peek()).toBe('out'); // looking does not use it up (a face scan that finds nobody)
    expect(keys.take()).toBe('out');
    expect(keys.take()).toBeUndefined();
    gpio.drive(12, 1);
    gpio.drive(12, 0);
    expect(keys.take()).toBe('in');
    keys.close();
  });

  it('refuses a bad pin number clearly', () => {
    expect(() => FunctionKeysConfig.parse({ in: -1 })).toThrow(/too_small|>=0|greater/i);
  });
});
