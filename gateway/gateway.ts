import { readFileSync } from 'node:fs';
import { createLogger, type Logger } from '../common/log.js';
import { startOpsServer, type OpsServer } from '../common/ops-server.js';
import { isValidId } from '../protocol/index.js';
import { SiteBroker } from './broker.js';
import { CloudClient } from './cloud-client.js';
import { CloudSync, storedRevocations } from './cloud-sync.js';
import type { GatewayConfig } from './config.js';
import { OutboundDelivery } from './delivery.js';
import { PresenceDebounce } from './presence.js';
import { ForwardReader } from './forward-reader.js';
import { Forwarder } from './forwarder.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { readEnvelopeHeader } from './event-header.js';
import { EventWriter } from './event-writer.js';
import { GatewayStore, type OutboundRow } from './store.js';
import { WipeSchedule } from '../common/wipe.js';
import { ReaderPause } from './reader-pause.js';

/**
 * One site gateway: the broker, the durable store, the forwarder and the downlink, wired
 * together. startGateway() is what `clockface gateway` runs and what tests start in-process.
 */
/** How long a receipt waits for its device (the receipt max age in docs/PROTOCOL.md). */
const RECEIPT_KEEP_MS = 7 * 86_400_000;

export interface Gateway {
  readonly config: GatewayConfig;
  readonly store: GatewayStore;
  readonly broker: SiteBroker;
  readonly metrics: GatewayMetrics;
  /** The durable event writer (its thread: `eventWriter.thread`). */
  readonly eventWriter: EventWriter;
  /** Wipes deleted copies from the store's files within `wipeWithinSeconds` (common/wipe.ts). */
  readonly wiper: WipeSchedule;
  readonly forwarder: Forwarder | null;
  /** The forwarder's batch reader (its thread: `forwardReader.thread`). */
  readonly forwardReader: ForwardReader | null;
  readonly sync: CloudSync | null;
  /** Actual listening ports (useful when the config asks for port 0). */
  readonly mqttPort: number;
  readonly wsPort: number | null;
  readonly opsUrl: string | null;
  health(): { ok: boolean; [detail: string]: unknown };
  /** Reads the server key, certificate and CA again (SIGHUP); connected clients stay connected. */
  reloadTls(): void;
  /** Replaces the revocation set and disconnects clients that are now revoked. */
  applyRevocations(serials: Set<string>): void;
  /** Graceful stop: no new connections, every received event on disk, forwarder stopped. */
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Start the localhost ops server (default true). */
  ops?: boolean;
  /**
   * A store thread keeps dying (gateway/store-thread.ts): the event writer's, so no event can
   * be made durable any more, or the forward reader's, so none can be forwarded. Default: exit
   * with status 1, so systemd (Restart=on-failure) starts the gateway again with its queue on
   * disk; nothing acknowledged is lost, nothing unacknowledged was PUBACKed.
   */
  onFatal?: (err: Error) => void;
}

