import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isAbsolute, join, resolve } from 'node:path';
import { keyPairFromPem, newMessageId, PROTOCOL_ERROR_CODES, publicKeyRef, topics } from '../protocol/index.js';
import { normalizeSerial } from '../protocol/cert-identity.js';
import type { Logger } from 'pino';
import { Registry } from '../common/metrics.js';
import { startOpsServer, type OpsServer } from '../common/ops-server.js';
import type { Notifier } from '../common/systemd.js';
import { createHardware, registerHardwareMetrics, type Camera, type Hardware } from './hardware/index.js';
import { performance } from 'node:perf_hooks';
import type { DeviceConfig } from './config.js';
import { DeviceStore } from './store.js';
import { EventRecorder } from './events.js';
import { DeviceLink } from './link.js';
import { Terminal } from './terminal.js';
import { IGNORE_REASONS } from './trigger-queue.js';
import { loadCardPepper } from './card-pepper.js';
import { Indicators } from './indicators.js';
import { startFaceTrigger } from './face-trigger.js';
import { FunctionKeys } from './function-keys.js';
import { ClockWatch } from './clock.js';
import { PolicyHolder, createCommandHandler } from './commands.js';
import type { FaceEngine } from './face-engine.js';


export interface DeviceServiceOptions {
  config: DeviceConfig;
  baseDir: string;
  log: Logger;
  face: FaceEngine | null;
  notifier?: Notifier;
  /** Tests share a GPIO simulator with the service. */
  hardware?: Hardware;
  /** 0 for an ephemeral ops port; null for none. */
  opsPort?: number | null;
  /** `$CREDENTIALS_DIRECTORY` as systemd sets it (the card pepper credential); main.ts passes it. */
  credentialsDirectory?: string;
}

export interface DeviceService {
  terminal: Terminal;
  store: DeviceStore;
  link: DeviceLink;
  hardware: Hardware;
  policy: PolicyHolder;
  ops: OpsServer | null;
  /** Reads the MQTT key, certificate and CA again (SIGHUP after a rotated bundle) and switches the link over. */
  reloadCredentials(): Promise<void>;
  /** Relay safe, link closed with an offline status, outbox flushed to disk. */
  stop(): Promise<void>;
}

