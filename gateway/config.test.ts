import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../common/config.js';
import { loadGatewayConfig } from './config.js';
import { startGateway } from './gateway.js';
import { createLogger } from '../common/log.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-gw-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  tenant: 'acme',
  gateway: 'site-1',
  dataDir: 'data',
  mqtt: { host: '0.0.0.0', port: 8883, ca: 'ca.crt', cert: 'gateway.crt', key: 'gateway.key', wsPort: null },
  cloud: { url: 'https://cloud:8443', tokenFile: 'gateway.token' },
  ops: { port: 9465 },
  log: { level: 'info' },
};

function write(name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

describe('gateway config', () => {
  it('reads the contract config and resolves paths against the file', () => {
    const c = loadGatewayConfig(write('ok.json', base), {});
    expect(c.mqtt.ca).toBe(join(dir, 'ca.crt'));
    expect(c.cloud?.tokenFile).toBe(join(dir, 'gateway.token'));
    expect(c.durability).toBe('full');
    expect(c.limits.maxInflight).toBeGreaterThan(0);
  });

  it('names the bad key and where it came from', () => {
    expect(() => loadGatewayConfig(write('bad.json', { ...base, tenant: 'Acme Corp' }), {})).toThrow(/tenant: .*lowercase.*file/);
    expect(() => loadGatewayConfig(write('env.json', base), { CLOCKFACE_MQTT__PORT: '70000' })).toThrow(/mqtt.port.*CLOCKFACE_MQTT__PORT/);
    expect(() => loadGatewayConfig(join(dir, 'missing.json'), {})).toThrow(ConfigError);
  });

  it('refuses to start with a clear error when a certificate file is missing', async () => {
    const config = loadGatewayConfig(write('nofiles.json', { ...base, ops: { port: 0 }, mqtt: { ...base.mqtt, port: 0 } }), {});
    await expect(startGateway(config, { log: createLogger({ name: 'gateway-test', level: 'silent' }), ops: false })).rejects.toThrow(
      /cannot read the tenant CA certificate \(.*ca\.crt\): ENOENT/,
    );
  });
});