export async function startGateway(config: GatewayConfig, opts: StartOptions = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger({ name: 'gateway', level: config.log.level });
  const metrics = createGatewayMetrics();
  const readPem = (path: string, what: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read the ${what} (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const readTls = () => ({ ca: readPem(config.mqtt.ca, 'tenant CA certificate'), cert: readPem(config.mqtt.cert, 'gateway certificate'), key: readPem(config.mqtt.key, 'gateway key') });
  const tls = readTls();
  // Every file is read before the store is opened, so a missing one leaves nothing open.
  const token = config.cloud ? readPem(config.cloud.tokenFile, 'cloud token file').trim() : null;
  const cloudCa = config.cloud?.ca ? readPem(config.cloud.ca, 'cloud CA certificate') : undefined;
  const store = new GatewayStore({ dataDir: config.dataDir, durability: config.durability, maxBytes: config.maxQueueBytes });
  const onFatal = opts.onFatal ?? (() => process.exit(1));
  let writer: EventWriter;
  try {
    writer = new EventWriter(store, {
      durability: config.durability,
      ...(config.maxQueueBytes !== undefined ? { maxBytes: config.maxQueueBytes } : {}),
      log,
      onFatal,
    });
  } catch (err) {
    store.close();
    throw err;
  }
  let revoked = storedRevocations(store);
  // Deleted copies are wiped on the writer's thread, batched, within the configured bound;
  // the forward reader pauses meanwhile so the WAL can be truncated (gateway/reader-pause.ts).
  const readerPause = new ReaderPause();
  const wiper = new WipeSchedule({
    boundMs: config.wipeWithinSeconds * 1000,
    name: 'gateway store',
    log,
    wipe: async () => {
      const outcome = await readerPause.exclusive(() => writer.wipe());
      metrics.wipes.inc({ outcome: outcome.complete ? 'complete' : (outcome.reason ?? 'incomplete') });
      return outcome;
    },
  });
  store.onEnvelopeDeleted = () => wiper.deleted();
  // What a previous run deleted may still be in the files (a crash before its wipe).
  wiper.deleted();

  let forwarder: Forwarder | null = null;
  let reader: ForwardReader | null = null;
  const presence = new PresenceDebounce(config.presence.offlineGraceMs, (device, state, at) => {
    // Last Wills fired by our own shutdown may arrive after the store has closed.
    if (!store.db.open) return;
    store.addPresence(device, state, at);
    log.info({ device, state }, 'presence queued for the cloud');
    sync?.nudge();
  });
  let sync: CloudSync | null = null;
  let delivery: OutboundDelivery | null = null;
  const broker = new SiteBroker({
    tenant: config.tenant,
    tls,
    host: config.mqtt.host,
    port: config.mqtt.port,
    wsPort: config.mqtt.wsPort,
    limits: config.limits,
    store,
    appendEvents: (events) => writer.append(events),
    log,
    metrics,
    isRevoked: (serial) => revoked.has(serial),
    hooks: {
      onDeviceSubscribed: (device, channel) => delivery?.deviceSubscribed(device, channel),
      onDeviceAck: (device, channel, payload) => delivery?.acked(device, channel, payload),
      onDeviceDisconnected: (device) => delivery?.deviceDisconnected(device),
      onPresence: (device, state, at) => presence.observe(device, state, at),
      onEventsQueued: () => forwarder?.nudge(),
    },
  });
  delivery = new OutboundDelivery(store, broker, metrics, log, () => sync?.nudge(), async (ids) => {
    const channels = await writer.delivered(ids);
    if (channels.some((c) => c !== null)) wiper.deleted();
    return channels;
  });

  const applyRevocations = (serials: Set<string>) => {
    if (serials.size !== revoked.size) log.info({ revoked: serials.size }, 'revocation list applied');
    revoked = serials;
    broker.enforceRevocations();
  };

  let cloud: CloudClient | null = null;
  if (config.cloud && token !== null) {
    cloud = new CloudClient({
      url: config.cloud.url,
      token,
      ...(cloudCa ? { ca: cloudCa } : {}),
      timeoutMs: config.forwarder.requestTimeoutMs,
    });
    const d = delivery;
    const batches = new ForwardReader(store, config.tenant, { log, onFatal });
    reader = batches;
    forwarder = new Forwarder({
      tenant: config.tenant,
      store,
      nextBatch: (limit, after) => readerPause.read(() => batches.next(limit, after)),
      cloud,
      ...config.forwarder,
      metrics,
      log,
      settle: async (answered, receipts) => {
        const valid: OutboundRow[] = [];
        for (const r of receipts) {
          if (r.tenant !== config.tenant || !isValidId(r.device)) continue;
          const envelope = Buffer.from(r.envelope, 'base64');
          let id: string;
          try {
            const header = readEnvelopeHeader(envelope);
            if (header.kind !== 'receipt') throw new Error(`a ${header.kind}, not a receipt`);
            id = header.id;
          } catch (err) {
            log.warn({ device: r.device, err: { message: (err as Error).message } }, 'receipt from the cloud is not an envelope; skipped');
            continue;
          }
          // Receipts older than the protocol's receipt window would be refused by the device anyway.
          valid.push({ id, device: r.device, channel: 'ack', envelope, expiresAt: Date.now() + RECEIPT_KEEP_MS });
        }
        const added = await writer.settle(answered, valid);
        if ('range' in answered || answered.ids.length > 0) wiper.deleted();
        d.stored(added);
      },
    });
    sync = new CloudSync({ tenant: config.tenant, store, cloud, delivery, ...config.forwarder, metrics, log, onRevocations: applyRevocations });
  } else {
    log.warn('no cloud configured: events are queued on disk until one is');
  }

  metrics.backlogDepth.collect(() => store.eventBacklog().depth);
  metrics.backlogOldestSeconds.collect(() => store.eventBacklog().oldestAgeSeconds);
  metrics.outboundDepth.collect(() => store.outboundDepth());
  metrics.deadLetters.collect(() => store.deadLetters(0).count);
  metrics.unwipedOldestSeconds.collect(() => wiper.oldestUnwipedAgeSeconds());

  let port: number;
  let wsPort: number | null;
  try {
    ({ port, wsPort } = await broker.start());
  } catch (err) {
    // Port taken, address not available: leave nothing open behind the error.
    await broker.close().catch(() => {});
    cloud?.close();
    await reader?.close();
    await wiper.close();
    await writer.close();
    store.close();
    throw new Error(`cannot listen for MQTT on ${config.mqtt.host}:${config.mqtt.port}: ${(err as Error).message}`);
  }
  forwarder?.start();
  sync?.start();

  const health = () => {
    const backlog = store.eventBacklog();
    const forwarding = forwarder ? forwarder.state : 'no-cloud';
    return {
      // 503 from the first 401/403 until the cloud accepts the token again (retries included).
      ok: store.db.open && !forwarder?.authFailing,
      connections: broker.connectionCount,
      backlog,
      forwarder: forwarding,
      lastForwardError: forwarder?.lastError ?? null,
      outbound: store.outboundDepth(),
      deadLetters: store.deadLetters(5),
      // The promise of docs/gateway.md: no deleted copy older than the bound is still on disk.
      wipe: {
        withinSeconds: config.wipeWithinSeconds,
        oldestUnwipedSeconds: wiper.oldestUnwipedAgeSeconds(),
        kept: wiper.oldestUnwipedAgeSeconds() <= config.wipeWithinSeconds,
        lastOutcome: wiper.lastOutcome,
      },
    };
  };
  let ops: OpsServer | null = null;
  if (opts.ops !== false) ops = await startOpsServer({ host: config.ops.host, port: config.ops.port, registry: metrics.registry, health });
  log.info({ mqttPort: port, wsPort, ops: ops?.url ?? null, tenant: config.tenant, gateway: config.gateway }, 'gateway ready');

  let closing: Promise<void> | null = null;
  return {
    config,
    store,
    broker,
    metrics,
    eventWriter: writer,
    wiper,
    forwarder,
    forwardReader: reader,
    sync,
    mqttPort: port,
    wsPort,
    opsUrl: ops?.url ?? null,
    health,
    applyRevocations,
    reloadTls: () => {
      broker.reloadTls(readTls());
      log.info('server key, certificate and CA reloaded for new connections');
    },
    close: () =>
      (closing ??= (async () => {
        await broker.close();
        await delivery?.settled();
        presence.flush();
        await forwarder?.stop();
        await reader?.close();
        await sync?.stop();
        cloud?.close();
        await ops?.close();
        // What was deleted since the last wipe leaves the files before the gateway stops.
        await wiper.flush();
        await wiper.close();
        await writer.close();
        store.close();
        log.info('gateway stopped');
      })()),
  };
}
