import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import mqtt, { type MqttClient } from 'mqtt';
import { generateKeyPair, newMessageId, sealAndSign, type KeyPair } from '../../protocol/index.js';
import { GatewayConfig, resolvePaths } from '../config.js';
import { startGateway, type Gateway } from '../gateway.js';
import { createLogger } from '../../common/log.js';
import { createSitePki, type ClientCredentials, type SitePki } from './site-pki.js';
import { StandInCloud } from './stand-in-cloud.js';

/**
 * Test support: a whole site on loopback — tenant PKI, a stand-in cloud over real TLS, and
 * gateway config files — plus helpers to make device events and MQTT clients.
 */
/** Forwarder settings that retry within milliseconds, for tests where the cloud or a thread fails. */
export const QUICK_FORWARDER = { batchSize: 50, requestTimeoutMs: 5000, backoffBaseMs: 20, backoffMaxMs: 200, breakerThreshold: 3, breakerCooldownMs: 300, longPollSeconds: 1, revocationRefreshMs: 3_600_000 };

/** Terminates a store thread as soon as the next request with this op has been handed to it. */
export function dieAfterNext(thread: Worker, op: string): void {
  const post = thread.postMessage.bind(thread);
  thread.postMessage = (message: unknown, transfer?: readonly never[]) => {
    post(message, transfer);
    if ((message as { op?: string }).op === op) void thread.terminate();
  };
}

/**
 * A gateway on the site with QUICK_FORWARDER whose log lines and fatal errors the test reads
 * (tests that make a thread or the cloud fail).
 */
export async function startWatchedGateway(site: Site, name: string): Promise<{ gw: Gateway; lines: string[]; fatal: Error[] }> {
  const lines: string[] = [];
  const fatal: Error[] = [];
  const log = createLogger({ name, level: 'info', destination: { write: (l: string) => void lines.push(l) } });
  const { config } = site.writeConfig({ forwarder: QUICK_FORWARDER });
  const gw = await startGateway(config, { log, ops: false, onFatal: (err) => fatal.push(err) });
  return { gw, lines, fatal };
}

export interface Site {
  dir: string;
  tenant: string;
  pki: SitePki;
  cloud: StandInCloud;
  adminKey: KeyPair;
  cloudKey: KeyPair;
  token: string;
  /** Writes a gateway config file (JSON) and returns its path and parsed form (paths resolved). */
  writeConfig(overrides?: Partial<Record<string, unknown>>, name?: string): { file: string; config: GatewayConfig };
  cleanup(): Promise<void>;
}

export async function createSite(tenant = 'acme'): Promise<Site> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-gw-'));
  const pki = await createSitePki(join(dir, 'pki'), tenant);
  const adminKey = generateKeyPair('ed25519');
  const cloudKey = generateKeyPair('x25519');
  const token = 'gw-token-' + newMessageId();
  writeFileSync(join(dir, 'gateway.token'), token, { mode: 0o600 });
  const cloudCert = await pki.issue('cloud', 'cloud', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const cloud = new StandInCloud({ tenant, token, adminKey, tls: { cert: cloudCert.certPem, key: cloudCert.keyPem } });
  await cloud.start();
  return {
    dir,
    tenant,
    pki,
    cloud,
    adminKey,
    cloudKey,
    token,
    writeConfig(overrides = {}, name = 'gateway.json') {
      const raw = {
        tenant,
        gateway: 'site-gw',
        dataDir: 'data',
        mqtt: { host: '127.0.0.1', port: 0, ca: 'pki/ca.crt', cert: 'pki/gateway.crt', key: 'pki/gateway.key', wsPort: null },
        cloud: { url: cloud.url, tokenFile: 'gateway.token', ca: 'pki/ca.crt' },
        ops: { port: 0 },
        log: { level: 'warn' },
        ...overrides,
      };
      const file = join(dir, name);
      writeFileSync(file, JSON.stringify(raw, null, 2));
      return { file, config: resolvePaths(GatewayConfig.parse(raw), dir) };
    },
    async cleanup() {
      await cloud.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export class DeviceSim {
  readonly signing = generateKeyPair('ed25519');
  private seq = 0;
  constructor(
    readonly tenant: string,
    readonly id: string,
    private readonly cloudKey: KeyPair,
  ) {}

  /** A sealed, signed event envelope as a terminal would publish it (a small alarm body). */
  event(): { id: string; envelope: Buffer } {
    const id = newMessageId();
    const body = { type: 'alarm', eventId: id, tenant: this.tenant, device: this.id, alarm: 'tamper', door: null, at: Date.now() };
    const envelope = sealAndSign({
      kind: 'event',
      id,
      tenant: this.tenant,
      device: this.id,
      seq: ++this.seq,
      body,
      signer: this.signing,
      recipient: { keyId: this.cloudKey.keyId, key: this.cloudKey.publicKey },
    });
    return { id, envelope };
  }
}

export interface ConnectOptions {
  port: number;
  ca: string;
  creds: Pick<ClientCredentials, 'certFile' | 'keyFile'> | { cert: string; key: string };
  clientId?: string;
  will?: { topic: string; payload: Buffer; qos: 1; retain: boolean };
}

/** Connects an mqtt.js client over TLS with a client certificate; rejects on refusal. */
export function connectClient(opts: ConnectOptions): Promise<MqttClient> {
  const { cert, key } = 'certFile' in opts.creds ? { cert: readFileSync(opts.creds.certFile), key: readFileSync(opts.creds.keyFile) } : opts.creds;
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: opts.port,
      ca: readFileSync(opts.ca),
      cert,
      key,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      clientId: opts.clientId ?? `t-${Math.random().toString(36).slice(2)}`,
      ...(opts.will ? { will: opts.will } : {}),
    });
    client.once('connect', () => {
      client.removeAllListeners('error');
      client.on('error', () => {});
      resolve(client);
    });
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

/** Resolves when the client's connection has closed (used to observe the broker cutting it). */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected && client.disconnected) return resolve();
    client.once('close', () => resolve());
  });
}

/** Polls a condition (no timing assertions: the test's own timeout bounds it). */
export async function until(cond: () => boolean | Promise<boolean>, stepMs = 20): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, stepMs));
}

let commandSeq = 0;
/** A signed remote-unlock command for a device, as the cloud would queue it. */
export function commandEnvelope(adminKey: KeyPair, tenant: string, device: string, expiresAt = Date.now() + 3_600_000): { id: string; envelope: Buffer } {
  const id = newMessageId();
  const body = { type: 'remote-unlock', commandId: id, tenant, device, issuedAt: Date.now(), expiresAt, door: 'lobby', pulseMs: 1000 };
  const envelope = sealAndSign({ kind: 'command', id, tenant, device, seq: ++commandSeq, body, signer: adminKey, expiresAt });
  return { id, envelope };
}
