import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { ConfigError, LogConfig, loadConfig } from './config.js';

const Schema = z
  .object({
    tenant: z.string().regex(/^[a-z0-9-]+$/),
    mqtt: z.object({ url: z.url(), keepalive: z.number().int().positive().default(30) }).strict(),
    log: LogConfig,
  })
  .strict();

function file(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cf-config-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, content);
  return path;
}

describe('loadConfig', () => {
  it('reads the file, applies defaults and resolves the base folder', () => {
    const path = file(JSON.stringify({ tenant: 'acme', mqtt: { url: 'mqtts://gw:8883' } }));
    const { config, baseDir } = loadConfig(Schema, { file: path, env: {} });
    expect(config).toEqual({ tenant: 'acme', mqtt: { url: 'mqtts://gw:8883', keepalive: 30 }, log: { level: 'info' } });
    expect(baseDir).toBe(join(path, '..'));
  });

  it('lets environment variables override nested keys, parsing JSON values', () => {
    const path = file(JSON.stringify({ tenant: 'acme', mqtt: { url: 'mqtts://gw:8883' } }));
    const { config } = loadConfig(Schema, {
      file: path,
      env: { CLOCKFACE_MQTT__KEEPALIVE: '10', CLOCKFACE_LOG__LEVEL: 'debug', OTHER: 'x' },
    });
    expect(config.mqtt.keepalive).toBe(10);
    expect(config.log.level).toBe('debug');
  });

  it('names the offending key, its source and why, without echoing the value', () => {
    const path = file(JSON.stringify({ tenant: 'ACME', mqtt: { url: 'mqtts://gw:8883', keepalive: -1 } }));
    let message = '';
    try {
      loadConfig(Schema, { file: path, env: { CLOCKFACE_MQTT__URL: 'not a url secret123' } });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain('tenant:');
    expect(message).toContain('mqtt.url:');
    expect(message).toContain('environment variable CLOCKFACE_MQTT__URL');
    expect(message).toContain('mqtt.keepalive:');
    expect(message).toContain(`file ${path}`);
    expect(message).not.toContain('secret123');
  });

  it('explains a missing file, invalid JSON and unknown keys', () => {
    expect(() => loadConfig(Schema, { file: '/nonexistent/clockface.json', env: {} })).toThrow(/does not exist/);
    expect(() => loadConfig(Schema, { file: file('{"tenant": '), env: {} })).toThrow(/not valid JSON/);
    expect(() => loadConfig(Schema, { file: file('[]'), env: {} })).toThrow(/top level must be an object/);
    const typo = file(JSON.stringify({ tenant: 'acme', mqtt: { url: 'mqtts://gw', keepAlive: 5 } }));
    expect(() => loadConfig(Schema, { file: typo, env: {} })).toThrow(/mqtt: Unrecognized key/);
  });
});
