import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectUnix } from 'node:net';
import { connect as connectTls } from 'node:tls';
import mqtt from 'mqtt';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, startRole, type RoleProcess } from '../demo/processes.js';
import { freePort } from '../common/free-port.js';
import { clockface } from './support/cli.js';

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

/** systemd's environment for a unit: watchdog on, plus the overrides the installer would set. */
const unitEnv = (extra: Record<string, string>) => ({ WATCHDOG_USEC: '1000000', CLOCKFACE_LOG__LEVEL: 'info', ...extra });

async function startDevice(id: string): Promise<RoleProcess> {
  const p = await startRole({
    name: id,
    args: ['device', '--config', join(dir, 'devices', id, 'config.json')],
    logDir: join(work, 'logs'),
    env: unitEnv({
      CLOCKFACE_DATA_DIR: join(work, 'data', id),
      CLOCKFACE_MQTT__URL: `mqtts://localhost:${gatewayPort}`,
      CLOCKFACE_OPS__PORT: '0',
      // The simulated reader is fed over a socket, so the test can badge at the running process.
      CLOCKFACE_HARDWARE__READER: JSON.stringify({ driver: 'simulator', protocol: 'line', lineFormat: 'decimal', repeatWindowMs: 0, simulatedFeed: readerFeed(id) }),
    }),
  });
  running.set(id, p);
  return p;
}

const readerFeed = (id: string) => join(work, `${id}.reader.sock`);

/** Presents a card at a running terminal's reader; its punch is what the terminal logs next. */
function badge(id: string, card: string): Promise<void> {
  return new Promise((done, fail) => {
    const socket = connectUnix(readerFeed(id), () => socket.end(`${card}\r\n`, () => done()));
    socket.once('error', fail);
  });
}

