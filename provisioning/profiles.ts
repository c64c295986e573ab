import { HardwareConfig } from '../protocol/hardware-config.js';
import { ProvisionError } from './output.js';

/**
 * Named hardware profiles: the pin map and reader/camera settings a terminal build uses, so
 * facilities staff pick a name instead of typing pin numbers. Each profile is checked
 * against the terminal's own hardware schema (protocol/hardware-config.ts), so a profile that
 * the terminal would refuse can never reach a bundle. Pins are BCM GPIO numbers; the
 * facilities guide (docs/facilities-guide.md) has the same table with header pin positions.
 */
const STANDARD_PINS = { relay: 17, greenLed: 22, redLed: 23, buzzer: 24, doorContact: 5, requestToExit: 6, tamper: 13 };

const RAW_PROFILES = {
  /** No hardware: simulated GPIO and reader, no camera. For demos, CI and bench setups. */
  simulator: {
    camera: { driver: 'none' },
    reader: { driver: 'simulator' },
    gpio: { driver: 'simulator' },
    pins: { ...STANDARD_PINS, wiegandD0: 20, wiegandD1: 21 },
    relay: { pulseMs: 3000, mode: 'fail-secure' },
  },
  /**
   * Raspberry Pi 4/5 with the Camera Module 3 on CSI, an RDM6300 125 kHz reader on the UART
   * (/dev/serial0) and an opto-isolated relay board (active low) driving a fail-secure strike.
   * Kernels from 6.6 (current Raspberry Pi OS bookworm) number header GPIOs from 512.
   */
  'pi-standard': {
    camera: { driver: 'rpicam', width: 1280, height: 720, fps: 30 },
    reader: { driver: 'serial', path: '/dev/serial0', baudRate: 9600, protocol: 'em4100' },
    gpio: { driver: 'onoff', sysfsBase: 512 },
    pins: STANDARD_PINS,
    relay: { pulseMs: 3000, maxPulseMs: 15000, activeLow: true, mode: 'fail-secure' },
    inputs: { debounceMs: 30, doorOpenLevel: 1, rexActiveLevel: 0, tamperActiveLevel: 1, heldOpenMs: 30000 },
  },
  /** As pi-standard, but a maglock (fail-safe: released without power) instead of a strike. */
  'pi-maglock': {
    camera: { driver: 'rpicam', width: 1280, height: 720, fps: 30 },
    reader: { driver: 'serial', path: '/dev/serial0', baudRate: 9600, protocol: 'em4100' },
    gpio: { driver: 'onoff', sysfsBase: 512 },
    pins: STANDARD_PINS,
    relay: { pulseMs: 5000, maxPulseMs: 15000, activeLow: true, mode: 'fail-safe' },
  },
  /** USB webcam (V4L2) and a USB keyboard-less serial reader printing one decimal number per line. */
  'pi-usb': {
    camera: { driver: 'v4l2', device: '/dev/video0', width: 640, height: 480, fps: 15 },
    reader: { driver: 'serial', path: '/dev/ttyUSB0', baudRate: 9600, protocol: 'line', lineFormat: 'decimal' },
    gpio: { driver: 'onoff', sysfsBase: 512 },
    pins: STANDARD_PINS,
    relay: { pulseMs: 3000, activeLow: true, mode: 'fail-secure' },
  },
  /** Terminal that hands card numbers to an existing access panel over Wiegand 26 instead of driving a door. */
  'pi-wiegand': {
    camera: { driver: 'rpicam', width: 1280, height: 720, fps: 30 },
    reader: { driver: 'serial', path: '/dev/serial0', baudRate: 9600, protocol: 'em4100' },
    gpio: { driver: 'onoff', sysfsBase: 512 },
    pins: { greenLed: 22, redLed: 23, buzzer: 24, tamper: 13, wiegandD0: 20, wiegandD1: 21 },
    wiegand: { enabled: true, format: 26 },
  },
} as const;

export type ProfileName = keyof typeof RAW_PROFILES;
export const PROFILE_NAMES = Object.keys(RAW_PROFILES) as ProfileName[];

/** The profile as written into a device config: the terminal's schema applied, defaults filled in. */
export function hardwareProfile(name: string): HardwareConfig {
  if (!Object.hasOwn(RAW_PROFILES, name)) {
    throw new ProvisionError(`unknown hardware profile ${JSON.stringify(name)} (known: ${PROFILE_NAMES.join(', ')})`);
  }
  const result = HardwareConfig.safeParse(RAW_PROFILES[name as ProfileName]);
  if (!result.success) {
    throw new ProvisionError(`hardware profile ${name} is invalid: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return result.data;
}
