/**
 * Child process for the no-orphan tests: a terminal-like process whose hardware set runs the
 * rpicam camera (the stand-in on PATH). Prints the camera program's pid once frames flow.
 */
import { hardwareConfig } from '../config.js';
import { createHardware } from '../index.js';
import type { ProcessCamera } from '../camera/process-camera.js';

const hw = createHardware(hardwareConfig({ camera: { driver: 'rpicam' }, pins: { relay: 17 } }));
await hw.start();
const cam = hw.camera as ProcessCamera;
cam.once('frame', () => console.log(`camera-pid ${cam.pid}`));
setInterval(() => undefined, 1000);
