import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run } from './main.js';
import { tempDir, writeTenantKeys } from './testing/fixtures.js';
import { freePort } from '../common/free-port.js';

/** The role entry point: bootstrap an owner key from the CLI, serve, answer, stop on SIGTERM. */
const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('clockface cloud', () => {
  it('creates an owner key, serves the API with it and stops cleanly on SIGTERM', async () => {
    const keys = writeTenantKeys(dir, 'acme');
    const [port, opsPort] = [await freePort(), await freePort()];
    const config = join(dir, 'cloud.json');
    writeFileSync(config, JSON.stringify({ dataDir: 'data', http: { host: '127.0.0.1', port, tls: null }, tenants: [{ id: 'acme', keysDir: keys.dir }], ops: { port: opsPort }, log: { level: 'silent' } }));

    const out = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await run(['api-key', 'create', '--config', config, '--tenant', 'acme', '--role', 'owner'])).toBe(0);
    const printed = JSON.parse(String(out.mock.calls[0]![0])) as { key: string; role: string };
    out.mockRestore();
    expect(printed.role).toBe('owner');

    const serving = run(['--config', config]);
    let health: Response | undefined;
    for (let i = 0; i < 100 && !health; i++) {
      health = await fetch(`http://127.0.0.1:${port}/v1/health`).catch(async () => {
        await new Promise((r) => setTimeout(r, 50));
        return undefined;
      });
    }
    expect(health?.status).toBe(200);
    const gw = await fetch(`http://127.0.0.1:${port}/v1/tenants/acme/gateways`, {
      method: 'POST',
      headers: { authorization: `Bearer ${printed.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ gateway: 'site-1' }),
    });
    expect(gw.status).toBe(201);
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    expect(metrics).toContain('clockface_cloud_recheck_pending');
    expect(metrics).toContain('clockface_cloud_ingest_events_total');
    process.emit('SIGTERM');
    expect(await serving).toBe(0);
  });

  it('refuses bad arguments and a tenant without keys with clear errors', async () => {
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ dataDir: 'data2', tenants: [{ id: 'acme', keysDir: 'nowhere' }] }));
    await expect(run(['api-key', 'create', '--config', config, '--tenant', 'acme', '--role', 'root'])).rejects.toThrow(/--role must be one of/);
    await expect(run(['api-key', 'create', '--config', config, '--tenant', 'acme', '--role', 'owner'])).rejects.toThrow(/tenant acme: cannot read .*nowhere/);
    await expect(run(['--config', join(dir, 'missing.json')])).rejects.toThrow(/does not exist/);
  });
});
