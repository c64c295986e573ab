import { resolve } from 'node:path';
import { z } from 'zod';
import { LogConfig, loadConfig } from '../common/config.js';
import { ID_REGEX, LIMITS } from '../protocol/index.js';

/**
 * The gateway's configuration (`clockface gateway --config FILE`). The sections named in the
 * project contract (tenant, gateway, dataDir, mqtt, cloud, ops, log) come first; `limits`,
 * `forwarder` and `durability` are optional tuning with safe defaults.
 */
const Id = z.string().regex(ID_REGEX, 'must be 1-63 lowercase letters, digits or inner dashes');
const Port = z.number().int().min(0).max(65535);

export const GatewayConfig = z
  .object({
    tenant: Id,
    gateway: Id,
    dataDir: z.string().min(1),
    mqtt: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: Port.default(8883),
        ca: z.string().min(1),
        cert: z.string().min(1),
        key: z.string().min(1),
        /** Optional MQTT-over-WebSocket listener (TLS with the same client-certificate rules). */
        wsPort: Port.nullable().default(null),
      })
      .strict(),
    /** The cloud is optional: without it the gateway queues events until one is configured. */
    cloud: z
      .object({
        url: z.string().url(),
        tokenFile: z.string().min(1),
        ca: z.string().min(1).optional(),
      })
      .strict()
      .nullable()
      .default(null),
    ops: z.object({ host: z.string().default('127.0.0.1'), port: Port.default(9465) }).strict().default({ host: '127.0.0.1', port: 9465 }),
    log: LogConfig,
    /**
     * "full": fsync on every group commit (survives power loss). "normal": WAL without fsync
     * per commit (survives a process crash, may lose the last commits on power loss).
     */
    durability: z.enum(['full', 'normal']).default('full'),
    /**
     * Most disk the event queue may take, in bytes (default: whatever the disk has). When the
     * queue is full, new events get no PUBACK (terminals keep them and retry) until forwarding
     * frees space; a full disk behaves the same way.
     */
    maxQueueBytes: z.number().int().min(64 * 1024).optional(),
    /**
     * A terminal that drops off is reported offline to the cloud only if it has not come back
     * within `offlineGraceMs` (a credentials reload, a network blip): the cloud's view of who
     * is offline is what facilities staff act on.
     */
    /**
     * How long a deleted copy may stay on the gateway's disk, in seconds: an event the cloud has
     * answered for, a command or receipt delivered or expired. Within it the store is rewritten
     * (VACUUM) and its WAL truncated, so none of their bytes remain in the database file, its
     * free pages or the WAL (docs/gateway.md "How long a copy lives").
     */
    wipeWithinSeconds: z.number().int().min(4).max(86_400).default(60),
    presence: z.object({ offlineGraceMs: z.number().int().min(0).default(15_000) }).strict().default({ offlineGraceMs: 15_000 }),
    limits: z
      .object({
        /** Largest MQTT packet accepted; checked on the fixed header before the body is buffered. */
        maxPacketBytes: z.number().int().positive().default(LIMITS.eventEnvelopeBytes + 4096),
        /** Sustained publishes per second per client, and the burst above it. */
        publishRate: z.number().positive().default(200),
        publishBurst: z.number().positive().default(1000),
        /** QoS 1 publishes a client may have waiting for their PUBACK. */
        maxInflight: z.number().int().positive().default(200),
      })
      .strict()
      .default({ maxPacketBytes: LIMITS.eventEnvelopeBytes + 4096, publishRate: 200, publishBurst: 1000, maxInflight: 200 }),
    forwarder: z
      .object({
        batchSize: z.number().int().min(1).max(500).default(500),
        requestTimeoutMs: z.number().int().positive().default(15_000),
        backoffBaseMs: z.number().int().positive().default(500),
        backoffMaxMs: z.number().int().positive().default(60_000),
        /** Consecutive failures that open the circuit, and how long it stays open. */
        breakerThreshold: z.number().int().positive().default(5),
        breakerCooldownMs: z.number().int().positive().default(30_000),
        longPollSeconds: z.number().int().min(0).max(30).default(25),
        revocationRefreshMs: z.number().int().positive().default(60_000),
      })
      .strict()
      .default({
        batchSize: 500,
        requestTimeoutMs: 15_000,
        backoffBaseMs: 500,
        backoffMaxMs: 60_000,
        breakerThreshold: 5,
        breakerCooldownMs: 30_000,
        longPollSeconds: 25,
        revocationRefreshMs: 60_000,
      }),
  })
  .strict();
export type GatewayConfig = z.infer<typeof GatewayConfig>;

/** Loads and validates a config file; relative paths are resolved against its folder. */
export function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const { config, baseDir } = loadConfig(GatewayConfig, { file, env });
  return resolvePaths(config, baseDir);
}

export function resolvePaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  const at = (p: string) => resolve(baseDir, p);
  return {
    ...config,
    dataDir: at(config.dataDir),
    mqtt: { ...config.mqtt, ca: at(config.mqtt.ca), cert: at(config.mqtt.cert), key: at(config.mqtt.key) },
    cloud: config.cloud
      ? { ...config.cloud, tokenFile: at(config.cloud.tokenFile), ...(config.cloud.ca ? { ca: at(config.cloud.ca) } : {}) }
      : null,
  };
}
