import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../common/config.js';
import { HardwareConfig, HwToolConfig, hardwareConfig } from './config.js';
import { explainAccessError } from './errors.js';

describe('hardware config', () => {
  it('fills every default, so an empty section is a valid simulator-only terminal', () => {
    const cfg = hardwareConfig({});
    expect(cfg.gpio.driver).toBe('simulator');
    expect(cfg.camera.driver).toBe('none');
    expect(cfg.relay).toMatchObject({ pulseMs: 3000, mode: 'fail-secure', activeLow: false });
    expect(cfg.reader.repeatWindowMs).toBe(1500);
  });

  it('rejects a pin used twice, a serial reader without a path, and Wiegand without pins', () => {
    expect(() => hardwareConfig({ pins: { relay: 17, greenLed: 17 } })).toThrow(/two parts share one GPIO pin/);
    expect(() => hardwareConfig({ reader: { driver: 'serial' } })).toThrow(/reader.path is required/);
    expect(() => hardwareConfig({ wiegand: { enabled: true } })).toThrow(/wiegandD0/);
    expect(() => hardwareConfig({ relay: { pulseMs: 'long' } })).toThrow();
    expect(() => hardwareConfig({ pins: { relay: -1 } })).toThrow();
  });

  it('loads through common/config with an error naming the key and the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cf-hw-cfg-'));
    try {
      const file = join(dir, 'device.json');
      writeFileSync(file, JSON.stringify({ hardware: { pins: { relay: 17 }, relay: { mode: 'sometimes' } }, mqtt: { url: 'x' } }));
      expect(() => loadConfig(HwToolConfig, { file })).toThrow(ConfigError);
      expect(() => loadConfig(HwToolConfig, { file })).toThrow(/hardware\.relay\.mode.*device\.json/s);
      writeFileSync(file, JSON.stringify({ hardware: { pins: { relay: 17 } }, mqtt: { url: 'x' } }));
      const { config } = loadConfig(HwToolConfig, { file, env: { CLOCKFACE_HARDWARE__RELAY__PULSE_MS: '5000' } });
      expect((config.hardware as HardwareConfig).relay.pulseMs).toBe(5000);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('device access errors', () => {
  it('names the group to join when permission is denied', () => {
    const e = explainAccessError('reader', '/dev/ttyUSB0', Object.assign(new Error('Error: Permission denied, cannot open /dev/ttyUSB0'), {}));
    expect(e.code).toBe('EACCES');
    expect(e.message).toBe('reader: permission denied on /dev/ttyUSB0');
    expect(e.fix).toMatch(/usermod -aG dialout/);
    expect(explainAccessError('gpio', '/sys/class/gpio/gpio17', Object.assign(new Error('x'), { code: 'EACCES' })).fix).toMatch(/group gpio/);
    expect(explainAccessError('camera', '/dev/video0', Object.assign(new Error('x'), { code: 'EPERM' })).fix).toMatch(/group video/);
  });

  it('says a missing device is missing, and a busy one is busy', () => {
    expect(explainAccessError('reader', '/dev/ttyS9', new Error('No such file or directory, cannot open /dev/ttyS9')).message).toMatch(/does not exist/);
    expect(explainAccessError('reader', '/dev/ttyS0', Object.assign(new Error('busy'), { code: 'EBUSY' })).fix).toMatch(/fuser/);
  });
});
