import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { Aedes, type Client } from 'aedes';
import { connect as mqttConnect, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HardwareConfig } from '../protocol/hardware-config.js';
import { certificateIdentity, normalizeSerial } from '../protocol/cert-identity.js';
import { keyPairFromPem, publicKeyRef } from '../protocol/index.js';
import { extractTarGz } from './archive.js';
import { OutputFolder } from './output.js';
import { loadTenant } from './tenant.js';
import { provision } from './test-support.js';
import { revoke } from './units.js';

/**
 * End to end through the `clockface provision` command: a tenant, a gateway and two devices
 * in a temp folder; then only the bundles are used, as the units would use them: a TLS server
 * configured from the gateway bundle's config.json, clients from each device bundle's.
 */
let root: string;
let dir: string;
const transcript: string[] = [];

async function ok(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await provision(argv, env);
  transcript.push(r.stdout, r.stderr);
  if (r.code !== 0) throw new Error(`provision ${argv.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cf-prov-'));
  dir = join(root, 'acme');
  await ok(['tenant', 'init', '--out', dir, '--tenant', 'acme']);
  await ok(['gateway', 'add', '--out', dir, '--gateway', 'site-1', '--host', 'localhost', '--alt-name', '127.0.0.1']);
  await ok(['device', 'add', '--out', dir, '--device', 'door-1', '--gateway', 'site-1', '--profile', 'pi-standard', '--mode', 'access']);
  await ok(['device', 'add', '--out', dir, '--device', 'clock-1', '--gateway', 'site-1', '--profile', 'simulator', '--mode', 'timekeeping']);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const mode = (p: string) => statSync(p).mode & 0o777;

describe('provisioned tenant, gateway and devices', () => {
  it('writes the tenant keyring of the contract, private keys 0600', () => {
    const t = join(dir, 'tenant');
    expect(readdirSync(t).sort()).toEqual(
      ['admin-signing.key', 'admin-signing.pub', 'ca.crt', 'ca.key', 'card-pepper.key', 'cloud-sealing.key', 'cloud-sealing.pub', 'inventory.json'].sort(),
    );
    for (const f of ['ca.key', 'admin-signing.key', 'cloud-sealing.key', 'card-pepper.key']) expect(mode(join(t, f)), f).toBe(0o600);
    const admin = keyPairFromPem('ed25519', readFileSync(join(t, 'admin-signing.key')));
    expect(admin.publicRaw.toString('base64')).toBe(readFileSync(join(t, 'admin-signing.pub'), 'utf8').trim());
    const sealing = keyPairFromPem('x25519', readFileSync(join(t, 'cloud-sealing.key')));
    expect(publicKeyRef('x25519', readFileSync(join(t, 'cloud-sealing.pub'), 'utf8').trim()).keyId).toBe(sealing.keyId);
    expect(Buffer.from(readFileSync(join(t, 'card-pepper.key'), 'utf8').trim(), 'base64')).toHaveLength(32);
  });

  it('exports the keys the cloud needs, without the CA key', async () => {
    const r = await ok(['tenant', 'export-cloud', '--out', dir]);
    const keysDir = r.json.keysDir as string;
    expect(keysDir).toBe(join(dir, 'cloud', 'acme'));
    expect(readdirSync(keysDir).sort()).toEqual(['admin-signing.key', 'admin-signing.pub', 'ca.crt', 'card-pepper.key', 'cloud-sealing.key', 'cloud-sealing.pub']);
    for (const f of ['admin-signing.key', 'cloud-sealing.key', 'card-pepper.key']) {
      expect(mode(join(keysDir, f)), f).toBe(0o600);
      expect(readFileSync(join(keysDir, f)).equals(readFileSync(join(dir, 'tenant', f)))).toBe(true);
    }
  });

  it('never prints private key material', () => {
    const all = transcript.join('\n');
    expect(all).not.toMatch(/PRIVATE KEY/);
    expect(all).not.toContain(readFileSync(join(dir, 'tenant', 'card-pepper.key'), 'utf8').trim());
    expect(all).toContain('wrote tenant/ca.key (0600)');
  });

  it('gives each device a bundle holding exactly what it needs, as a folder and a .tar.gz', async () => {
    const b = join(dir, 'devices', 'door-1');
    expect(readdirSync(b).sort()).toEqual(
      ['admin-signing.pub', 'ca.crt', 'card-pepper.key', 'cloud-sealing.pub', 'config.json', 'device-sealing.key', 'device-signing.key', 'device.crt', 'device.key'].sort(),
    );
    for (const f of ['device.key', 'device-signing.key', 'device-sealing.key', 'card-pepper.key']) expect(mode(join(b, f)), f).toBe(0o600);
    const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ tenant: 'acme', device: 'door-1', mode: 'access', mqtt: { url: 'mqtts://localhost:8883' } });
    // The pin map and reader come from the named profile and pass the terminal's own schema.
    const hw = HardwareConfig.parse(config.hardware);
    expect(hw.pins.relay).toBe(17);
    expect(hw.reader).toMatchObject({ driver: 'serial', path: '/dev/serial0' });
    expect(readFileSync(join(b, 'cloud-sealing.pub'), 'utf8')).toBe(readFileSync(join(dir, 'tenant', 'cloud-sealing.pub'), 'utf8'));
    const cert = new X509Certificate(readFileSync(join(b, 'device.crt')));
    expect(certificateIdentity(cert)).toMatchObject({ tenant: 'acme', role: 'device', id: 'door-1' });
    expect(cert.subject).toContain('CN=door-1');

    // The archive unpacks to the same files with the same modes.
    const unpacked = join(root, 'unpacked');
    await extractTarGz(readFileSync(join(dir, 'devices', 'door-1.tar.gz')), unpacked);
    expect(mode(join(dir, 'devices', 'door-1.tar.gz'))).toBe(0o600);
    for (const f of readdirSync(b)) {
      expect(readFileSync(join(unpacked, 'door-1', f)).equals(readFileSync(join(b, f))), f).toBe(true);
      expect(mode(join(unpacked, 'door-1', f)), f).toBe(mode(join(b, f)));
    }
  });

  it('check proves each bundle complete and usable, and names what is wrong with a broken one', async () => {
    for (const [b, id] of [['devices/door-1', 'door-1'], ['devices/clock-1', 'clock-1'], ['gateways/site-1', 'site-1']] as const) {
      const r = await ok(['check', '--bundle', join(dir, b)]);
      expect(r.json).toMatchObject({ tenant: 'acme', id });
    }
    const broken = join(root, 'broken');
    cpSync(join(dir, 'devices', 'door-1'), broken, { recursive: true });
    // Another device's key in door-1's bundle.
    copyFileSync(join(dir, 'devices', 'clock-1', 'device.key'), join(broken, 'device.key'));
    expect((await provision(['check', '--bundle', broken])).stderr).toMatch(/private key does not belong to the certificate/);
    copyFileSync(join(dir, 'devices', 'door-1', 'device.key'), join(broken, 'device.key'));
    chmodSync(join(broken, 'device.key'), 0o644);
    expect((await provision(['check', '--bundle', broken])).stderr).toMatch(/device\.key must be readable by its owner only/);
    chmodSync(join(broken, 'device.key'), 0o600);
    rmSync(join(broken, 'card-pepper.key'));
    const missing = await provision(['check', '--bundle', broken]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/bundle is incomplete: card-pepper\.key \(keys\.cardPepper\) is missing/);
    // A certificate from another tenant's CA.
    const other = join(root, 'other');
    await ok(['tenant', 'init', '--out', other, '--tenant', 'acme']);
    writeFileSync(join(broken, 'card-pepper.key'), readFileSync(join(dir, 'devices', 'door-1', 'card-pepper.key')), { mode: 0o600 });
    copyFileSync(join(other, 'tenant', 'ca.crt'), join(broken, 'ca.crt'));
    expect((await provision(['check', '--bundle', broken])).stderr).toMatch(/not signed by the bundled CA/);
  });

  it('gives the gateway a bundle with its server certificate for the address devices dial', () => {
    const b = join(dir, 'gateways', 'site-1');
    expect(readdirSync(b).sort()).toEqual(['ca.crt', 'config.json', 'gateway.crt', 'gateway.key']);
    expect(mode(join(b, 'gateway.key'))).toBe(0o600);
    const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ tenant: 'acme', gateway: 'site-1', mqtt: { port: 8883, ca: 'ca.crt' }, cloud: null });
    const cert = new X509Certificate(readFileSync(join(b, 'gateway.crt')));
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});

// ---- mTLS from the bundles alone -------------------------------------------------------------

/** A TLS server set up only from the gateway bundle's config.json (paths relative to it), plus an optional CRL. */
async function gatewayServer(bundle: string, crlFile?: string): Promise<{ server: Server; port: number; accepted: string[]; refused: string[] }> {
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  const file = (rel: string) => readFileSync(resolve(bundle, rel));
  const accepted: string[] = [];
  const refused: string[] = [];
  const server = createServer(
    {
      key: file(config.mqtt.key),
      cert: file(config.mqtt.cert),
      ca: file(config.mqtt.ca),
      requestCert: true,
      rejectUnauthorized: true,
      ...(crlFile ? { crl: readFileSync(crlFile) } : {}),
    },
    (s: TLSSocket) => {
      const peer = s.getPeerX509Certificate();
      const id = peer ? certificateIdentity(peer) : null;
      accepted.push(id ? `${id.role}:${id.id}` : 'anonymous');
      // An echo: lets a test prove a connection stays usable.
      s.on('data', (d) => s.write(d));
      s.on('error', () => {});
    },
  );
  server.on('tlsClientError', (err) => refused.push((err as NodeJS.ErrnoException).code ?? err.message));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, accepted, refused };
}

/** A client set up only from a device bundle's config.json, dialling the gateway it names. */
async function deviceConnect(bundle: string, port: number): Promise<TLSSocket> {
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  const url = new URL(config.mqtt.url);
  const file = (rel: string) => readFileSync(resolve(bundle, rel));
  const socket = connect({ host: '127.0.0.1', port, servername: url.hostname, ca: file(config.mqtt.ca), cert: file(config.mqtt.cert), key: file(config.mqtt.key) });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  return socket;
}

/** Round trip through the server: resolves with true only if the connection really carries data. */
async function echoes(socket: TLSSocket): Promise<boolean> {
  const probe = `ping-${Math.random()}`;
  return new Promise((resolveEcho) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes(probe)) done(true);
    };
    const done = (v: boolean) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      resolveEcho(v);
    };
    const onClose = () => done(false);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(probe);
  });
}

describe('units connect over mTLS with their bundles', () => {
  it('both devices connect to the gateway and are known by the identity in their certificates', async () => {
    const gw = await gatewayServer(join(dir, 'gateways', 'site-1'));
    try {
      for (const d of ['door-1', 'clock-1']) {
        const s = await deviceConnect(join(dir, 'devices', d), gw.port);
        expect(await echoes(s)).toBe(true);
        s.destroy();
      }
      expect(gw.accepted).toEqual(['device:door-1', 'device:clock-1']);
    } finally {
      gw.server.close();
    }
  });

  it('refuses a revoked device, keeps the others', async () => {
    const r = await ok(['revoke', '--out', dir, '--device', 'clock-1']);
    expect(r.json.newlyRevoked).toHaveLength(1);
    const crl = join(dir, 'tenant', 'crl.pem');
    expect(readFileSync(crl, 'utf8')).toMatch(/BEGIN X509 CRL/);
    const gw = await gatewayServer(join(dir, 'gateways', 'site-1'), crl);
    try {
      await expect(deviceConnect(join(dir, 'devices', 'clock-1'), gw.port).then(echoes)).resolves.toBe(false);
      // TLS 1.3: the client finishes first; the server then checks the CRL and drops it.
      expect(gw.refused.length).toBeGreaterThan(0);
      const door = await deviceConnect(join(dir, 'devices', 'door-1'), gw.port);
      expect(await echoes(door)).toBe(true);
      door.destroy();
      expect(gw.accepted).toEqual(['device:door-1']);
    } finally {
      gw.server.close();
    }
  });

  it('rotation keeps a device connected across the switch; the old certificate stops at the end of the overlap', async () => {
    const bundle = join(dir, 'devices', 'door-1');
    const oldCopy = join(root, 'door-1-before-rotation');
    mkdirSync(oldCopy);
    for (const f of readdirSync(bundle)) copyFileSync(join(bundle, f), join(oldCopy, f));
    const oldSerial = normalizeSerial(new X509Certificate(readFileSync(join(bundle, 'device.crt'))).serialNumber);

    const crl = join(dir, 'tenant', 'crl.pem');
    const gw = await gatewayServer(join(dir, 'gateways', 'site-1'), crl);
    try {
      const before = await deviceConnect(oldCopy, gw.port);
      expect(await echoes(before)).toBe(true);

      const r = await ok(['rotate', '--out', dir, '--device', 'door-1', '--overlap-hours', '2']);
      expect(r.json.retiring).toEqual([oldSerial]);
      const newSerial = normalizeSerial(new X509Certificate(readFileSync(join(bundle, 'device.crt'))).serialNumber);
      expect(newSerial).not.toBe(oldSerial);
      expect(mode(join(bundle, 'device.key'))).toBe(0o600);
      // The signing and sealing keys stay: events in flight still verify.
      expect(readFileSync(join(bundle, 'device-signing.key')).equals(readFileSync(join(oldCopy, 'device-signing.key')))).toBe(true);

      // During the overlap: the running connection carries on, the new bundle connects,
      // and the old certificate still connects (a unit not yet updated keeps working).
      const after = await deviceConnect(bundle, gw.port);
      expect(await echoes(after)).toBe(true);
      expect(await echoes(before)).toBe(true);
      const oldAgain = await deviceConnect(oldCopy, gw.port);
      expect(await echoes(oldAgain)).toBe(true);
      oldAgain.destroy();

      // Not due yet: --due now changes nothing.
      const notYet = await ok(['revoke', '--out', dir, '--due']);
      expect(notYet.json.newlyRevoked).toEqual([]);

      // Three hours on, the overlap has ended: the old serial goes into the CRL.
      const out = new OutputFolder(dir);
      const due = await revoke(out, loadTenant(dir), { due: true }, { now: new Date(Date.now() + 3 * 3_600_000) });
      expect(due.newlyRevoked).toEqual([oldSerial]);
      gw.server.setSecureContext({
        key: readFileSync(join(dir, 'gateways', 'site-1', 'gateway.key')),
        cert: readFileSync(join(dir, 'gateways', 'site-1', 'gateway.crt')),
        ca: readFileSync(join(dir, 'gateways', 'site-1', 'ca.crt')),
        crl: readFileSync(crl),
      });
      await expect(deviceConnect(oldCopy, gw.port).then(echoes)).resolves.toBe(false);
      const fresh = await deviceConnect(bundle, gw.port);
      expect(await echoes(fresh)).toBe(true);
      for (const s of [before, after, fresh]) s.destroy();
    } finally {
      gw.server.close();
    }
  });
});

describe('units speak MQTT over mTLS with their bundles (aedes, as the gateway runs it)', () => {
  it('a device publishes with QoS 1 under the identity of its certificate; the revoked one cannot connect', async () => {
    const bundle = join(dir, 'gateways', 'site-1');
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    const file = (rel: string) => readFileSync(resolve(bundle, rel));
    const broker = new Aedes({
      // The gateway's rule: the client id must be the device named in the verified certificate.
      authenticate: (client: Client, _u, _p, done) => {
        const peer = (client.conn as unknown as TLSSocket).getPeerX509Certificate?.();
        const id = peer ? certificateIdentity(peer) : null;
        done(null, id !== null && id.role === 'device' && id.id === client.id && id.tenant === config.tenant);
      },
    });
    await broker.listen();
    const received: string[] = [];
    broker.on('publish', (packet, client) => {
      if (client) received.push(`${client.id} ${packet.topic} ${packet.payload.toString()}`);
    });
    const server = createServer(
      { key: file(config.mqtt.key), cert: file(config.mqtt.cert), ca: file(config.mqtt.ca), crl: readFileSync(join(dir, 'tenant', 'crl.pem')), requestCert: true, rejectUnauthorized: true },
      (socket) => {
        socket.on('error', () => {});
        broker.handle(socket);
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const dial = (device: string) => {
      const b = join(dir, 'devices', device);
      const dc = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
      const f = (rel: string) => readFileSync(resolve(b, rel));
      const client = mqttConnect(`mqtts://127.0.0.1:${port}`, {
        servername: new URL(dc.mqtt.url).hostname,
        ca: f(dc.mqtt.ca),
        cert: f(dc.mqtt.cert),
        key: f(dc.mqtt.key),
        clientId: dc.device,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
      // Settles on CONNACK, or on the connection ending first (a refused certificate under
      // TLS 1.3 ends it after the client thinks the handshake is done, without an error).
      return new Promise<MqttClient>((resolveClient, reject) => {
        client.once('connect', () => resolveClient(client));
        client.once('error', (err) => reject(err));
        client.once('close', () => reject(new Error(`${device}: connection closed before CONNACK`)));
      });
    };
    try {
      const door = await dial('door-1');
      await door.publishAsync('cf/v1/acme/door-1/status', '{"state":"online"}', { qos: 1 });
      expect(received).toContain('door-1 cf/v1/acme/door-1/status {"state":"online"}');
      await door.endAsync();
      await expect(dial('clock-1')).rejects.toThrow(/clock-1: connection closed before CONNACK|revoked/);
    } finally {
      server.close();
      await new Promise<void>((r) => broker.close(() => r()));
    }
  });
});

