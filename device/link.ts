import mqtt, { type MqttClient } from 'mqtt';
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import {
  Ack,
  Command,
  LIMITS,
  UUID_REGEX,
  isProtocolError,
  peekHeader,
  topics,
  verifyAndOpen,
  type KeyPair,
  type PublicKeyRef,
} from '../protocol/index.js';
import type { z } from 'zod';
import { normalizeSerial } from '../protocol/cert-identity.js';
import type { Logger } from 'pino';
import type { DeviceStore } from './store.js';
import type { EventRecorder } from './events.js';

export type CommandBody = z.infer<typeof Command>;

const DAY_MS = 86_400_000;
/** Commands that carry templates or photos must arrive sealed to this device. */
const PERSONAL_COMMANDS = new Set(['enroll-subject', 'update-subject']);

export interface TlsCredentials {
  ca: Buffer | string;
  cert: Buffer | string;
  key: Buffer | string;
}

export interface LinkOptions {
  tenant: string;
  device: string;
  url: string;
  tls: TlsCredentials;
  store: DeviceStore;
  recorder: EventRecorder;
  adminSigning: PublicKeyRef;
  deviceSealing: KeyPair;
  log: Logger;
  /** Applies a verified command; throws to report `failed`. */
  applyCommand: (cmd: CommandBody) => Promise<void>;
  /** Health facts for the retained status. */
  health: () => Record<string, number | string | boolean>;
  versions?: Record<string, string>;
  heartbeatMs?: number;
  reconnectMs?: number;
  /** The latest revocation list: a broker whose certificate serial is on it is refused. */
  isRevoked?: (serialHex: string) => boolean;
}

/**
 * The terminal's MQTT link. Publishes the outbox oldest first with QoS 1, one at a time so the
 * broker sees them in order; an event leaves the outbox only when a verified cloud receipt
 * names it (a PUBACK only means the gateway has it). Every reconnect republishes whatever is
 * still unacknowledged, oldest first; the cloud deduplicates by event id.
 */
export class DeviceLink {
  private client: MqttClient | undefined;
  private draining = false;
  private wakeAgain = false;
  /** Highest outbox row published on this connection. */
  private publishedUpTo = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly statusTopic: string;
  private tls: TlsCredentials;
  acknowledged = 0;
  rejectedCommands = 0;
  refusedRevoked = 0;

