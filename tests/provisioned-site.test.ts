import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, startRole, type RoleProcess } from '../demo/processes.js';

/*
 * A site as facilities staff set it up, with nothing but the `clockface` command and the
 * bundles it writes: provision a tenant, export its keys to the cloud, register a gateway and
 * two terminals with the cloud, then run cloud, gateway and terminals as real processes (each
 * from its own bundle, as systemd would: NOTIFY_SOCKET and WATCHDOG_USEC set). Only the
 * machine-specific bits a unit file or installer sets differ from the bundle: ports and data
 * folders (environment overrides). The cloud's view of each terminal's presence (reported by
 * the gateway) is the proof of a working mTLS link.
 */
const root = resolve(import.meta.dirname, '..');
let work: string;
let dir: string;
let cloudUrl: string;
let ownerKeyFile: string;
let gatewayPort: number;
const running = new Map<string, RoleProcess>();

function clockface(args: string[]): string {
  return execFileSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** systemd's environment for a unit: watchdog on, plus the overrides the installer would set. */
const unitEnv = (extra: Record<string, string>) => ({ WATCHDOG_USEC: '1000000', CLOCKFACE_LOG__LEVEL: 'info', ...extra });

async function startDevice(id: string): Promise<RoleProcess> {
  const p = await startRole({
    name: id,
    args: ['device', '--config', join(dir, 'devices', id, 'config.json')],
    logDir: join(work, 'logs'),
    env: unitEnv({ CLOCKFACE_DATA_DIR: join(work, 'data', id), CLOCKFACE_MQTT__URL: `mqtts://localhost:${gatewayPort}`, CLOCKFACE_OPS__PORT: '0' }),
  });
  running.set(id, p);
  return p;
}

async function presence(): Promise<Record<string, string | null>> {
  const res = await fetch(`${cloudUrl}/v1/tenants/acme/devices`, { headers: { authorization: `Bearer ${readFileSync(ownerKeyFile, 'utf8').trim()}` } });
  const { devices } = (await res.json()) as { devices: Array<{ device: string; presence: string | null }> };
  return Object.fromEntries(devices.map((d) => [d.device, d.presence]));
}

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const serialOf = (certFile: string) => new X509Certificate(readFileSync(certFile)).serialNumber;

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'cf-site-'));
  dir = join(work, 'acme');
  clockface(['provision', 'tenant', 'init', '--out', dir, '--tenant', 'acme']);
  const keysDir = join(dir, 'cloud', 'acme');
  clockface(['provision', 'tenant', 'export-cloud', '--out', dir]);

  const cloudPort = await freePort();
  cloudUrl = `http://127.0.0.1:${cloudPort}`;
  const cloudConfig = join(work, 'cloud.json');
  writeFileSync(cloudConfig, JSON.stringify({ dataDir: join(work, 'data', 'cloud'), http: { host: '127.0.0.1', port: cloudPort, tls: null }, tenants: [{ id: 'acme', keysDir }], ops: { port: 0 } }));
  const owner = JSON.parse(clockface(['cloud', 'api-key', 'create', '--config', cloudConfig, '--tenant', 'acme', '--role', 'owner'])) as { key: string };
  ownerKeyFile = join(work, 'owner.key');
  writeFileSync(ownerKeyFile, owner.key, { mode: 0o600 });
  running.set('cloud', await startRole({ name: 'cloud', args: ['cloud', '--config', cloudConfig], logDir: join(work, 'logs'), env: unitEnv({}) }));

  const cloud = ['--cloud', cloudUrl, '--api-key-file', ownerKeyFile];
  clockface(['provision', 'gateway', 'add', '--out', dir, '--gateway', 'site-1', '--host', 'localhost', '--alt-name', '127.0.0.1', ...cloud]);
  for (const [id, mode] of [['door-1', 'access'], ['clock-1', 'timekeeping']] as const) {
    clockface(['provision', 'device', 'add', '--out', dir, '--device', id, '--gateway', 'site-1', '--profile', 'simulator', '--mode', mode, ...cloud]);
  }

  gatewayPort = await freePort();
  running.set(
    'gateway',
    await startRole({
      name: 'gateway',
      args: ['gateway', '--config', join(dir, 'gateways', 'site-1', 'config.json')],
      logDir: join(work, 'logs'),
      env: unitEnv({
        CLOCKFACE_DATA_DIR: join(work, 'data', 'gateway'),
        CLOCKFACE_MQTT__HOST: '127.0.0.1',
        CLOCKFACE_MQTT__PORT: String(gatewayPort),
        CLOCKFACE_OPS__PORT: '0',
        // The cloud's revocation list is fetched every minute in production; quicker here.
        CLOCKFACE_FORWARDER__REVOCATION_REFRESH_MS: '300',
      }),
    }),
  );
  await startDevice('door-1');
  await startDevice('clock-1');
}, 180_000);