/** Wires store, recorder, link, hardware and the decision flow; the process wrapper is in main.ts. */
export async function startDeviceService(o: DeviceServiceOptions): Promise<DeviceService> {
  const { config, log } = o;
  const path = (p: string) => (isAbsolute(p) ? p : resolve(o.baseDir, p));
  const read = (p: string) => readFileSync(path(p));
  const dataDir = path(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const signer = keyPairFromPem('ed25519', read(config.keys.signing));
  const sealing = keyPairFromPem('x25519', read(config.keys.sealing));
  const cloud = publicKeyRef('x25519', read(config.keys.cloudSealingPublic).toString('utf8').trim());
  const admin = publicKeyRef('ed25519', read(config.keys.adminSigningPublic).toString('utf8').trim());
  const { pepper, source: pepperSource } = loadCardPepper({
    credentialsDir: o.credentialsDirectory,
    fallbackFile: config.keys.cardPepper === undefined ? undefined : path(config.keys.cardPepper),
  });
  if (pepperSource === 'file') log.warn('card pepper read from a plain file (keys.cardPepper): for development only; an installed terminal has it as an encrypted systemd credential');
  else log.info('card pepper read from the systemd credential');

  const mqttCredentials = () => ({ ca: read(config.mqtt.ca), cert: read(config.mqtt.cert), key: read(config.mqtt.key) });
  const store = new DeviceStore(join(dataDir, 'device.db'), dataKey(dataDir), { wipeWithinMs: config.wipeWithinSeconds * 1000, log });
  const policy = new PolicyHolder(store, config.policy);
  const registry = new Registry();
  const punches = registry.counter('clockface_device_punches_total', 'Punch decisions recorded');
  const shed = registry.counter('clockface_device_outbox_photos_dropped_total', 'Photos dropped under outbox pressure');
  const outboxGauge = registry.gauge('clockface_device_outbox_events', 'Events waiting for a cloud receipt');
  const rejected = registry.counter('clockface_device_commands_rejected_total', 'Commands refused (unsigned, expired, replayed, other tenant, invalid), by reason');
  const linkUp = registry.gauge('clockface_device_link_up', '1 while the MQTT link to the gateway is connected');
  if (policy.savedRefused) log.warn({ reason: policy.savedRefused }, 'saved policy refused by this release; using the config file policy until the cloud sends one');
  const ignored = registry.counter('clockface_device_triggers_ignored_total', 'Triggers (card reads, face scans, keypad entries) not acted on, by reason');
  // Every reason shows from the start (at 0), so a rate over it needs no first occurrence.
  for (const reason of IGNORE_REASONS) ignored.inc({ reason }, 0);
  const latency = registry.histogram('clockface_device_decision_seconds', 'Trigger to decision recorded and actuated', [0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10]);

  // Assigned below; the recorder and terminal only call it after start.
  // eslint-disable-next-line prefer-const
  let link: DeviceLink;
  const recorder = new EventRecorder({
    tenant: config.tenant,
    device: config.device,
    store,
    signer,
    cloud,
    limits: config.outbox,
    onQueued: () => link?.wake(),
    onCommandResult: (outcome, reason) => {
      if (outcome === 'rejected') rejected.inc({ reason: rejectionLabel(reason) });
    },
    onPressure: (r) => {
      shed.inc(undefined, r.photosDropped.length);
      log.warn({ photosDropped: r.photosDropped.length, eventsDropped: r.eventsDropped.length }, 'outbox over its bounds');
    },
  });

  const clock = new ClockWatch();
  const hardware = o.hardware ?? createHardware(config.hardware, { baseDir: o.baseDir, log });
  registerHardwareMetrics(registry, hardware);
  const terminal = new Terminal({
    tenant: config.tenant,
    device: config.device,
    mode: config.mode,
    store,
    recorder,
    pepper,
    policy: () => policy.get(),
    face: o.face,
    camera: () => hardware.camera,
    outputs: hardware.outputs,
    wiegand: hardware.wiegand,
    log,
    clockSync: () => clock.state(),
    publishDoor: (d) =>
      link.publishRaw(topics.door(config.tenant, config.device), JSON.stringify({ type: 'door', tenant: config.tenant, device: config.device, ...d, at: Date.now() })),
  });
  // LEDs and buzzer follow the screen, the link and the parts (indicators.ts has the table).
  const indicators = new Indicators(hardware.outputs);
  terminal.on('screen', (state, detail) => indicators.screen(state, detail));
  // Every trigger not acted on is counted by reason and shown (the terminal logged it once).
  terminal.on('ignored', (i) => {
    ignored.inc({ reason: i.reason });
    indicators.ignored(i.reason);
  });
  const cameraFailed = () => indicators.part('camera', true);
  const cameraWorks = () => indicators.part('camera', false);
  const readerFailed = () => indicators.part('reader', true);
  const readerWorks = () => indicators.part('reader', false);
  // What the indicators watch on the camera and reader, attached now and detached at stop.
  const partWatches: Array<[NodeJS.EventEmitter | undefined, string, () => void]> = [
    [hardware.camera, 'error', cameraFailed],
    [hardware.camera, 'restart', cameraFailed],
    [hardware.camera, 'frame', cameraWorks],
    [hardware.reader, 'error', readerFailed],
    [hardware.reader, 'disconnected', readerFailed],
    [hardware.reader, 'connected', readerWorks],
  ];
  for (const [part, event, listener] of partWatches) part?.on(event, listener);
  terminal.on('punch', (_p, t) => {
    punches.inc();
    latency.observe((performance.now() - t.startedAt) / 1000);
  });

  link = new DeviceLink({
    tenant: config.tenant,
    device: config.device,
    url: config.mqtt.url,
    tls: mqttCredentials(),
    store,
    recorder,
    adminSigning: admin,
    deviceSealing: sealing,
    log,
    heartbeatMs: config.mqtt.heartbeatMs,
    applyCommand: createCommandHandler({ store, face: o.face, policy, unlock: (ms) => terminal.unlock(ms), log }),
    health: () => ({ outbox: store.outboxSize().count, subjects: store.subjectCount(), camera: hardware.camera?.stats().running ?? false }),
    // A face engine that failed to load (main.ts passes null) shows as faceBackend 'unavailable'.
    versions: { clockface: '0.1.0', model: o.face?.model ?? 'none', ...(o.face?.versions ?? { faceBackend: 'unavailable' }) },
    isRevoked: (serial) => {
      const list = store.getSetting('revocations');
      return list !== undefined && (JSON.parse(list) as { serials: string[] }).serials.some((s) => normalizeSerial(s) === serial);
    },
  });

  const keys = new FunctionKeys(hardware.gpio, config.functionKeys);
  terminal.on('punch', () => keys.clear());
  const stopFaceTrigger = o.face ? startFaceTrigger(terminal, () => policy.get(), config.faceTrigger, () => keys.peek(), (err) => log.error({ err, trigger: 'face' }, 'trigger failed')) : () => undefined;
  // Every trigger is guarded: a fault in one decision is logged, never an unhandled rejection
  // that ends the process, and the terminal is idle again for the next person.
  const guarded = (what: string, fn: () => unknown): void => {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err: unknown) => log.error({ err, trigger: what }, 'trigger failed'));
    } catch (err) {
      log.error({ err, trigger: what }, 'trigger failed');
    }
  };
  const onCardRead = ({ number }: { number: string }) => guarded('card', () => terminal.onCard(number, keys.peek()));
  // The same card still on the reader: one presentation, traced through the same mechanism.
  const onCardRepeat = () => terminal.ignoreTrigger('card', 'reader-repeat');
  // A keypad entry answers the terminal's "enter PIN" prompt (card + PIN); ignored otherwise.
  const onPin = ({ pin }: { pin: string }) => guarded('pin', () => terminal.enterPin(pin));
  const onExitButton = () => guarded('request-to-exit', () => terminal.unlock());
  hardware.reader?.on('card', onCardRead);
  hardware.reader?.on('repeat', onCardRepeat);
  hardware.reader?.on('pin', onPin);
  hardware.inputs.on('request-to-exit', onExitButton);
  for (const alarm of ['door-held-open', 'door-forced-open'] as const) {
    hardware.inputs.on(alarm, () =>
      recorder.record({ type: 'alarm', eventId: newMessageId(), tenant: config.tenant, device: config.device, alarm, door: policy.get().access.door, at: Date.now() }),
    );
  }
  hardware.inputs.on('tamper', ({ active }) => {
    if (active) recorder.record({ type: 'alarm', eventId: newMessageId(), tenant: config.tenant, device: config.device, alarm: 'tamper', door: null, at: Date.now() });
  });


  // Read at scrape time, so receipts (which shrink the outbox inside the link) show at once.
  let storeOpen = true;
  outboxGauge.collect(() => (storeOpen ? store.outboxSize().count : 0));
  linkUp.collect(() => (link.connected ? 1 : 0));
  registry
    .gauge('clockface_device_unwiped_oldest_age_seconds', 'Age of the oldest deleted copy (event, photo, template) whose bytes may still be on disk; stays under wipeWithinSeconds while the promise is kept')
    .collect(() => (storeOpen ? store.wiper.oldestUnwipedAgeSeconds() : 0));
  const health = () => checkHealth({ store: () => storeOpen && storeAnswers(store), camera: hardware.camera, linkUp: () => link.connected });

  if (!o.hardware) await hardware.start();
  link.start();
  // DeviceLink reports no connect/close events, so the offline blink follows a look at its state.
  const linkWatch = setInterval(() => indicators.link(link.connected), LINK_WATCH_MS);
  linkWatch.unref();
  const opsPort = o.opsPort === undefined ? config.ops.port : o.opsPort;
  const ops =
    opsPort === null
      ? null
      : await startOpsServer({
          port: opsPort,
          registry,
          health: () => {
            const h = health();
            const unwiped = store.wiper.oldestUnwipedAgeSeconds();
            return {
              ...h,
              outbox: h.store === 'ok' ? store.outboxSize().count : null,
              // The promise of device/README.md: no deleted copy older than the bound is on disk.
              wipe: { withinSeconds: config.wipeWithinSeconds, oldestUnwipedSeconds: unwiped, kept: unwiped <= config.wipeWithinSeconds },
            };
          },
        });
  // Release 1 card hashes on this disk become v2 in the background (credential-check.ts).
  terminal.credentials.startUpgrade();
  o.notifier?.ready('terminal ready');
  // systemd restarts a terminal whose store or camera is dead; an offline link is a normal mode.
  o.notifier?.startWatchdog(() => health().ok);

  let stopped = false;
  let reloading: Promise<void> = Promise.resolve();
  return {
    terminal,
    store,
    link,
    hardware,
    policy,
    ops,
    reloadCredentials() {
      // One switch at a time: a second SIGHUP waits for the first.
      reloading = reloading.catch(() => undefined).then(() => link.reload(mqttCredentials()));
      return reloading;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      o.notifier?.stopping();
      // 1. No new triggers: reader, keypad, exit button, face scans, function keys.
      hardware.reader?.off('card', onCardRead);
      hardware.reader?.off('repeat', onCardRepeat);
      hardware.reader?.off('pin', onPin);
      hardware.inputs.off('request-to-exit', onExitButton);
      stopFaceTrigger();
      keys.close();
      // 2. The decision in flight finishes: its punch is in the outbox, or it never started.
      await terminal.close();
      await terminal.credentials.close();
      // 3. Relay to rest, then outputs, link, ops and store closed.
      clearInterval(linkWatch);
      indicators.close();
      for (const [part, event, listener] of partWatches) part?.off(event, listener);
      hardware.outputs.close();
      await link.stop();
      await ops?.close();
      if (!o.hardware) await hardware.close();
      storeOpen = false;
      store.close();
    },
  };
}