/** A role's JSON log lines (pino), in order. */
function logOf(name: string): Array<Record<string, unknown>> {
  return readFileSync(running.get(name)!.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const punchIds = (id: string) => logOf(id).filter((l) => l.msg === 'punch').map((l) => l.eventId as string);

async function api(path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${cloudUrl}${path}`, { headers: { authorization: `Bearer ${readFileSync(ownerKeyFile, 'utf8').trim()}` } });
  return (await res.json()) as Record<string, unknown>;
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
/** Serials as the gateway logs them: lowercase hex without leading zeros. */
const normal = (serial: string) => serial.toLowerCase().replace(/^0+(?=.)/, '');

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

  it('rotation: the terminal reloads its new certificate on SIGHUP, the cloud never sees it offline, no punch is lost or doubled, then the old certificate is refused', async () => {
    const bundle = join(dir, 'devices', 'door-1');
    const oldCreds = { cert: readFileSync(join(bundle, 'device.crt')), key: readFileSync(join(bundle, 'device.key')) };
    const before = serialOf(join(bundle, 'device.crt'));
    const gatewayLogAtStart = logOf('gateway').length;
    const door = running.get('door-1')!;

    await badge('door-1', '1001');
    await until('the punch before the switch', async () => punchIds('door-1').length === 1);
    // Overlap 0: the old certificate stays valid only until the next "revoke --due".
    const rotated = JSON.parse(clockface(['provision', 'rotate', '--out', dir, '--device', 'door-1', '--overlap-hours', '0', '--cloud', cloudUrl, '--api-key-file', ownerKeyFile])) as { serial: string };
    const after = serialOf(join(bundle, 'device.crt'));
    expect(after).not.toBe(before);
    expect(rotated.serial).toBe(normal(after));
    // The bundle folder the unit runs from now holds the new key (what install.sh copies in); reload it.
    door.child.kill('SIGHUP');
    await badge('door-1', '1002');
    await until('door-1 connected with its new certificate', async () =>
      logOf('gateway').slice(gatewayLogAtStart).some((l) => l.msg === 'client connected' && l.session === 'acme/device/door-1' && l.serial === normal(after)),
    );
    await until('door-1 says it switched', async () => logOf('door-1').some((l) => l.msg === 'link switched to the reloaded credentials'));
    await badge('door-1', '1003');
    await until('three punches at the terminal', async () => punchIds('door-1').length === 3);
    const ids = punchIds('door-1');
    await until('every punch at the cloud', async () => {
      const punches = ((await api('/v1/tenants/acme/punches?limit=5000')).punches ?? []) as Array<{ eventId: string }>;
      return ids.every((id) => punches.some((p) => p.eventId === id));
    });
    const punches = ((await api('/v1/tenants/acme/punches?limit=5000')).punches ?? []) as Array<{ eventId: string }>;
    for (const id of ids) expect(punches.filter((p) => p.eventId === id)).toHaveLength(1);

    // The process never restarted, and nothing "offline" for door-1 went to the cloud.
    expect(door.child.exitCode).toBeNull();
    expect((await presence())['door-1']).toBe('online');
    const reported = logOf('gateway').slice(gatewayLogAtStart).filter((l) => l.msg === 'presence queued for the cloud' && l.device === 'door-1');
    expect(reported.map((l) => l.state)).not.toContain('offline');
    // The cloud records the new serial (rotate --cloud).
    const devices = (await api('/v1/tenants/acme/devices')).devices as Array<{ device: string; certSerial: string }>;
    expect(devices.find((d) => d.device === 'door-1')?.certSerial).toBe(normal(after));

    // The overlap ends: the old certificate goes on the CRL, the cloud tells the gateway.
    const revoked = JSON.parse(clockface(['provision', 'revoke', '--out', dir, '--due', '--cloud', cloudUrl, '--api-key-file', ownerKeyFile])) as { newlyRevoked: string[]; refused: string[] };
    expect(revoked.newlyRevoked).toEqual([normal(before)]);
    await until('the gateway holds the new revocation list', async () =>
      logOf('gateway').some((l) => l.msg === 'revocation list applied' && l.revoked === revoked.refused.length),
    );
    const withOld = await mqtt
      .connectAsync(`mqtts://localhost:${gatewayPort}`, { ca: readFileSync(join(bundle, 'ca.crt')), ...oldCreds, clientId: 'old', reconnectPeriod: 0, protocolVersion: 4, connectTimeout: 10_000 }, false)
      .then(
        async (c) => {
          await c.endAsync(true);
          return 'connected';
        },
        (err: Error) => err.message,
      );
    expect(withOld).not.toBe('connected');
    // The refusal names the reason (the log line may reach the file a moment after the CONNACK).
    await until('the gateway logs the refusal as a revocation', async () => logOf('gateway').some((l) => l.msg === 'connection refused' && l.reason === 'revoked'));
    expect((await presence())['door-1']).toBe('online');
  }, 120_000);

  it("the gateway's own certificate rotates on SIGHUP while its terminals stay connected", async () => {
    const gatewayBundle = join(dir, 'gateways', 'site-1');
    const before = serialOf(join(gatewayBundle, 'gateway.crt'));
    const gatewayLogAtStart = logOf('gateway').length;
    clockface(['provision', 'rotate', '--out', dir, '--gateway', 'site-1', '--overlap-hours', '0']);
    const after = serialOf(join(gatewayBundle, 'gateway.crt'));
    expect(after).not.toBe(before);
    running.get('gateway')!.child.kill('SIGHUP');
    await until('the gateway reloaded', async () => logOf('gateway').slice(gatewayLogAtStart).some((l) => l.msg === 'server key, certificate and CA reloaded for new connections'));
    // A new handshake gets the new certificate...
    const deviceBundle = join(dir, 'devices', 'door-1');
    const served = await new Promise<string>((done, fail) => {
      const socket = connectTls({ host: '127.0.0.1', port: gatewayPort, ca: readFileSync(join(deviceBundle, 'ca.crt')), cert: readFileSync(join(deviceBundle, 'device.crt')), key: readFileSync(join(deviceBundle, 'device.key')), servername: 'localhost' }, () => {
        done(socket.getPeerCertificate().serialNumber);
        socket.end();
      });
      socket.once('error', fail);
    });
    expect(normal(served)).toBe(normal(after));
    // ...and the terminals kept theirs: no disconnect, still online at the cloud.
    expect(logOf('gateway').slice(gatewayLogAtStart).filter((l) => l.msg === 'client disconnected')).toEqual([]);
    const p = await presence();
    expect([p['door-1'], p['clock-1']]).toEqual(['online', 'online']);
  }, 60_000);

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
