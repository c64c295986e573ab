/**
 * Child process for the relay-safety tests: opens the hardware on the GPIO simulator with a
 * record file, then (mode "pulse") starts a long relay pulse and waits to be killed, (mode
 * "throw") crashes with an uncaught exception mid-pulse, or (mode "start") just starts and stops.
 */
import { hardwareConfig } from '../config.js';
import { createHardware } from '../index.js';

const [mode, recordFile] = process.argv.slice(2);
const hw = createHardware(
  hardwareConfig({ gpio: { driver: 'simulator', recordFile }, pins: { relay: 17, greenLed: 22 }, relay: { pulseMs: 60_000, maxPulseMs: 60_000 } }),
);
if (mode === 'start') {
  console.log('started');
  await hw.close();
} else {
  hw.outputs.pulseRelay();
  hw.outputs.led('green', 'on');
  console.log('pulsing');
  if (mode === 'throw') setTimeout(() => { throw new Error('simulated bug'); }, 50);
  setInterval(() => undefined, 1000);
}