/** A metrics label for a rejection: the protocol error code, or the check that failed. */
function rejectionLabel(reason: string | null): string {
  // Protocol refusals start with their code ('envelope.replayed: ...'); the label set stays the code list.
  const code = PROTOCOL_ERROR_CODES.find((c) => reason?.startsWith(`${c}:`));
  if (code) return code;
  if (/expired/.test(reason ?? '')) return 'expired';
  if (/another tenant/.test(reason ?? '')) return 'other-tenant';
  if (/must be sealed/.test(reason ?? '')) return 'unsealed';
  return 'invalid';
}

/** The store answers a query (a closed or broken database throws). */
function storeAnswers(store: DeviceStore): boolean {
  try {
    store.db.prepare('SELECT 1').get();
    return true;
  } catch {
    return false;
  }
}

/** How often the LEDs look at the link's state (the offline blink starts within this). */
const LINK_WATCH_MS = 250;

/** A camera is alive when it delivered a frame in the last few seconds. */
const CAMERA_FRESH_MS = 5000;

/**
 * /health and the watchdog: failed when the store does not answer or the camera (when fitted)
 * gives no frames; degraded, still ok, when only the link is down, since offline is a normal mode.
 */
export function checkHealth(p: { store: () => boolean; camera: Camera | undefined; linkUp: () => boolean }): {
  ok: boolean;
  state: 'healthy' | 'degraded' | 'failed';
  store: 'ok' | 'failed';
  camera: 'ok' | 'no-frames' | 'none';
  link: 'up' | 'down';
} {
  const store = p.store() ? 'ok' : 'failed';
  const frame = p.camera?.latestFrame();
  const camera = !p.camera ? 'none' : p.camera.stats().running && frame && performance.now() - frame.receivedAt < CAMERA_FRESH_MS ? 'ok' : 'no-frames';
  const link = p.linkUp() ? 'up' : 'down';
  const ok = store === 'ok' && camera !== 'no-frames';
  return { ok, state: !ok ? 'failed' : link === 'down' ? 'degraded' : 'healthy', store, camera, link };
}

/** The device data key that encrypts templates at rest: 32 random bytes, 0600, made once. */
function dataKey(dataDir: string): Buffer {
  const file = join(dataDir, 'data.key');
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key`);
  return key;
}
