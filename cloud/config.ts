import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ID_REGEX } from '../protocol/index.js';
import { LogConfig } from '../common/config.js';

/**
 * The cloud role's configuration (`clockface cloud --config FILE`). Relative paths resolve
 * against the config file's folder (see resolvePaths).
 */
const RecheckConfig = z
  .object({
    engine: z.enum(['local', 'rekognition', 'none']).default('none'),
    /** Rekognition: region and optional endpoint (an on-premises or test endpoint). Credentials come from the standard AWS chain. */
    region: z.string().min(1).default('eu-west-1'),
    endpoint: z.string().url().nullable().default(null),
    /** Local engine: the command that starts the project's face worker (JSON lines on stdio). */
    command: z.array(z.string().min(1)).min(1).default(['clockface', 'face', 'serve']),
    /** Calls per second to the engine across all tenants (Rekognition has account quotas). */
    ratePerSecond: z.number().positive().max(1000).default(5),
    maxAttempts: z.number().int().min(1).max(50).default(5),
    intervalMs: z.number().int().min(50).default(2000),
  })
  .strict();

export const CloudConfig = z
  .object({
    dataDir: z.string().min(1),
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8443),
        tls: z.object({ cert: z.string(), key: z.string() }).strict().nullable().default(null),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8443, tls: null }),
    tenants: z.array(z.object({ id: z.string().regex(ID_REGEX), keysDir: z.string().min(1) }).strict()).default([]),
    vault: z
      .object({
        /** File keyring holding each tenant's key-encryption key (created 0600 when missing). */
        keyring: z.string().default('vault-keyring.json'),
      })
      .strict()
      .default({ keyring: 'vault-keyring.json' }),
    recheck: RecheckConfig.default(RecheckConfig.parse({})),
    retention: z
      .object({ sweepIntervalMs: z.number().int().min(1000).default(60_000), batchSize: z.number().int().min(1).max(100_000).default(5000) })
      .strict()
      .default({ sweepIntervalMs: 60_000, batchSize: 5000 }),
    ops: z.object({ port: z.number().int().min(0).max(65535).default(9466) }).strict().default({ port: 9466 }),
    log: LogConfig,
  })
  .strict();
export type CloudConfig = z.infer<typeof CloudConfig>;
export type RecheckConfig = z.infer<typeof RecheckConfig>;

export function resolvePaths(config: CloudConfig, baseDir: string): CloudConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const dataDir = abs(config.dataDir);
  return {
    ...config,
    dataDir,
    http: { ...config.http, tls: config.http.tls ? { cert: abs(config.http.tls.cert), key: abs(config.http.tls.key) } : null },
    tenants: config.tenants.map((t) => ({ ...t, keysDir: abs(t.keysDir) })),
    vault: { keyring: isAbsolute(config.vault.keyring) ? config.vault.keyring : resolve(dataDir, config.vault.keyring) },
  };
}