afterAll(async () => {
  for (const p of [...running.values()].reverse()) await p.stop();
  if (work && !process.env.CF_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('a site from its bundles', () => {
  it('every unit runs as a systemd service would: READY=1, then WATCHDOG=1 pings', async () => {
    await until('watchdog pings from every unit', async () => [...running.values()].every((p) => p.notifications.some((n) => n.includes('WATCHDOG=1'))));
    for (const p of running.values()) expect(p.notifications.some((n) => n.split('\n').includes('READY=1')), p.name).toBe(true);
  }, 90_000);

  it('both terminals connect to the gateway over mTLS; the cloud sees them online', async () => {
    await until('both terminals online at the cloud', async () => {
      const p = await presence();
      return p['door-1'] === 'online' && p['clock-1'] === 'online';
    });
  }, 90_000);

  it('rotation: the running terminal stays connected through the overlap; restarted with the new bundle it is back at once', async () => {
    const certFile = join(dir, 'devices', 'door-1', 'device.crt');
    const before = serialOf(certFile);
    clockface(['provision', 'rotate', '--out', dir, '--device', 'door-1', '--overlap-hours', '2', '--cloud', cloudUrl, '--api-key-file', ownerKeyFile]);
    expect(serialOf(certFile)).not.toBe(before);
    // The old certificate is not revoked during the overlap: the unit keeps its link.
    await new Promise((r) => setTimeout(r, 1000)); // a few revocation refreshes at the gateway
    expect((await presence())['door-1']).toBe('online');
    expect(running.get('door-1')!.child.exitCode).toBeNull();
    // The installer restarts the unit with the new bundle; it reconnects with the new certificate.
    await running.get('door-1')!.stop();
    await until('door-1 offline after its restart began', async () => (await presence())['door-1'] === 'offline');
    await startDevice('door-1');
    await until('door-1 online with its new certificate', async () => (await presence())['door-1'] === 'online');
  }, 90_000);

  it('a revoked terminal is cut off and refused; the other keeps working', async () => {
    clockface(['provision', 'revoke', '--out', dir, '--device', 'clock-1', '--cloud', cloudUrl, '--api-key-file', ownerKeyFile]);
    await until('clock-1 offline at the cloud', async () => (await presence())['clock-1'] === 'offline');
    // It keeps retrying and keeps being refused.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await presence())['clock-1']).toBe('offline');
    expect((await presence())['door-1']).toBe('online');
    expect(readFileSync(running.get('gateway')!.logFile, 'utf8')).toMatch(/revoked/i);
  }, 90_000);

  it('refuses bad names and paths that would leave the output folder', () => {
    for (const args of [
      ['device', 'add', '--out', dir, '--device', '../escape', '--gateway', 'site-1', '--profile', 'simulator', '--mode', 'access'],
      ['device', 'add', '--out', dir, '--device', 'Door 1', '--gateway', 'site-1', '--profile', 'simulator', '--mode', 'access'],
      ['gateway', 'add', '--out', dir, '--gateway', 'a/b', '--host', 'localhost'],
      ['tenant', 'init', '--out', join(work, 'x'), '--tenant', 'acme#'],
    ]) {
      expect(() => clockface(['provision', ...args]), args.join(' ')).toThrow();
    }
  });
});