  constructor(private readonly opts: LinkOptions) {
    this.statusTopic = topics.status(opts.tenant, opts.device);
    this.tls = opts.tls;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  start(): void {
    this.connect();
    this.heartbeat = setInterval(() => this.publishStatus(), this.opts.heartbeatMs ?? 30_000);
    this.heartbeat.unref();
  }

  /**
   * Switches to new TLS credentials (a rotated key and certificate, a new CA) without losing
   * anything. The broker keeps one session per device and a second connection takes it over,
   * and aedes then fires the old connection's Last Will ("offline"). So: prove the new
   * identity with a TLS handshake first (a bad bundle leaves the working link alone), then
   * end the old connection cleanly (its in-flight publishes get their PUBACKs, DISCONNECT:
   * no Will), then connect with the same client id. The session is persistent at the broker,
   * so QoS 1 messages for the device wait there; unacknowledged outbox events go again. If
   * the new session does not come up, the link goes back to the old credentials and throws.
   */
  async reload(tls: TlsCredentials, timeoutMs = 10_000): Promise<void> {
    await probeTls(this.opts.url, tls, timeoutMs);
    const old = this.client;
    if (old) {
      const ended = old.endAsync();
      const timer = setTimeout(() => old.end(true), timeoutMs);
      await ended.finally(() => clearTimeout(timer));
    }
    const previous = this.tls;
    this.tls = tls;
    try {
      await this.connectAndWait(timeoutMs);
    } catch (err) {
      // The gateway refused the new identity after the handshake (TLS 1.3 checks the client
      // certificate late) or did not answer: go back to the credentials that worked.
      this.client?.end(true);
      this.tls = previous;
      this.connect();
      throw err;
    }
  }

  private connectAndWait(timeoutMs: number): Promise<void> {
    const client = this.connect();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no MQTT session with the new credentials within ${timeoutMs} ms`)), timeoutMs);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private connect(): MqttClient {
    const { opts, tls } = this;
    const client = mqtt.connect(opts.url, {
      clientId: `${opts.tenant}.${opts.device}`,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      rejectUnauthorized: true,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: opts.reconnectMs ?? 2000,
      connectTimeout: 10_000,
      will: { topic: this.statusTopic, payload: Buffer.from(this.statusJson('offline')), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', () => {
      const serial = (client.stream as Partial<TLSSocket>).getPeerCertificate?.().serialNumber;
      if (serial && opts.isRevoked?.(normalizeSerial(serial))) {
        // Trust the CA, but not a revoked gateway: drop the session before subscribing or publishing.
        this.refusedRevoked++;
        opts.log.error({ reason: 'broker-revoked', serial: normalizeSerial(serial) }, 'broker certificate is revoked; link refused');
        client.stream.destroy();
        return;
      }
      opts.log.info('link connected');
      this.publishedUpTo = 0; // a new session: everything unacknowledged goes again, in order
      client.subscribe(
        [topics.ack(opts.tenant, opts.device), topics.cmd(opts.tenant, opts.device)],
        { qos: 1 },
        (err) => {
          if (err) opts.log.warn({ err: err.message }, 'subscribe failed');
        },
      );
      this.publishStatus();
      this.wake();
    });
    client.on('close', () => opts.log.debug('link closed'));
    client.on('error', (err) => opts.log.warn({ err: err.message }, 'link error'));
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/ack')) this.onReceipt(payload);
      else if (topic.endsWith('/cmd')) void this.onCommand(payload);
    });
    return client;
  }

  /** Publishes queued events; safe to call at any time (coalesces). */
  wake(): void {
    if (this.draining) {
      this.wakeAgain = true;
      return;
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      do {
        this.wakeAgain = false;
        for (;;) {
          const client = this.client;
          if (!client?.connected) return;
          const batch = this.opts.store.pending(20, this.publishedUpTo);
          if (batch.length === 0) break;
          for (const entry of batch) {
            await client.publishAsync(entry.topic, entry.envelope, { qos: 1 });
            this.publishedUpTo = entry.id;
          }
        }
      } while (this.wakeAgain);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'publishing stopped; resumes on reconnect');
    } finally {
      this.draining = false;
      // A new connection (credentials reload) may have asked while the old one failed.
      if (this.wakeAgain && this.client?.connected) this.wake();
    }
  }

  private onReceipt(payload: Buffer): void {
    try {
      const { body } = verifyAndOpen(payload, {
        expect: { kind: 'receipt', tenant: this.opts.tenant, device: this.opts.device },
        signers: (keyId) => (keyId === this.opts.adminSigning.keyId ? this.opts.adminSigning : undefined),
        // No time window: a terminal whose own clock is wrong must still be able to let go of
        // what the cloud has stored. A receipt is signed by the tenant and only ever names
        // events the cloud holds, so an old one replayed deletes nothing that is not safe.
        maxAgeMs: Number.MAX_SAFE_INTEGER,
        maxFutureMs: Number.MAX_SAFE_INTEGER,
        schema: Ack,
      });
      if (payload.length > LIMITS.receiptEnvelopeBytes) throw new Error('receipt too large');
      const removed = this.opts.store.acknowledge(body.eventIds);
      this.acknowledged += removed;
      this.opts.log.debug({ removed, listed: body.eventIds.length }, 'receipt applied');
    } catch (err) {
      this.opts.log.warn({ reason: isProtocolError(err) ? err.code : 'invalid', err: (err as Error).message }, 'receipt refused');
    }
  }

  private async onCommand(payload: Buffer): Promise<void> {
    let commandId: string | null = null;
    let cmd: CommandBody;
    try {
      commandId = safeHeaderId(payload);
      const opened = verifyAndOpen(payload, {
        expect: { kind: 'command', tenant: this.opts.tenant, device: this.opts.device },
        signers: (keyId) => (keyId === this.opts.adminSigning.keyId ? this.opts.adminSigning : undefined),
        recipientKeys: [this.opts.deviceSealing],
        sequences: this.opts.store,
        maxAgeMs: 30 * DAY_MS,
        maxFutureMs: 5 * 60_000,
        schema: Command,
      });
      cmd = opened.body;
      commandId = cmd.commandId;
      if (cmd.tenant !== this.opts.tenant || cmd.device !== this.opts.device) throw new Error('command body names another tenant or device');
      if (cmd.expiresAt < Date.now()) throw new Error('command expired');
      if (PERSONAL_COMMANDS.has(cmd.type) && opened.header.recipient === null) {
        throw new Error(`${cmd.type} must be sealed to the device`);
      }
    } catch (err) {
      // A ProtocolError's message already starts with its code ('envelope.replayed: ...').
      const reason = (err as Error).message;
      this.rejectedCommands++;
      this.opts.log.warn({ commandId, reason }, 'command rejected');
      this.opts.recorder.commandResult(commandId, 'rejected', reason);
      return;
    }
    try {
      await this.opts.applyCommand(cmd);
      this.opts.log.info({ commandId, type: cmd.type }, 'command applied');
      this.opts.recorder.commandResult(commandId, 'applied', null);
    } catch (err) {
      this.opts.log.warn({ commandId, type: cmd.type, err: (err as Error).message }, 'command failed');
      this.opts.recorder.commandResult(commandId, 'failed', (err as Error).message);
    }
  }

  private statusJson(state: 'online' | 'offline'): string {
    return JSON.stringify({
      type: 'status',
      tenant: this.opts.tenant,
      device: this.opts.device,
      state,
      at: Date.now(),
      versions: this.opts.versions ?? {},
      health: state === 'online' ? this.opts.health() : {},
    });
  }

  publishStatus(): void {
    if (!this.client?.connected) return;
    this.client.publish(this.statusTopic, this.statusJson('online'), { qos: 1, retain: true });
  }

  /** Best-effort QoS 1 publish of a plain message (door decisions); nothing is queued when offline. */
  publishRaw(topic: string, body: string): void {
    if (this.client?.connected) this.client.publish(topic, body, { qos: 1 });
  }

  /** Says offline (retained) and disconnects; the outbox stays as it is on disk. */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      await client.publishAsync(this.statusTopic, this.statusJson('offline'), { qos: 1, retain: true }).catch(() => undefined);
    }
    await client.endAsync();
  }
}

function safeHeaderId(payload: Buffer): string | null {
  try {
    const id = peekHeader(payload).id;
    return UUID_REGEX.test(id) ? id : null;
  } catch {
    return null;
  }
}

/** A TLS handshake with the broker using the given credentials; throws if either side refuses. */
function probeTls(url: string, tls: TlsCredentials, timeoutMs: number): Promise<void> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port: Number(port || 8883), servername: isIP(host) ? undefined : host, ...tls, rejectUnauthorized: true });
    const fail = (err: Error) => {
      socket.destroy();
      reject(new Error(`new TLS credentials refused: ${err.message}`));
    };
    socket.setTimeout(timeoutMs, () => fail(new Error('handshake timed out')));
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      socket.off('error', fail);
      socket.once('error', () => undefined);
      socket.end();
      resolve();
    });
  });
}

