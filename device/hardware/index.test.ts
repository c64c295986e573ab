import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../common/config.js';
import { Registry } from '../../common/metrics.js';
import { HwToolConfig, createHardware, registerHardwareMetrics, SimulatedCardReader, SimulatedGpio, type CardRead, type Hardware, type HardwareConfig } from './index.js';

const here = dirname(fileURLToPath(import.meta.url));
const opened: Hardware[] = [];

function simulatorHardware(): Hardware {
  const { config, baseDir } = loadConfig(HwToolConfig, { file: join(here, 'examples', 'simulator.json'), env: {} });
  const hw = createHardware({ ...(config.hardware as HardwareConfig), inputs: { ...(config.hardware as HardwareConfig).inputs, debounceMs: 5, openGraceMs: 0 } }, { baseDir, safeStateHooks: false });
  opened.push(hw);
  return hw;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((h) => h.close()));
});

const once = <T>(emitter: { once(e: string, l: (v: T) => void): unknown }, event: string) => new Promise<T>((r) => emitter.once(event, r));

describe('the configured hardware set (example simulator config)', () => {
  it('builds every part, and a granted card flows from reader to relay to door contact', async () => {
    const hw = simulatorHardware();
    const sim = hw.gpio as SimulatedGpio;
    expect(sim).toBeInstanceOf(SimulatedGpio);
    expect(hw.wiegand).toBeDefined();
    await hw.start();
    const card = once<CardRead>(hw.reader!, 'card');
    (hw.reader as SimulatedCardReader).present('0100ABCDEF');
    expect((await card).number).toBe(String(0xabcdef));
    hw.outputs.pulseRelay(500);
    const opened = once<{ authorized: boolean }>(hw.inputs, 'door-opened');
    sim.drive(hw.config.pins.doorContact!, 1);
    expect(await opened).toEqual({ authorized: true });
    const frame = hw.camera!.latestFrame();
    expect(frame?.jpeg.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });

  it('a door opened with no grant raises door-forced-open', async () => {
    const hw = simulatorHardware();
    const forced = once<void>(hw.inputs, 'door-forced-open');
    (hw.gpio as SimulatedGpio).drive(hw.config.pins.doorContact!, 1);
    await forced;
    expect(hw.inputs.isDoorOpen).toBe(true);
  });

  it('close() leaves every output at rest and stops the camera', async () => {
    const hw = simulatorHardware();
    await hw.start();
    hw.outputs.pulseRelay(10_000);
    hw.outputs.led('red', 'blink');
    await hw.close();
    const sim = hw.gpio as SimulatedGpio;
    const { relay, redLed, greenLed, buzzer } = hw.config.pins;
    expect([relay, redLed, greenLed, buzzer].map((p) => sim.level(p!))).toEqual([0, 0, 0, 0]);
    expect(hw.camera!.stats().running).toBe(false);
  });

  it('exposes hardware health as Prometheus metrics, without card numbers', async () => {
    const hw = simulatorHardware();
    const registry = new Registry();
    registerHardwareMetrics(registry, hw);
    await hw.start();
    (hw.reader as SimulatedCardReader).present('0100ABCDEF');
    (hw.reader as SimulatedCardReader).feed(Buffer.from('\x020100ABCDEF00\x03', 'latin1'));
    const forced = once<void>(hw.inputs, 'door-forced-open');
    (hw.gpio as SimulatedGpio).drive(hw.config.pins.doorContact!, 1);
    await forced;
    const text = registry.render();
    expect(text).toMatch(/^clockface_camera_running 1$/m);
    expect(text).toMatch(/^clockface_card_reads_total 1$/m);
    expect(text).toMatch(/^clockface_card_rejects_total 1$/m);
    expect(text).toMatch(/^clockface_door_open 1$/m);
    expect(text).toMatch(/^clockface_door_alarms_total\{kind="forced-open"\} 1$/m);
    expect(text).not.toMatch(/ABCDEF|11259375/i);
  });
});
