import { createRequire } from 'node:module';
import { explainAccessError, HardwareError } from '../errors.js';
import type { GpioBackend, InputLine, Level, OutputLine } from './types.js';

/**
 * Real GPIO through onoff (Linux sysfs GPIO). onoff is an optional dependency: it builds only
 * on Linux, and the kernel must offer /sys/class/gpio. The kernel keeps an output's value after
 * the process ends, so safety does not rest on this process alone: outputs are driven safe on
 * start, on exit, and by `clockface hw reset-outputs` from the unit's ExecStopPost.
 */
interface OnoffGpio {
  writeSync(value: Level): void;
  readSync(): Level;
  watch(cb: (err: Error | null | undefined, value: Level) => void): void;
  unexport(): void;
}
type OnoffCtor = new (gpio: number, direction: string, edge?: string, options?: Record<string, unknown>) => OnoffGpio;

function loadOnoff(): OnoffCtor {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('onoff') as { Gpio: OnoffCtor & { accessible?: boolean } };
    return mod.Gpio;
  } catch (err) {
    throw new HardwareError('gpio', `gpio: the onoff package is not installed or did not build (${(err as Error).message})`, 'run npm install on the terminal (onoff builds only on Linux), or set hardware.gpio.driver to "simulator"');
  }
}

export class OnoffGpioBackend implements GpioBackend {
  readonly kind = 'onoff' as const;
  private readonly Gpio = loadOnoff();
  private readonly open: OnoffGpio[] = [];

  /** @param sysfsBase added to pin numbers (hardware.gpio.sysfsBase). */
  constructor(private readonly sysfsBase = 0) {}

  output(pin: number, name: string, initial: Level): OutputLine {
    // 'high'/'low' as direction sets the level in the same step as the direction: no glitch.
    const gpio = this.openLine(pin, initial === 1 ? 'high' : 'low');
    return {
      pin,
      name,
      write: (level) => gpio.writeSync(level),
      read: () => gpio.readSync(),
      close: () => gpio.unexport(),
    };
  }

  input(pin: number, name: string): InputLine {
    const gpio = this.openLine(pin, 'in', 'both');
    return {
      pin,
      name,
      read: () => gpio.readSync(),
      watch: (listener) => gpio.watch((err, value) => (err ? undefined : listener(value))),
      close: () => gpio.unexport(),
    };
  }

  close(): void {
    // Unexport releases the pins but the kernel keeps output values: callers drive them safe first.
    for (const gpio of this.open.splice(0)) {
      try {
        gpio.unexport();
      } catch {
        /* already released */
      }
    }
  }

  private openLine(pin: number, direction: string, edge?: string): OnoffGpio {
    try {
      const gpio = new this.Gpio(pin + this.sysfsBase, direction, edge, { reconfigureDirection: true });
      this.open.push(gpio);
      return gpio;
    } catch (err) {
      throw explainAccessError('gpio', `/sys/class/gpio/gpio${pin + this.sysfsBase}`, err);
    }
  }
}