describe('safe by construction', () => {
  it('refuses to overwrite existing keys without --force, and leaves them untouched', async () => {
    const caKey = readFileSync(join(dir, 'tenant', 'ca.key'));
    const again = await provision(['tenant', 'init', '--out', dir, '--tenant', 'acme']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to overwrite existing .*ca\.key.*--force/);
    expect(readFileSync(join(dir, 'tenant', 'ca.key')).equals(caKey)).toBe(true);
    const dup = await provision(['device', 'add', '--out', dir, '--device', 'door-1', '--gateway', 'site-1', '--profile', 'simulator']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/device door-1 already exists/);
  });

  it('a unit replaced with --force gets new keys, and its old certificate is retired into the CRL', async () => {
    const scratch = join(root, 'replace');
    await ok(['tenant', 'init', '--out', scratch, '--tenant', 'eps']);
    await ok(['gateway', 'add', '--out', scratch, '--gateway', 'gw', '--host', 'gw.local']);
    await ok(['device', 'add', '--out', scratch, '--device', 'd1', '--gateway', 'gw', '--profile', 'simulator']);
    const oldSerial = normalizeSerial(new X509Certificate(readFileSync(join(scratch, 'devices', 'd1', 'device.crt'))).serialNumber);
    const again = await ok(['device', 'add', '--out', scratch, '--device', 'd1', '--gateway', 'gw', '--profile', 'simulator', '--force']);
    expect(again.json.replaced).toEqual([oldSerial]);
    expect(again.stderr).toMatch(/retired; run "provision revoke --due"/);
    const due = await ok(['revoke', '--out', scratch, '--due']);
    expect(due.json.newlyRevoked).toEqual([oldSerial]);
    expect(due.json.refused).toEqual([oldSerial]);
  });

  it('--force replaces a tenant on purpose', async () => {
    const scratch = join(root, 'forced');
    await ok(['tenant', 'init', '--out', scratch, '--tenant', 'beta']);
    const before = readFileSync(join(scratch, 'tenant', 'ca.key'));
    await ok(['tenant', 'init', '--out', scratch, '--tenant', 'beta', '--force']);
    expect(readFileSync(join(scratch, 'tenant', 'ca.key')).equals(before)).toBe(false);
    expect(mode(join(scratch, 'tenant', 'ca.key'))).toBe(0o600);
  });

  it('validates every name', async () => {
    const cases: string[][] = [
      ['tenant', 'init', '--out', join(root, 'bad1'), '--tenant', 'Acme Corp'],
      ['gateway', 'add', '--out', dir, '--gateway', '../site', '--host', 'localhost'],
      ['device', 'add', '--out', dir, '--device', 'door/2', '--gateway', 'site-1', '--profile', 'simulator'],
      ['device', 'add', '--out', dir, '--device', 'door-+', '--gateway', 'site-1', '--profile', 'simulator'],
      ['device', 'add', '--out', dir, '--device', 'door-3', '--gateway', 'site-1', '--profile', 'no-such-board'],
      ['device', 'add', '--out', dir, '--device', 'door-3', '--gateway', 'nowhere', '--profile', 'simulator'],
      ['gateway', 'add', '--out', dir, '--gateway', 'site-2', '--host', 'bad host;rm'],
    ];
    for (const argv of cases) {
      const r = await provision(argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr, argv.join(' ')).toMatch(/must be|unknown hardware profile|not provisioned|not a host name/);
    }
    expect(existsSync(join(root, 'bad1'))).toBe(false);
    expect(existsSync(join(dir, 'devices', 'door-3'))).toBe(false);
    expect(readdirSync(join(dir, 'devices')).sort()).toEqual(['clock-1', 'clock-1.tar.gz', 'door-1', 'door-1.tar.gz']);
  });

  it('refuses output paths outside the target folder, including through a symbolic link', async () => {
    const env = { CLOCKFACE_BACKUP_PASSPHRASE: 'correct horse battery staple' };
    const up = await provision(['tenant', 'backup', '--out', dir, '--backup-to', '../escaped.cfbackup'], env);
    expect(up.code).toBe(1);
    expect(up.stderr).toMatch(/outside the target folder/);
    const abs = await provision(['tenant', 'backup', '--out', dir, '--backup-to', join(root, 'abs.cfbackup')], env);
    expect(abs.code).toBe(1);
    expect(existsSync(join(root, 'escaped.cfbackup')) || existsSync(join(root, 'abs.cfbackup'))).toBe(false);

    // A tenant whose devices/ folder is a link to somewhere else.
    const linked = join(root, 'linked');
    await ok(['tenant', 'init', '--out', linked, '--tenant', 'gamma']);
    await ok(['gateway', 'add', '--out', linked, '--gateway', 'gw', '--host', 'gw.local']);
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(linked, 'devices'));
    const r = await provision(['device', 'add', '--out', linked, '--device', 'd1', '--gateway', 'gw', '--profile', 'simulator']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/symbolic link/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('tenant init --backup writes an encrypted backup at once, and without a passphrase writes nothing at all', async () => {
    const none = join(root, 'nopass');
    const r = await provision(['tenant', 'init', '--out', none, '--tenant', 'zeta', '--backup']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs a passphrase/);
    expect(existsSync(none)).toBe(false);
    const withPass = join(root, 'withpass');
    const ok2 = await ok(['tenant', 'init', '--out', withPass, '--tenant', 'zeta', '--backup'], { CLOCKFACE_BACKUP_PASSPHRASE: 'twelve chars or more' });
    const backup = ok2.json.backup as string;
    expect(backup.startsWith(join(withPass, 'backups'))).toBe(true);
    expect(mode(backup)).toBe(0o600);
  });

  it('rotates a gateway: the new server certificate keeps the address devices dial', async () => {
    const before = readFileSync(join(dir, 'gateways', 'site-1', 'gateway.crt'));
    const r = await ok(['rotate', '--out', dir, '--gateway', 'site-1', '--overlap-hours', '1']);
    const cert = new X509Certificate(readFileSync(join(dir, 'gateways', 'site-1', 'gateway.crt')));
    expect(cert.raw.equals(new X509Certificate(before).raw)).toBe(false);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(r.json.retiring).toEqual([normalizeSerial(new X509Certificate(before).serialNumber)]);
    expect(certificateIdentity(cert)).toMatchObject({ role: 'gateway', id: 'site-1' });
  });

  it('--dry-run reports the plan and writes nothing', async () => {
    const fresh = join(root, 'dry');
    const r = await ok(['tenant', 'init', '--out', fresh, '--tenant', 'delta', '--dry-run']);
    expect(r.stderr).toContain('[dry-run] would write tenant/ca.key (0600)');
    expect(existsSync(fresh)).toBe(false);
    const inventory = readFileSync(join(dir, 'tenant', 'inventory.json'));
    const d = await ok(['device', 'add', '--out', dir, '--device', 'door-9', '--gateway', 'site-1', '--profile', 'simulator', '--dry-run']);
    expect(d.stderr).toContain('would write devices/door-9/device.key (0600)');
    expect(existsSync(join(dir, 'devices', 'door-9'))).toBe(false);
    expect(readFileSync(join(dir, 'tenant', 'inventory.json')).equals(inventory)).toBe(true);
  });

  it('makes an encrypted backup that restores only with the passphrase, which never travels on argv', async () => {
    const passFile = join(root, 'pass.txt');
    writeFileSync(passFile, 'a long and secret passphrase\n', { mode: 0o600 });
    const b = await ok(['tenant', 'backup', '--out', dir, '--backup-to', 'backups/t.cfbackup', '--passphrase-file', passFile]);
    const file = b.json.backup as string;
    expect(mode(file)).toBe(0o600);
    const sealed = readFileSync(file);
    expect(sealed.includes(Buffer.from('PRIVATE KEY'))).toBe(false);

    const wrong = join(root, 'wrong.txt');
    writeFileSync(wrong, 'not the right passphrase');
    const bad = await provision(['tenant', 'restore', '--out', join(root, 'restored-bad'), '--from', file, '--passphrase-file', wrong]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/wrong passphrase or damaged/);
    expect(existsSync(join(root, 'restored-bad', 'tenant'))).toBe(false);

    const target = join(root, 'restored');
    await ok(['tenant', 'restore', '--out', target, '--from', file, '--passphrase-file', passFile]);
    expect(readFileSync(join(target, 'tenant', 'ca.key')).equals(readFileSync(join(dir, 'tenant', 'ca.key')))).toBe(true);
    expect(mode(join(target, 'tenant', 'ca.key'))).toBe(0o600);

    const noPass = await provision(['tenant', 'backup', '--out', dir]);
    expect(noPass.code).toBe(1);
    expect(noPass.stderr).toMatch(/never on the command line/);
    const argvPass = await provision(['tenant', 'backup', '--out', dir, '--passphrase', 'x']);
    expect(argvPass.code).toBe(2);
  });
});

// ---- registration with the cloud admin API ----------------------------------------------------

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: Record<string, unknown>;
}

/**
 * A loopback stand-in for the cloud admin API (issue 7 builds the real one): it checks the
 * bearer key and the request shapes of the contract and answers as the contract says.
 */
async function standInCloud(): Promise<{ server: HttpServer; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  let version = 0;
  const gateways = new Set<string>();
  const devices = new Set<string>();
  const server = createHttpServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const body = JSON.parse(text || '{}') as Record<string, unknown>;
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body });
      const reply = (status: number, obj: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
      if (req.headers.authorization !== 'Bearer owner-key-123') return reply(401, { error: 'unauthorized' });
      if (req.method === 'POST' && req.url === '/v1/tenants/acme/gateways' && typeof body.gateway === 'string') {
        gateways.add(body.gateway);
        return reply(201, { gateway: body.gateway, token: `gw-token-${body.gateway}` });
      }
      if (req.method === 'POST' && req.url === '/v1/tenants/acme/devices') {
        const valid = ['device', 'gateway', 'signingPublicKey', 'sealingPublicKey', 'certSerial'].every((k) => typeof body[k] === 'string');
        if (!valid) return reply(400, { error: 'bad device' });
        if (!gateways.has(body.gateway as string)) return reply(404, { error: `gateway ${body.gateway} is not registered in this tenant` });
        if (devices.has(body.device as string)) return reply(409, { error: `device ${body.device} is already registered` });
        devices.add(body.device as string);
        return reply(201, { device: body.device });
      }
      const put = /^\/v1\/tenants\/acme\/devices\/([a-z0-9-]+)$/.exec(req.url ?? '');
      if (req.method === 'PUT' && put && body.device === put[1]) {
        if (!devices.has(put[1]!)) return reply(404, { error: `device ${put[1]} is not registered in this tenant` });
        return reply(200, { device: put[1], previousSerial: '1', keysChanged: true });
      }
      if (req.method === 'POST' && req.url === '/v1/tenants/acme/revocations' && Array.isArray(body.serials) && body.serials.length > 0) {
        return reply(200, { version: ++version });
      }
      return reply(404, { error: 'not found' });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('registration with the cloud', () => {
  it('registers the gateway and a device, and publishes revocations, as the contract says', async () => {
    const cloud = await standInCloud();
    try {
      const keyFile = join(root, 'api.key');
      writeFileSync(keyFile, 'owner-key-123\n', { mode: 0o600 });
      const c = ['--cloud', cloud.url, '--api-key-file', keyFile];
      await ok(['gateway', 'add', '--out', dir, '--gateway', 'site-2', '--host', '10.0.0.5', ...c]);
      const gw = join(dir, 'gateways', 'site-2');
      expect(readFileSync(join(gw, 'gateway.token'), 'utf8').trim()).toBe('gw-token-site-2');
      expect(mode(join(gw, 'gateway.token'))).toBe(0o600);
      expect(JSON.parse(readFileSync(join(gw, 'config.json'), 'utf8')).cloud).toEqual({ url: cloud.url, tokenFile: 'gateway.token' });

      await ok(['device', 'add', '--out', dir, '--device', 'door-2', '--gateway', 'site-2', '--profile', 'pi-usb', ...c]);
      const dev = join(dir, 'devices', 'door-2');
      expect(JSON.parse(readFileSync(join(dev, 'config.json'), 'utf8')).mqtt.url).toBe('mqtts://10.0.0.5:8883');
      const reg = cloud.seen.find((s) => s.url === '/v1/tenants/acme/devices')!;
      expect(reg.body).toEqual({
        device: 'door-2',
        gateway: 'site-2',
        signingPublicKey: keyPairFromPem('ed25519', readFileSync(join(dev, 'device-signing.key'))).publicRaw.toString('base64'),
        sealingPublicKey: keyPairFromPem('x25519', readFileSync(join(dev, 'device-sealing.key'))).publicRaw.toString('base64'),
        certSerial: normalizeSerial(new X509Certificate(readFileSync(join(dev, 'device.crt'))).serialNumber),
      });

      const r = await ok(['revoke', '--out', dir, '--device', 'door-2', ...c]);
      expect(r.json.cloudVersion).toBe(1);
      const pub = cloud.seen.find((s) => s.url === '/v1/tenants/acme/revocations')!;
      expect(pub.body.serials).toContain(reg.body.certSerial);
      expect(cloud.seen.every((s) => s.auth === 'Bearer owner-key-123' && s.method === 'POST')).toBe(true);

      // A second registration of the same device with --force replaces its keys at the cloud (PUT).
      const keyBefore = readFileSync(join(dev, 'device.key'));
      await ok(['device', 'add', '--out', dir, '--device', 'door-2', '--gateway', 'site-2', '--profile', 'pi-usb', '--force', ...c]);
      const replaced = cloud.seen.find((s) => s.method === 'PUT')!;
      expect(replaced.url).toBe('/v1/tenants/acme/devices/door-2');
      expect(replaced.body.signingPublicKey).toBe(keyPairFromPem('ed25519', readFileSync(join(dev, 'device-signing.key'))).publicRaw.toString('base64'));
      expect(readFileSync(join(dev, 'device.key')).equals(keyBefore)).toBe(false);

      // Nothing new: no second publish (the cloud would tell every device again).
      const quiet = await ok(['revoke', '--out', dir, '--due', ...c]);
      expect(quiet.json.cloudVersion).toBeUndefined();
      expect(cloud.seen.filter((s) => s.url === '/v1/tenants/acme/revocations')).toHaveLength(1);
    } finally {
      cloud.server.close();
    }
  });

  it('a refused API key is a clear error and leaves no half-made unit behind', async () => {
    const cloud = await standInCloud();
    try {
      const keyFile = join(root, 'wrong.key');
      writeFileSync(keyFile, 'not-the-key\n');
      const r = await provision(['gateway', 'add', '--out', dir, '--gateway', 'site-3', '--host', 'gw3.local', '--cloud', cloud.url, '--api-key-file', keyFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/HTTP 401.*check the API key/);
      expect(r.stderr).not.toContain('not-the-key');
      expect(existsSync(join(dir, 'gateways', 'site-3'))).toBe(false);
      expect(loadTenant(dir).inventory.units.some((u) => u.id === 'site-3')).toBe(false);
    } finally {
      cloud.server.close();
    }
  });
});
