import type { Logger } from '../../common/log.js';
import { createCamera, type Camera } from './camera/index.js';
import type { HardwareConfig } from './config.js';
import { OnoffGpioBackend } from './gpio/onoff.js';
import { SimulatedGpio } from './gpio/sim.js';
import type { GpioBackend } from './gpio/types.js';
import { Inputs } from './inputs.js';
import { Outputs } from './outputs.js';
import { createCardReader, type CardReader } from './rfid/reader.js';
import { installSafeStateHooks } from './safety.js';
import { WiegandOutput } from './wiegand/output.js';

export * from './config.js';
export { HardwareError, explainAccessError } from './errors.js';
export type { Camera, CameraStats, Frame } from './camera/index.js';
export { createCamera, MjpegSplitter } from './camera/index.js';
export type { CardReader, CardReaderEvents } from './rfid/reader.js';
export { SimulatedCardReader, SerialCardReader } from './rfid/reader.js';
export type { CardRead } from './rfid/parsers.js';
export { Outputs, type LedColor } from './outputs.js';
export { Inputs, type InputsEvents } from './inputs.js';
export type { LedPattern, BuzzerPattern, Pattern } from './patterns.js';
export { WiegandOutput } from './wiegand/output.js';
export { wiegand26, wiegand34, wiegandForCard } from './wiegand/encoder.js';
export { SimulatedGpio, pulses, readRecordFile, type EdgeRecord } from './gpio/sim.js';
export type { GpioBackend } from './gpio/types.js';
export { registerHardwareMetrics } from './metrics.js';

/** Everything the terminal service drives, built from the hardware config. */
export interface Hardware {
  readonly config: HardwareConfig;
  readonly gpio: GpioBackend;
  readonly outputs: Outputs;
  readonly inputs: Inputs;
  readonly camera: Camera | undefined;
  readonly reader: CardReader | undefined;
  readonly wiegand: WiegandOutput | undefined;
  /** Starts the camera and the card reader (outputs are live, and safe, from construction). */
  start(): Promise<void>;
  /** Drives outputs safe, stops camera and reader, releases pins. */
  close(): Promise<void>;
}

export interface CreateHardwareOptions {
  /** Folder relative paths (replay frames, record file) are resolved against. */
  baseDir?: string;
  log?: Logger;
  /** Drive outputs safe on exit/SIGTERM/SIGINT/uncaught exception (default true). */
  safeStateHooks?: boolean;
  /** Use this GPIO backend instead of the configured one (tests, the demo sharing a simulator). */
  gpio?: GpioBackend;
}

export function createGpio(config: HardwareConfig, baseDir = process.cwd()): GpioBackend {
  if (config.gpio.driver === 'onoff') return new OnoffGpioBackend(config.gpio.sysfsBase);
  const file = config.gpio.recordFile;
  return new SimulatedGpio(file === undefined ? undefined : file.startsWith('/') ? file : `${baseDir}/${file}`);
}

/**
 * Opens the configured parts. Outputs are driven to their safe state first, before the camera
 * or reader are even constructed, so a restart after a crash ends any pulse left behind.
 */
export function createHardware(config: HardwareConfig, opts: CreateHardwareOptions = {}): Hardware {
  const baseDir = opts.baseDir ?? process.cwd();
  const gpio = opts.gpio ?? createGpio(config, baseDir);
  const outputs = new Outputs(gpio, config.pins, config.relay, config.gpio, opts.log);
  const uninstall = opts.safeStateHooks === false ? () => undefined : installSafeStateHooks(outputs);
  const inputs = new Inputs(gpio, config.pins, config.inputs);
  outputs.on('relay', ({ open, pulseMs }) => {
    if (open) inputs.authorizeOpening(pulseMs ?? 0);
  });
  const { wiegandD0, wiegandD1 } = config.pins;
  const wiegand =
    config.wiegand.enabled && wiegandD0 !== undefined && wiegandD1 !== undefined ? new WiegandOutput(gpio, { d0: wiegandD0, d1: wiegandD1 }, config.wiegand) : undefined;
  const camera = createCamera(config.camera, baseDir, opts.log);
  const reader = createCardReader(config.reader, opts.log);
  let closed = false;
  return {
    config,
    gpio,
    outputs,
    inputs,
    camera,
    reader,
    wiegand,
    async start() {
      await camera?.start();
      await reader?.start();
    },
    async close() {
      if (closed) return;
      closed = true;
      outputs.close();
      inputs.close();
      wiegand?.close();
      await Promise.allSettled([camera?.stop(), reader?.stop()]);
      gpio.close();
      uninstall();
    },
  };
}

/**
 * Drives every configured output to its safe level and releases it, without starting anything
 * else: `clockface hw reset-outputs` (systemd ExecStopPost) and the start of the service.
 */
export function resetOutputs(config: HardwareConfig, opts: Pick<CreateHardwareOptions, 'baseDir' | 'gpio' | 'log'> = {}): void {
  const gpio = opts.gpio ?? createGpio(config, opts.baseDir);
  const outputs = new Outputs(gpio, config.pins, config.relay, config.gpio, opts.log);
  const { wiegandD0, wiegandD1 } = config.pins;
  const wiegand = wiegandD0 !== undefined && wiegandD1 !== undefined ? new WiegandOutput(gpio, { d0: wiegandD0, d1: wiegandD1 }, config.wiegand) : undefined;
  outputs.close();
  wiegand?.close();
  gpio.close();
}
