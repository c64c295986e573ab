import type { Registry } from '../../common/metrics.js';
import type { Hardware } from './index.js';

/**
 * Hardware health for the terminal's /metrics: is the camera streaming, is the reader there,
 * what the door is doing. Counts and states only; never card numbers or images.
 */
export function registerHardwareMetrics(registry: Registry, hw: Hardware): void {
  const { camera, reader, outputs, inputs } = hw;
  if (camera) {
    registry.gauge('clockface_camera_fps', 'Camera frames per second over the last seconds').collect(() => camera.stats().fps);
    registry.gauge('clockface_camera_running', '1 while the camera is started').collect(() => (camera.stats().running ? 1 : 0));
    registry.gauge('clockface_camera_restarts', 'Camera program restarts since start (crash or stall)').collect(() => camera.stats().restarts);
    registry.gauge('clockface_camera_stalls', 'Camera programs killed for not delivering frames').collect(() => camera.stats().stalls);
  }
  if (reader) {
    registry.gauge('clockface_card_reader_connected', '1 while the card reader port is open').collect(() => (reader.connected ? 1 : 0));
    const reads = registry.counter('clockface_card_reads_total', 'Card presentations read');
    const rejects = registry.counter('clockface_card_rejects_total', 'Reader frames rejected (checksum, format)');
    const drops = registry.counter('clockface_card_reader_disconnects_total', 'Card reader disconnects (unplug, port lost)');
    reader.on('card', () => reads.inc());
    reader.on('reject', () => rejects.inc());
    reader.on('disconnected', () => drops.inc());
  }
  registry.gauge('clockface_relay_open', '1 while the door relay holds the door open').collect(() => (outputs.relayOpen ? 1 : 0));
  registry.gauge('clockface_door_open', '1 while the door contact reads open').collect(() => (inputs.isDoorOpen ? 1 : 0));
  registry.gauge('clockface_tamper', '1 while the tamper switch reports the case open').collect(() => (inputs.isTampered ? 1 : 0));
  const alarms = registry.counter('clockface_door_alarms_total', 'Door alarms by kind');
  inputs.on('door-forced-open', () => alarms.inc({ kind: 'forced-open' }));
  inputs.on('door-held-open', () => alarms.inc({ kind: 'held-open' }));
}
